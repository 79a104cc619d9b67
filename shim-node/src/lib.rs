//! The Node.js side of the Functions Framework for Rust: a native module that replaces the
//! Node.js process with the Rust function binary.
//!
//! `index.js` calls [`start`] as soon as it is required. When the process is meant to serve
//! (see `gate`: `K_SERVICE`, or `FUNCTION_TARGET` outside a build step, or
//! `FUNCTIONS_FRAMEWORK_EXEC=1`), it:
//!
//! 1. finds the binary next to this `.node` file;
//! 2. finds the listening TCP sockets and the inbound connections Node.js holds;
//! 3. answers `200 User function is ready` on connections whose request is waiting for the
//!    module to load (the old worker's `GET /load` order), keeping them open;
//! 4. clears `FD_CLOEXEC` on those sockets and on fds 0-2, and names them in the
//!    environment with the PID they are meant for;
//! 5. calls `execve(2)`: same PID, the Rust binary takes over the sockets.
//!
//! If `execve` fails, everything it changed is put back and a JS error names the path and
//! the errno; Node.js keeps running.

mod exec;
mod fds;

use std::os::fd::RawFd;

use neon::prelude::*;

/// Why the module would not exec, or `None` when it should.
///
/// A serving process has `K_SERVICE` (set by Cloud Run and Cloud Functions on every instance)
/// or `FUNCTION_TARGET`. A build step may require the entry point too (the Cloud Functions
/// build's bytecode-cache step does, with `PORT=8080`), and must get the module back instead
/// of a process that never exits: without `K_SERVICE`, the variables a buildpack build has and
/// a launched app has not (`GOOGLE_FUNCTION_TARGET`, the build-time input that launch turns
/// into `FUNCTION_TARGET`, and the lifecycle's `CNB_BUILDPACK_DIR` and `CNB_BP_PLAN_PATH`) mark
/// a build step, even when a user also set `FUNCTION_TARGET` as a build variable.
/// `FUNCTIONS_FRAMEWORK_EXEC=1` or `0` overrides all of it.
fn gate() -> Option<String> {
    gate_for(
        |name| std::env::var_os(name).is_some_and(|v| !v.is_empty()),
        std::env::var("FUNCTIONS_FRAMEWORK_EXEC").ok().as_deref(),
    )
}

/// The names whose presence (without `K_SERVICE`) means a buildpack build step.
const BUILD_MARKERS: [&str; 3] = [
    "GOOGLE_FUNCTION_TARGET",
    "CNB_BUILDPACK_DIR",
    "CNB_BP_PLAN_PATH",
];

fn gate_for(set: impl Fn(&str) -> bool, exec: Option<&str>) -> Option<String> {
    match exec {
        Some("0") => return Some("FUNCTIONS_FRAMEWORK_EXEC=0 turns the exec off".to_owned()),
        Some("1") => return None,
        _ => {}
    }
    if set("K_SERVICE") {
        return None;
    }
    if let Some(marker) = BUILD_MARKERS.iter().find(|name| set(name)) {
        return Some(format!(
            "{marker} is set and K_SERVICE is not, so this is a build step loading the module, \
             not a serving process; set FUNCTIONS_FRAMEWORK_EXEC=1 to start the Rust function \
             anyway"
        ));
    }
    if set("FUNCTION_TARGET") {
        None
    } else {
        Some(
            "neither FUNCTION_TARGET nor K_SERVICE is set, so this is not a serving process (a \
             build step loading the module, say); set FUNCTIONS_FRAMEWORK_EXEC=1 to start the \
             Rust function anyway"
                .to_owned(),
        )
    }
}

const READY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\n\r\nUser function is ready";
const READY_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\nConnection: close\r\n\r\nUser function is ready";

/// A connection whose request waits for this module.
struct Waiting {
    fd: RawFd,
    keep_alive: bool,
}

fn read_options<'a>(cx: &mut FunctionContext<'a>) -> NeonResult<(Vec<String>, Vec<Waiting>)> {
    let options = cx.argument::<JsObject>(0)?;
    let mut argv = Vec::new();
    if let Some(list) = options.get_opt::<JsArray, _, _>(cx, "argv")? {
        for value in list.to_vec(cx)? {
            if let Ok(text) = value.downcast::<JsString, _>(cx) {
                argv.push(text.value(cx));
            }
        }
    }
    let mut waiting = Vec::new();
    if let Some(list) = options.get_opt::<JsArray, _, _>(cx, "waiting")? {
        for value in list.to_vec(cx)? {
            let Ok(entry) = value.downcast::<JsObject, _>(cx) else {
                continue;
            };
            let fd = entry.get::<JsNumber, _, _>(cx, "fd")?.value(cx);
            let keep_alive = entry
                .get_opt::<JsBoolean, _, _>(cx, "keepAlive")?
                .is_none_or(|b| b.value(cx));
            if fd.fract() == 0.0 && (3.0..f64::from(i32::MAX)).contains(&fd) {
                waiting.push(Waiting {
                    fd: fd as RawFd,
                    keep_alive,
                });
            }
        }
    }
    Ok((argv, waiting))
}

