//! Faults, slow clients, overload and shutdown against `test-functions` as a real process.
//! `FF_SOAK=1` (`make soak`) runs the long variants.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Conn, Stream, command, get, raise_fd_limit, rss_kib, signal};

/// The count for a normal run, or a soak run's.
fn scaled(normal: usize, soak: usize) -> usize {
    if std::env::var_os("FF_SOAK").is_some() {
        soak
    } else {
        normal
    }
}

fn serve(target: &str, extra: &[(&str, &str)]) -> common::Server {
    common::serve(Some(target), extra)
}

fn wait_exit(server: &mut common::Server, within: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_slow_header_sender_is_cut_off_and_does_not_delay_others() {
    let server = serve("sleep", &[("TEST_HEADER_TIMEOUT_MS", "1000")]);
    let port = server.port;
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let started = Instant::now();
        // One byte every 300 ms: the headers would take far longer than the timeout.
        for byte in
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n"
        {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (
            started.elapsed(),
            String::from_utf8_lossy(&rest).into_owned(),
        )
    });
    // Meanwhile other clients are served at once.
    for _ in 0..20 {
        let started = Instant::now();
        let reply = get(port, "/?ms=0").expect("request");
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "a fast client waited {:?}",
            started.elapsed()
        );
    }
    let (elapsed, answer) = slow.join().expect("slow client");
    assert!(
        elapsed < Duration::from_secs(4),
        "the slow client was kept {elapsed:?}"
    );
    assert!(
        !answer.contains("slept"),
        "the slow request reached the function: {answer}"
    );
}

#[test]
fn a_thousand_idle_keep_alive_connections_do_not_block_new_requests() {
    raise_fd_limit();
    let server = serve("sleep", &[]);
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let mut conn = Conn::open(server.port).expect("connect");
        assert_eq!(
            conn.send("GET", "/?ms=0", b"").expect("request").status,
            200
        );
        idle.push(conn);
    }
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(server.port, "/?ms=0").expect("request").status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "new request waited {:?}",
            started.elapsed()
        );
    }
    // The idle ones are still usable.
    for conn in idle.iter_mut().step_by(100) {
        assert_eq!(
            conn.send("GET", "/?ms=0", b"").expect("request").status,
            200
        );
    }
}

#[test]
fn panics_interleaved_with_good_requests_leak_no_memory_and_no_detail() {
    // `http` panics are not available in one target, so two processes: panicking requests go
    // to `panic`, good ones to `sleep`, interleaved; memory is measured on the panicking one.
    let panicking = serve("panic", &[]);
    let good = serve("sleep", &[]);
    let mut bad = Conn::open(panicking.port).expect("connect");
    let mut fine = Conn::open(good.port).expect("connect");
    let round = |bad: &mut Conn, fine: &mut Conn, count: usize| {
        for _ in 0..count {
            let crash = bad.send("GET", "/", b"").expect("panic request");
            assert_eq!(crash.status, 500);
            assert_eq!(crash.header("x-google-status"), Some("crash"));
            let body = crash.text();
            assert!(
                !body.contains("deliberate")
                    && !body.contains("backtrace")
                    && !body.contains(".rs"),
                "{body}"
            );
            assert_eq!(
                fine.send("GET", "/?ms=0", b"")
                    .expect("good request")
                    .status,
                200
            );
        }
    };
    round(&mut bad, &mut fine, 200);
    let warm = rss_kib(panicking.child.id());
    let count = scaled(1000, 20_000);
    round(&mut bad, &mut fine, count);
    let after = rss_kib(panicking.child.id());
    assert!(
        after <= warm + warm / 10 + 1024,
        "RSS grew from {warm} KiB to {after} KiB over {count} panics"
    );
    // The server that panicked still serves good requests of its own kind.
    assert_eq!(bad.send("GET", "/", b"").expect("request").status, 500);
    println!("{count} panics: RSS {warm} KiB -> {after} KiB");
}

#[test]
fn sigterm_with_fifty_in_flight_requests_completes_them_all_and_refuses_new_ones() {
    raise_fd_limit();
    let mut server = serve("sleep", &[("TEST_SHUTDOWN_TIMEOUT_MS", "8000")]);
    let port = server.port;
    let in_flight: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || get(port, "/?ms=1500")))
        .collect();
    // All fifty are in the function before the signal.
    server.wait_lines(Stream::Stdout, 50, Duration::from_secs(20), |l| {
        l.contains("sleeping 1500 ms")
    });
    let signalled = Instant::now();
    signal(&server.child, libc::SIGTERM);
    server.wait_line(Stream::Stdout, |l| l.contains("shutting down: draining"));
    let refused = TcpStream::connect(("127.0.0.1", port));
    assert!(
        refused.is_err(),
        "a new connection was accepted during the drain"
    );
    for request in in_flight {
        let reply = request
            .join()
            .expect("thread")
            .expect("in-flight request failed");
        assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1500ms"));
    }
    let status =
        wait_exit(&mut server, Duration::from_secs(8)).expect("no exit within the drain bound");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(8));
}

