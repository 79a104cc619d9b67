//! `test-functions` as a real process: configuration precedence, start-up failures and
//! shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{Stream, command, free_port, get, run_to_exit, signal, start, start_on_free_port};

#[test]
fn env_selects_the_target_and_port() {
    let (server, port) = start_on_free_port(|port| {
        let mut cmd = command();
        cmd.env("PORT", port.to_string())
            .env("FUNCTION_TARGET", "sleep");
        cmd
    });
    assert_eq!(server.port, port);
    let reply = get(port, "/?ms=1").expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1ms"));
}

#[test]
fn flags_beat_env() {
    // PORT names a port this test holds, so the binary could not bind it: a server that
    // serves at all took its port from the flag.
    let held = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let env_port = held.local_addr().expect("addr").port();
    let (server, flag_port) = start_on_free_port(|flag_port| {
        let mut cmd = command();
        cmd.env("PORT", env_port.to_string())
            .env("FUNCTION_TARGET", "error")
            .env("FUNCTION_SIGNATURE_TYPE", "cloudevent")
            .args([
                "--port",
                &flag_port.to_string(),
                "--target=echo",
                "--signature-type",
                "http",
            ]);
        cmd
    });
    assert_eq!(server.port, flag_port);
    assert_ne!(flag_port, env_port);
    let reply = common::request(
        flag_port,
        "POST",
        "/",
        &[("Content-Type", "text/x-test")],
        b"hi",
    )
    .expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "hi"));
    assert_eq!(reply.header("content-type"), Some("text/x-test"));
}

#[test]
fn unknown_target_exits_non_zero_before_binding() {
    let port = free_port();
    let mut cmd = command();
    cmd.env("PORT", port.to_string())
        .env("FUNCTION_TARGET", "nope");
    let exited = run_to_exit(cmd);
    let (code, output) = (exited.code, exited.stderr);
    assert_ne!(code, Some(0), "{output}");
    assert!(output.contains("\"nope\""), "{output}");
    for registered in [
        "http (http)",
        "echo (http)",
        "panic (http)",
        "sleep (http)",
        "log (http)",
    ] {
        assert!(
            output.contains(registered),
            "{registered} missing from: {output}"
        );
    }
    assert!(!output.contains("serving on"), "{output}");
}

#[test]
fn bad_configuration_says_what_to_fix() {
    let mut bad_port = command();
    bad_port.env("PORT", "http").env("FUNCTION_TARGET", "echo");
    let exited = run_to_exit(bad_port);
    let (code, output) = (exited.code, exited.stderr);
    assert_ne!(code, Some(0));
    assert!(output.contains("PORT"), "{output}");

    let mut bad_flag = command();
    bad_flag.arg("--bogus");
    let exited = run_to_exit(bad_flag);
    let (code, output) = (exited.code, exited.stderr);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("--bogus"), "{output}");

    let mut help = command();
    help.arg("--help");
    let exited = run_to_exit(help);
    let (code, output) = (exited.code, exited.stdout);
    assert_eq!(code, Some(0));
    assert!(
        output.contains("--target") && output.contains("FUNCTION_TARGET"),
        "{output}"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut cmd = command();
    cmd.env("PORT", "0").env("FUNCTION_TARGET", "sleep");
    let mut server = start(cmd);
    let port = server.port;
    let slow = std::thread::spawn(move || get(port, "/?ms=1500"));
    server.wait_line(Stream::Stdout, |l| l.contains("sleeping 1500 ms"));
    signal(&server.child, libc::SIGTERM);
    let started = Instant::now();
    let reply = slow
        .join()
        .expect("join")
        .expect("in-flight request failed");
    assert_eq!((reply.status, reply.text().as_str()), (200, "slept 1500ms"));
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(
        get(port, "/").is_err(),
        "a new connection was accepted after shutdown"
    );
    server.wait_line(Stream::Stdout, |l| l.contains("draining"));
}

#[test]
fn panic_and_error_targets_answer_500_and_the_process_lives() {
    for (target, status_header) in [("panic", "crash"), ("error", "error")] {
        let mut cmd = command();
        cmd.env("PORT", "0").env("FUNCTION_TARGET", target);
        let server = start(cmd);
        for _ in 0..3 {
            let reply = get(server.port, "/").expect("request");
            assert_eq!(reply.status, 500);
            assert_eq!(reply.header("x-google-status"), Some(status_header));
            assert!(!reply.text().contains("deliberate"), "{}", reply.text());
        }
        // The detail goes to the log (JSON on stdout), one entry per failure.
        let entries = server.wait_lines(Stream::Stdout, 3, Duration::from_secs(10), |l| {
            l.contains("deliberate")
        });
        assert!(
            entries.iter().all(|e| e.contains("\"severity\":\"ERROR\"")),
            "{entries:#?}"
        );
    }
}