fn not_started<'a>(cx: &mut FunctionContext<'a>, reason: &str) -> JsResult<'a, JsObject> {
    let result = cx.empty_object();
    let started = cx.boolean(false);
    result.set(cx, "started", started)?;
    let reason = cx.string(reason);
    result.set(cx, "reason", reason)?;
    Ok(result)
}

/// `start({argv, waiting})`: execs the Rust binary, or returns `{started: false, reason}`
/// when the gate is off, or throws when the exec fails.
fn start(mut cx: FunctionContext<'_>) -> JsResult<'_, JsObject> {
    let (argv, waiting) = read_options(&mut cx)?;
    if let Some(reason) = gate() {
        return not_started(&mut cx, &reason);
    }
    let binary = match exec::locate() {
        Ok(binary) => binary,
        Err(error) => {
            return cx.throw_error(format!("cannot locate the Rust function binary: {error}"));
        }
    };
    if let Err(error) = std::fs::metadata(&binary) {
        return cx.throw_error(format!(
            "cannot start the Rust function binary {}: {error} (errno {})",
            binary.display(),
            error.raw_os_error().unwrap_or(0)
        ));
    }

    let found = fds::find();
    let mut inheritance = fds::Inheritance::default();
    let mut connections = Vec::new();
    let mut prepared = [0, 1, 2]
        .into_iter()
        .chain(found.listeners.iter().copied())
        .try_for_each(|fd| inheritance.keep(fd));
    for waiting in &waiting {
        if !fds::is_inbound_connection(&found, waiting.fd) {
            continue;
        }
        let answer = if waiting.keep_alive {
            READY
        } else {
            READY_CLOSE
        };
        if fds::write_all(waiting.fd, answer).is_ok() && waiting.keep_alive {
            connections.push(waiting.fd);
        }
    }
    for &fd in &found.connections {
        let answered = waiting.iter().any(|w| w.fd == fd);
        if !answered {
            connections.push(fd);
        }
    }
    if prepared.is_ok() {
        prepared = connections.iter().try_for_each(|&fd| inheritance.keep(fd));
    }
    if let Err(error) = prepared {
        inheritance.restore();
        return cx.throw_error(format!(
            "cannot prepare fds for the Rust function binary: {error}"
        ));
    }

    let args = exec::forwarded_flags(argv.get(2..).unwrap_or_default());
    let env = exec::environment(std::process::id(), &found.listeners, &connections);
    let error = exec::exec(&binary, &args, &env);
    inheritance.restore();
    cx.throw_error(format!(
        "cannot start the Rust function binary {}: {error} (errno {})",
        binary.display(),
        error.raw_os_error().unwrap_or(0)
    ))
}

#[neon::main]
fn main(mut cx: ModuleContext<'_>) -> NeonResult<()> {
    cx.export_function("start", start)?;
    let name = cx.string(exec::BINARY_NAME);
    cx.export_value("binaryName", name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_with(vars: &[&str], exec: Option<&str>) -> Option<String> {
        gate_for(|name| vars.contains(&name), exec)
    }

    #[test]
    fn serving_processes_exec() {
        assert_eq!(gate_with(&["K_SERVICE"], None), None);
        assert_eq!(gate_with(&["FUNCTION_TARGET"], None), None);
        // Whatever else is set, the platform's instance variable means serving.
        assert_eq!(
            gate_with(
                &["K_SERVICE", "FUNCTION_TARGET", "GOOGLE_FUNCTION_TARGET"],
                None
            ),
            None
        );
        assert_eq!(gate_with(&[], Some("1")), None);
        assert_eq!(
            gate_with(&["GOOGLE_FUNCTION_TARGET", "FUNCTION_TARGET"], Some("1")),
            None
        );
    }

    #[test]
    fn build_steps_and_plain_processes_do_not() {
        for vars in [
            &["GOOGLE_FUNCTION_TARGET"][..],
            &["GOOGLE_FUNCTION_TARGET", "FUNCTION_TARGET"],
            &["CNB_BUILDPACK_DIR", "FUNCTION_TARGET"],
            &["CNB_BP_PLAN_PATH", "FUNCTION_TARGET"],
        ] {
            let reason = gate_with(vars, None).expect("gated off");
            assert!(reason.contains("build step"), "{vars:?}: {reason}");
        }
        let reason = gate_with(&[], None).expect("gated off");
        assert!(
            reason.contains("neither FUNCTION_TARGET nor K_SERVICE"),
            "{reason}"
        );
        assert!(gate_with(&["K_SERVICE"], Some("0")).is_some());
    }
}
