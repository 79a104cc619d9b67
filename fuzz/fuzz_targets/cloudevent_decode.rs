//! An event request: the input is split into a method, headers and a body, so that the
//! fuzzer reaches binary mode (ce-* headers), structured mode and legacy bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Layout: method \n (name: value \n)* \n body
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let method = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    let split = rest.windows(2).position(|w| w == b"\n\n").unwrap_or(rest.len());
    let (head, body) = rest.split_at(split);
    let body = body.get(2..).unwrap_or_default();
    let headers: Vec<(&[u8], &[u8])> = head
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|b| *b == b':')?;
            let (name, value) = line.split_at(colon);
            Some((name, value.get(1..).unwrap_or_default().trim_ascii()))
        })
        .collect();
    functions_framework::fuzz::decode_event(method, &headers, body);
});
