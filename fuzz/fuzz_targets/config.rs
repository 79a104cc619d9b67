//! Arbitrary flags and environment values through the configuration parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: lines; "NAME=value" lines are environment, the others are arguments.
    let text = String::from_utf8_lossy(data);
    let mut args = Vec::new();
    let mut env = Vec::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some((name, value)) if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !name.is_empty() => {
                env.push((name.to_owned(), value.to_owned()));
            }
            _ => args.push(line.to_owned()),
        }
    }
    functions_framework::fuzz::config(&args, &env);
});
