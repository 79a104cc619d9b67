//! The panic report: a panic inside an invocation becomes one Error Reporting entry with the
//! message, the panicking function and location, and a backtrace whose frames are named.
//!
//! Frames are resolved with the `backtrace` crate on one thread of its own, which keeps the
//! parsed debug information while panics keep coming and drops it (giving the memory back)
//! once none has come for [`LINGER`]: a burst of panics is not parsed again for each one,
//! and at rest memory is back at the idle level. std's own backtrace keeps every parsed
//! symbol table for the life of the process, which costs tens of MiB after the first panic.

use std::fmt::Write as _;
use std::sync::mpsc;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use crate::Context;
use crate::log::{self, ErrorReport};

/// The entry points of a panic: the frames above them are the hook and the capture, the
/// frame below them is the function that panicked. std is built with full names, so these
/// are recognisable whatever debug information the rest of the binary has.
fn is_panic_entry(name: &str) -> bool {
    const PREFIXES: [&str; 5] = [
        "core::panicking::",
        "std::panicking::",
        "std::sys::backtrace::__rust_end_short_backtrace",
        "rust_begin_unwind",
        "__rustc::rust_begin_unwind",
    ];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Frames below the function: the framework's invocation and the async runtime.
fn is_framework_below(name: &str) -> bool {
    name.starts_with("functions_framework::server::Server::") || name.starts_with("tokio::")
}

/// A resolved frame: the function's name (without the hash) and its location, if known.
struct Frame {
    name: String,
    location: Option<(String, u32)>,
}

/// The backtrace of the calling thread, resolved to named frames.
fn frames() -> Vec<Frame> {
    symbolize(backtrace::Backtrace::new_unresolved())
}

type Job = (backtrace::Backtrace, mpsc::SyncSender<Vec<Frame>>);

/// How long the parsed debug information is kept after a panic.
pub(crate) const LINGER: Duration = Duration::from_secs(1);

/// Resolves on one long-lived thread: what symbolization allocates then always comes from
/// that thread's malloc arena, instead of growing the arena of whichever worker thread
/// panicked; the thread drops the cache and trims once panics stop.
fn symbolize(backtrace: backtrace::Backtrace) -> Vec<Frame> {
    static SYMBOLIZER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let symbolizer = SYMBOLIZER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("panic-symbols".into())
            .spawn(move || {
                let mut warm = false;
                loop {
                    let job = if warm {
                        inbox.recv_timeout(LINGER)
                    } else {
                        inbox
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    };
                    match job {
                        Ok((backtrace, reply)) => {
                            let _ = reply.send(resolve(backtrace));
                            warm = true;
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            // Panics stopped: the parsed debug information goes, and the
                            // freed pages go back to the system.
                            backtrace::clear_symbol_cache();
                            crate::memory::release_freed_memory();
                            warm = false;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no thread for panic symbols: resolving in place");
        }
        Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::sync_channel(1);
    let sent = symbolizer
        .lock()
        .map_err(|_| ())
        .and_then(|jobs| jobs.send((backtrace, reply)).map_err(|_| ()));
    match sent {
        Ok(()) => answer.recv().unwrap_or_default(),
        // No symbolizer thread: resolve here.
        Err(()) => Vec::new(),
    }
}

fn resolve(mut backtrace: backtrace::Backtrace) -> Vec<Frame> {
    backtrace.resolve();
    let mut out = Vec::new();
    for frame in backtrace.frames() {
        for symbol in frame.symbols() {
            let Some(name) = symbol.name() else { continue };
            out.push(Frame {
                name: format!("{name:#}"),
                location: symbol
                    .filename()
                    .zip(symbol.lineno())
                    .map(|(file, line)| (file.display().to_string(), line)),
            });
        }
    }
    out
}

/// The frames from the panicking function down to the framework's own.
fn user_frames(all: &[Frame]) -> &[Frame] {
    // The first run of entry frames from the top; the function is right below it.
    let start = all
        .iter()
        .position(|f| is_panic_entry(&f.name))
        .map_or(0, |first| {
            first
                + all[first..]
                    .iter()
                    .take_while(|f| is_panic_entry(&f.name))
                    .count()
        });
    let rest = all.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|f| is_framework_below(&f.name))
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

fn render(frames: &[Frame], omitted_below: bool) -> String {
    let mut text = String::from("stack backtrace:\n");
    for (n, frame) in frames.iter().enumerate() {
        let _ = writeln!(text, "  {n:>2}: {}", frame.name);
        if let Some((file, line)) = &frame.location {
            let _ = writeln!(text, "        at {file}:{line}");
        }
    }
    if omitted_below {
        text.push_str("  (frames of the framework and the async runtime below are omitted)\n");
    }
    text
}

fn payload_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    info.payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Installs the hook once: panics inside an invocation are reported as above; other panics
/// go to the previous hook.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let Some(context) = Context::current() else {
                return previous(info);
            };
            let message = payload_text(info);
            let all = frames();
            let shown = user_frames(&all);
            let omitted = shown.len() < all.len();
            let location = info.location();
            let place = location
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let report = ErrorReport {
                message: format!(
                    "function panicked{place}: {message}\n{}",
                    render(shown, omitted)
                ),
                function_name: shown.first().map(|f| f.name.clone()),
                file_path: location.map(|l| l.file()),
                line_number: location.map(|l| l.line()),
            };
            log::report(&report, Some(&context));
            drop((report, all));
            crate::memory::release_freed_memory();
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            name: name.to_owned(),
            location: None,
        }
    }

    #[test]
    fn the_panicking_function_is_the_first_frame_shown() {
        let all = [
            frame("trace"),
            frame("functions_framework::panic::frames"),
            frame("std::panicking::panic_with_hook"),
            frame("__rustc::rust_begin_unwind"),
            frame("core::panicking::panic_fmt"),
            frame("my_function::handler::{{closure}}"),
            frame("my_function::helper"),
            frame("std::panicking::catch_unwind::do_call"),
            frame("functions_framework::server::Server::invoke::{{closure}}"),
            frame("tokio::runtime::task::raw::poll"),
        ];
        let shown = user_frames(&all);
        let names: Vec<&str> = shown.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "my_function::handler::{{closure}}",
                "my_function::helper",
                "std::panicking::catch_unwind::do_call"
            ]
        );
        let text = render(shown, true);
        assert!(text.contains(" 0: my_function::handler"), "{text}");
        assert!(text.contains("omitted"), "{text}");
    }

    #[test]
    fn frames_resolve_to_names_here() {
        let all = frames();
        assert!(
            all.iter()
                .any(|f| f.name.contains("frames_resolve_to_names_here")),
            "{:?}",
            all.iter().map(|f| &f.name).collect::<Vec<_>>()
        );
    }
}
