//! Logging: the framework logs through `tracing`; this module installs a subscriber when the
//! application has not, and writes panic reports.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Installs the default subscriber unless the application installed one: plain text, errors
/// and warnings on stderr, the rest on stdout, level from `RUST_LOG` (default `info`).
///
/// [`Functions::serve`](crate::Functions::serve) calls it, so calling it yourself is only
/// needed to log before serving.
///
/// ```
/// functions_framework::log::init();
/// tracing::info!("starting");
/// ```
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    // Fails only when a subscriber is already set, which is the application's choice to keep.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .try_init();
}

/// Writes one panic report to stderr in a single write, so that concurrent output cannot
/// split it.
pub(crate) fn panic(
    execution_id: &str,
    message: &str,
    location: &str,
    backtrace: &std::backtrace::Backtrace,
) {
    let report = format!(
        "function panicked (execution_id={execution_id}) at {location}: {message}\nstack backtrace:\n{backtrace}\n"
    );
    let _ = std::io::stderr().lock().write_all(report.as_bytes());
}