#[test]
fn the_drain_bound_and_a_second_signal_force_the_exit() {
    // The bound: requests that would take 30 s are abandoned after 500 ms.
    let mut bounded = serve("sleep", &[("TEST_SHUTDOWN_TIMEOUT_MS", "500")]);
    let port = bounded.port;
    let slow = std::thread::spawn(move || get(port, "/?ms=30000"));
    bounded.wait_line(Stream::Stdout, |l| l.contains("sleeping 30000 ms"));
    let signalled = Instant::now();
    signal(&bounded.child, libc::SIGTERM);
    let status =
        wait_exit(&mut bounded, Duration::from_secs(5)).expect("the bound did not force the exit");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "took {:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    assert!(
        slow.join().expect("thread").is_err(),
        "the abandoned request got an answer"
    );

    // A second SIGTERM during a long drain exits at once.
    let mut impatient = serve("sleep", &[("TEST_SHUTDOWN_TIMEOUT_MS", "60000")]);
    let port = impatient.port;
    let slow = std::thread::spawn(move || get(port, "/?ms=30000"));
    impatient.wait_line(Stream::Stdout, |l| l.contains("sleeping 30000 ms"));
    signal(&impatient.child, libc::SIGTERM);
    impatient.wait_line(Stream::Stdout, |l| l.contains("shutting down: draining"));
    assert!(
        impatient.child.try_wait().expect("wait").is_none(),
        "exited before the second signal"
    );
    let signalled = Instant::now();
    signal(&impatient.child, libc::SIGTERM);
    let status = wait_exit(&mut impatient, Duration::from_secs(5))
        .expect("the second signal did not force the exit");
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_ne!(status.code(), Some(0), "a forced exit reports failure");
    assert!(slow.join().expect("thread").is_err());
}

fn load(port: u16, threads: usize, per_thread: usize) {
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = Conn::open(port).expect("connect");
                for _ in 0..per_thread {
                    let reply = conn
                        .send("POST", "/", b"{\"message\":\"memory\"}")
                        .expect("request");
                    assert_eq!(reply.status, 200);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("load thread");
    }
}

#[test]
fn memory_is_flat_over_a_hundred_thousand_requests_and_bounded_under_200_connections() {
    raise_fd_limit();
    let server = serve("echo", &[]);
    let pid = server.child.id();
    load(server.port, 4, 250);
    let after_1k = rss_kib(pid);
    let total = scaled(100_000, 1_000_000);
    load(server.port, 4, total / 4);
    let after_total = rss_kib(pid);
    assert!(
        after_total * 10 <= after_1k * 11,
        "RSS after {total} requests is {after_total} KiB, after 1,000 it was {after_1k} KiB"
    );

    // 200 concurrent connections, each with a request in flight in the function.
    let sleeper = serve("sleep", &[]);
    let port = sleeper.port;
    let idle_rss = rss_kib(sleeper.child.id());
    let requests: Vec<_> = (0..200)
        .map(|_| std::thread::spawn(move || get(port, "/?ms=3000")))
        .collect();
    sleeper.wait_lines(Stream::Stdout, 200, Duration::from_secs(20), |l| {
        l.contains("sleeping 3000 ms")
    });
    let busy_rss = rss_kib(sleeper.child.id());
    for request in requests {
        assert_eq!(
            request.join().expect("thread").expect("request").status,
            200
        );
    }
    assert!(
        busy_rss < idle_rss + 32 * 1024,
        "200 connections took RSS from {idle_rss} KiB to {busy_rss} KiB"
    );
    println!(
        "RSS after 1,000 requests {after_1k} KiB, after {total} {after_total} KiB; 200 connections: {idle_rss} -> {busy_rss} KiB"
    );
}

#[test]
fn paths_are_the_functions_business_and_only_the_exact_ignored_routes_are_refused() {
    // The framework serves no files and interprets no path: every one of these reaches the
    // function (`http` records the body it got), byte for byte, and none is answered from
    // the file system or by the ignored-route rule.
    let mut cmd = command();
    cmd.env("PORT", "0").env("FUNCTION_TARGET", "http");
    let target = common::start_in_dir(cmd, "paths");
    let (server, dir) = (&target.server, &target.dir);
    for (n, path) in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/robots.txt/../../etc/passwd",
        "/favicon.ico.bak",
        "/proc/self/environ",
    ]
    .iter()
    .enumerate()
    {
        let marker = format!("request {n}");
        let reply =
            common::request(server.port, "POST", path, &[], marker.as_bytes()).expect("request");
        assert_eq!((reply.status, reply.text().as_str()), (200, "OK"), "{path}");
        let recorded = std::fs::read_to_string(dir.join("function_output.json")).expect("recorded");
        assert_eq!(recorded, marker, "{path} did not reach the function");
    }
    for path in ["/robots.txt", "/favicon.ico"] {
        let _ = std::fs::remove_file(dir.join("function_output.json"));
        let reply = common::request(server.port, "POST", path, &[], b"ignored").expect("request");
        assert_eq!(reply.status, 404, "{path}");
        assert!(
            !dir.join("function_output.json").exists(),
            "{path} reached the function"
        );
    }
    drop(target);
}