#[test]
fn http_target_records_the_body_and_log_target_writes_lines() {
    let mut cmd = command();
    cmd.env("PORT", "0").env("FUNCTION_TARGET", "http");
    let target = common::start_in_dir(cmd, "http");
    let (server, dir) = (&target.server, &target.dir);
    let reply = common::request(
        server.port,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        br#"{"res":"PASS"}"#,
    )
    .expect("request");
    assert_eq!((reply.status, reply.text().as_str()), (200, "OK"));
    let recorded = std::fs::read_to_string(dir.join("function_output.json")).expect("output file");
    assert_eq!(recorded, r#"{"res":"PASS"}"#);
    drop(target);

    let mut cmd = command();
    cmd.env("PORT", "0").env("FUNCTION_TARGET", "log");
    let server = start(cmd);
    let reply = get(server.port, "/?lines=5").expect("request");
    assert_eq!(reply.status, 200);
    let lines = server.wait_lines(Stream::Stdout, 5, Duration::from_secs(10), |l| {
        l.starts_with("log line")
    });
    assert_eq!(
        lines[4],
        "log line 4 of 5: the quick brown fox jumps over the lazy dog"
    );
    assert!(
        server
            .drain_lines()
            .iter()
            .all(|l| !l.text.starts_with("log line")),
        "no sixth line"
    );
}

#[test]
fn conformance_sleep_applies_to_every_target() {
    let listing = run_to_exit({
        let mut cmd = command();
        cmd.arg("--list-functions");
        cmd
    });
    let targets: Vec<serde_json::Value> =
        serde_json::from_str(listing.stdout.trim()).expect("--list-functions prints JSON");
    assert!(targets.len() >= 11, "{targets:?}");
    let event = [
        ("ce-specversion", "1.0"),
        ("ce-id", "sleepy"),
        ("ce-source", "//pubsub.googleapis.com/projects/p/topics/t"),
        ("ce-type", "google.cloud.pubsub.topic.v1.messagePublished"),
        ("content-type", "application/json"),
    ];
    for target in &targets {
        let name = target["name"].as_str().expect("name");
        let signature = target["signatureType"].as_str().expect("signature type");
        let dir = std::env::temp_dir().join(format!("ff-sleepy-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut cmd = command();
        cmd.env("PORT", "0")
            .env("FUNCTION_TARGET", name)
            .env("CONFORMANCE_SLEEP_MS", "300")
            .current_dir(&dir);
        let server = start(cmd);
        let started = Instant::now();
        let reply = match signature {
            // The typed event functions decode their data first: each gets data of its type.
            "cloudevent" if name == "flat_noop" => {
                common::request(server.port, "POST", "/", &event, br#"{"f":"v"}"#)
            }
            "cloudevent" | "event" => {
                common::request(server.port, "POST", "/", &event, br#"{"message":{}}"#)
            }
            "typed" => common::request(server.port, "POST", "/", &[], br#"{"message":"m"}"#),
            _ => get(server.port, "/"),
        }
        .expect("request");
        let elapsed = started.elapsed();
        // Every target answers what it answers to such a request (`panic` and `error` 500,
        // `reject` 422, `websocket` a plain GET with 400), after the sleep.
        assert!(
            (200..600).contains(&reply.status),
            "{name}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(elapsed >= Duration::from_millis(300), "{name}: {elapsed:?}");
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs the binary through `sh -c '... exec'` so that `$$` is the PID the binary will have.
fn via_shell(env_prefix: &str) -> std::process::Command {
    let cmd = command();
    let binary = cmd.get_program().to_owned();
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg(format!("{env_prefix} exec \"$0\""))
        .arg(binary)
        .envs(
            cmd.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        );
    for name in [
        "PORT",
        "FUNCTION_TARGET",
        "FUNCTION_SIGNATURE_TYPE",
        "K_SERVICE",
        "CONFORMANCE_SLEEP_MS",
    ] {
        shell.env_remove(name);
    }
    shell
}

#[test]
fn systemd_socket_activation_is_adopted() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let fd = listener.as_raw_fd();
    let mut cmd = via_shell("LISTEN_PID=$$ LISTEN_FDS=1");
    cmd.env("FUNCTION_TARGET", "sleep").env("PORT", "1");
    // SAFETY: only dup2 between fork and exec, which is async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep the close-on-exec flag: clear it instead.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = start(cmd);
    assert_eq!(server.port, port);
    drop(listener);
    let reply = get(port, "/?ms=1").expect("request");
    assert_eq!(reply.text(), "slept 1ms");
    assert!(
        server
            .startup
            .iter()
            .any(|l| l.stream == Stream::Stdout && l.text.contains("socket activation")),
        "{:#?}",
        server.startup
    );
}

#[test]
fn stale_or_bogus_handover_is_ignored_and_port_is_bound() {
    // Meant for another PID: ignored without looking at the fds.
    let mut stale =
        via_shell("FUNCTIONS_FRAMEWORK_HANDOVER_PID=1 FUNCTIONS_FRAMEWORK_HANDOVER_LISTENERS=0");
    stale.env("FUNCTION_TARGET", "sleep").env("PORT", "0");
    let server = start(stale);
    assert_eq!(
        get(server.port, "/?ms=2").expect("request").text(),
        "slept 2ms"
    );

    // Meant for us, but fd 0 is not a listening socket: rejected, reported, and PORT bound.
    let mut bogus = via_shell(
        "FUNCTIONS_FRAMEWORK_HANDOVER_PID=$$ FUNCTIONS_FRAMEWORK_HANDOVER_LISTENERS=0,2,999",
    );
    bogus.env("FUNCTION_TARGET", "sleep").env("PORT", "0");
    let server = start(bogus);
    assert_eq!(
        get(server.port, "/?ms=3").expect("request").text(),
        "slept 3ms"
    );
    let lines = &server.startup;
    let rejected = lines
        .iter()
        .filter(|l| l.stream == Stream::Stdout && l.text.contains("not adopting handed-over fd"))
        .count();
    assert_eq!(rejected, 3, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.text.contains("(bound")),
        "{lines:#?}"
    );
}
