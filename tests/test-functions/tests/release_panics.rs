//! Panics in the release build, the profile that ships: the log names the panicking function,
//! and memory returns to the idle level after one panic and after a thousand (once the
//! symbolizer has let its cache go, a second after the last panic). `make check` builds
//! `target/release/test-functions` and runs these with `--ignored`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Conn, Stream, rss_kib, start};

fn release_binary() -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/test-functions");
    assert!(
        path.exists(),
        "{} is missing: cargo build --release -p test-functions",
        path.display()
    );
    path
}

fn serve_release(target: &str) -> common::Server {
    let mut cmd = Command::new(release_binary());
    cmd.env_clear()
        .env("PORT", "0")
        .env("FUNCTION_TARGET", target)
        .env("RUST_LOG", "info")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    start(cmd)
}

/// RSS once the symbolizer has dropped its cache: it is polled for up to 5 s, since the
/// cache goes a second after the last panic.
fn settled_rss(pid: u32, idle: u64) -> u64 {
    let started = Instant::now();
    loop {
        let rss = rss_kib(pid);
        if rss <= idle + 5 * 1024 || started.elapsed() > Duration::from_secs(5) {
            return rss;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs the release build: make check builds it and runs this"]
fn a_release_panic_names_the_function_and_memory_returns_to_idle() {
    let server = serve_release("panic");
    let pid = server.child.id();
    let mut conn = Conn::open(server.port).expect("connect");
    let idle = rss_kib(pid);

    let reply = conn.send("GET", "/", b"").expect("request");
    assert_eq!(reply.status, 500);
    let report = server.wait_line(Stream::Stdout, |l| l.contains("function panicked"));
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    let message = report["message"].as_str().expect("message");
    assert!(message.contains(" 0: test_functions::panic"), "{message}");
    assert!(message.contains("src/main.rs:"), "file and line: {message}");
    assert!(
        report["context"]["reportLocation"]["functionName"]
            .as_str()
            .is_some_and(|f| f.starts_with("test_functions::panic")),
        "{report}"
    );
    let after_one = settled_rss(pid, idle);

    let storm = Instant::now();
    for _ in 1..1000 {
        assert_eq!(conn.send("GET", "/", b"").expect("request").status, 500);
    }
    println!("999 more panics took {:?}", storm.elapsed());
    let after_thousand = settled_rss(pid, idle);
    println!(
        "RSS idle {idle} KiB, after 1 panic {after_one} KiB, after 1,000 {after_thousand} KiB"
    );
    for (what, rss) in [("1 panic", after_one), ("1,000 panics", after_thousand)] {
        assert!(
            rss <= idle + 5 * 1024,
            "RSS after {what} is {rss} KiB, more than 5 MiB over the idle {idle} KiB"
        );
    }
}
