//! Logging: the framework logs through [`tracing`]; [`init`] installs a subscriber that
//! writes one JSON object per line in the Cloud Logging format, or plain text in a terminal.
//!
//! Each JSON line carries:
//!
//! | field | from |
//! | --- | --- |
//! | `severity` | the level: `ERROR`, `WARNING`, `INFO`, `DEBUG` (TRACE is `DEBUG` too) |
//! | `message` | the message, then the event's other fields as `key=value` |
//! | `logging.googleapis.com/trace` | `projects/PROJECT/traces/TRACE_ID`, from the request's trace header and the project id |
//! | `logging.googleapis.com/spanId` | the caller's span id, 16 hex digits |
//! | `logging.googleapis.com/labels` | `{"execution_id": ...}` |
//!
//! The invocation fields come from the [`Context`] of the task that logs, so lines of
//! concurrent invocations never mix. The project id is `GOOGLE_CLOUD_PROJECT`,
//! `GCLOUD_PROJECT` or `GCP_PROJECT`; on Cloud Run and Cloud Functions (`K_SERVICE` set)
//! without those, it is fetched once from the metadata server in the background.
//!
//! `FUNCTION_LOG_FORMAT=json` or `text` chooses the format; by default it is text when
//! stdout is a terminal and JSON otherwise. `RUST_LOG` sets the level (default `info`).
//!
//! ```
//! functions_framework::log::init();
//! tracing::info!(user = "ada", "signed in");
//! // {"severity":"INFO","message":"signed in user=ada", ...}
//! ```

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::Context;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One Cloud Logging JSON object per line on stdout.
    Json,
    /// Human-readable lines: errors and warnings on stderr, the rest on stdout.
    Text,
}

impl Format {
    /// `FUNCTION_LOG_FORMAT` if set, else text in a terminal and JSON otherwise.
    fn from_env() -> Format {
        match std::env::var("FUNCTION_LOG_FORMAT")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
            Some(f) if f.eq_ignore_ascii_case("text") => Format::Text,
            _ if std::io::stdout().is_terminal() => Format::Text,
            _ => Format::Json,
        }
    }
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Installs the default subscriber unless the application installed one. The format comes
/// from `FUNCTION_LOG_FORMAT` (`json` or `text`; by default text when stdout is a terminal and
/// JSON otherwise), the level from `RUST_LOG` (default `info`).
///
/// [`Functions::serve`](crate::Functions::serve) calls it, so calling it yourself is only
/// needed to log before serving.
///
/// ```
/// functions_framework::log::init();
/// tracing::warn!("disk almost full");
/// ```
pub fn init() {
    let format = *FORMAT.get_or_init(Format::from_env);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only when a subscriber is already set, which is the application's choice to keep.
    let _ = match format {
        Format::Json => {
            project::start_lookup();
            tracing_subscriber::registry()
                .with(filter)
                .with(CloudLogging)
                .try_init()
        }
        Format::Text => {
            let writer = std::io::stderr
                .with_max_level(Level::WARN)
                .or_else(std::io::stdout);
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_target(false)
                .finish()
                .try_init()
        }
    };
}

/// Cloud Logging's name for a level.
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// Gathers an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    extra: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.extra, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.extra, " {}={value:?}", field.name());
        }
    }
}

/// The Cloud Logging JSON entry for an event, with the invocation's fields when there is
/// one.
fn entry(level: &Level, message: String, context: Option<&Context>) -> Value {
    let mut object = Map::new();
    object.insert("severity".into(), Value::from(severity(level)));
    object.insert("message".into(), Value::from(message));
    if let Some(context) = context {
        if let Some(trace) = context.trace() {
            let trace_name = match project::id() {
                Some(project) => format!("projects/{project}/traces/{}", trace.trace_id),
                None => trace.trace_id.clone(),
            };
            object.insert(
                "logging.googleapis.com/trace".into(),
                Value::from(trace_name),
            );
            if let Some(span) = trace.span_id.as_deref().and_then(span_hex) {
                object.insert("logging.googleapis.com/spanId".into(), Value::from(span));
            }
            object.insert(
                "logging.googleapis.com/trace_sampled".into(),
                Value::from(trace.sampled),
            );
        }
        let mut labels = Map::new();
        labels.insert("execution_id".into(), Value::from(context.execution_id()));
        object.insert(
            "logging.googleapis.com/labels".into(),
            Value::Object(labels),
        );
    }
    Value::Object(object)
}

/// Span ids as Cloud Logging wants them: 16 hex digits. `traceparent` gives hex already;
/// `X-Cloud-Trace-Context` gives a decimal number.
fn span_hex(span: &str) -> Option<String> {
    if span.len() == 16 && span.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(span.to_ascii_lowercase());
    }
    span.parse::<u64>().ok().map(|n| format!("{n:016x}"))
}

fn write_line(value: &Value) {
    let mut line = value.to_string();
    line.push('\n');
    // One write per entry, so that concurrent entries never interleave.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

/// The layer writing Cloud Logging JSON.
struct CloudLogging;

impl<S: Subscriber> Layer<S> for CloudLogging {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message + &fields.extra;
        let context = Context::current();
        write_line(&entry(event.metadata().level(), message, context.as_ref()));
    }
}

/// Writes one panic report: in JSON mode one ERROR entry whose message holds the panic and
/// its backtrace (the shape Error Reporting reads); in text mode one write to stderr.
pub(crate) fn panic(
    context: &Context,
    message: &str,
    location: &str,
    backtrace: &std::backtrace::Backtrace,
) {
    let report =
        format!("function panicked at {location}: {message}\nstack backtrace:\n{backtrace}");
    match FORMAT.get().copied().unwrap_or(Format::Text) {
        Format::Json => write_line(&entry(&Level::ERROR, report, Some(context))),
        Format::Text => {
            let line = format!("ERROR execution_id={} {report}\n", context.execution_id());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// The Google Cloud project id, for trace names.
mod project {
    use std::io::{Read, Write};
    use std::sync::OnceLock;
    use std::time::Duration;

    static PROJECT: OnceLock<Option<String>> = OnceLock::new();

    fn from_env() -> Option<String> {
        ["GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The project id, once known.
    pub(super) fn id() -> Option<&'static str> {
        if let Some(known) = PROJECT.get() {
            return known.as_deref();
        }
        from_env().and_then(|id| PROJECT.get_or_init(|| Some(id)).as_deref())
    }

    /// On Google Cloud without a project variable, asks the metadata server once, on a
    /// thread of its own so that start-up never waits for it.
    pub(super) fn start_lookup() {
        if from_env().is_some() || std::env::var_os("K_SERVICE").is_none() {
            return;
        }
        let host = std::env::var("GCE_METADATA_HOST")
            .unwrap_or_else(|_| "metadata.google.internal".to_owned());
        let _ = std::thread::Builder::new()
            .name("project-id".into())
            .spawn(move || {
                if let Some(id) = fetch(&host) {
                    let _ = PROJECT.set(Some(id));
                }
            });
    }

    fn fetch(host: &str) -> Option<String> {
        use std::net::ToSocketAddrs;
        let address = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let target = address.to_socket_addrs().ok()?.next()?;
        let mut stream =
            std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let request = format!(
            "GET /computeMetadata/v1/project/project-id HTTP/1.0\r\nHost: {host}\r\nMetadata-Flavor: Google\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let ok = head.split(' ').nth(1) == Some("200");
        let id = body.trim();
        (ok && !id.is_empty() && id.len() < 128).then(|| id.to_owned())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn fetches_the_project_id_from_a_metadata_server() {
            let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let address = server.local_addr().expect("addr").to_string();
            let handle = std::thread::spawn(move || {
                use std::io::{Read, Write};
                let (mut stream, _) = server.accept().expect("accept");
                let mut request = [0u8; 1024];
                let n = stream.read(&mut request).expect("read");
                let request = String::from_utf8_lossy(&request[..n]).into_owned();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nmy-project")
                    .expect("write");
                request
            });
            assert_eq!(super::fetch(&address).as_deref(), Some("my-project"));
            let request = handle.join().expect("server");
            assert!(request.contains("Metadata-Flavor: Google"), "{request}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn context(headers: &[(&'static str, &'static str)]) -> Context {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        Context::from_headers(&map, None)
    }

    #[test]
    fn entries_carry_severity_trace_span_and_execution_id() {
        let ctx = context(&[
            ("function-execution-id", "exec-7"),
            (
                "x-cloud-trace-context",
                "105445aa7843bc8bf206b12000100000/10;o=1",
            ),
        ]);
        let value = entry(&Level::WARN, "careful".into(), Some(&ctx));
        assert_eq!(value["severity"], "WARNING");
        assert_eq!(value["message"], "careful");
        let trace = value["logging.googleapis.com/trace"]
            .as_str()
            .unwrap_or_default();
        assert!(
            trace.ends_with("105445aa7843bc8bf206b12000100000"),
            "{trace}"
        );
        assert_eq!(value["logging.googleapis.com/spanId"], "000000000000000a");
        assert_eq!(
            value["logging.googleapis.com/labels"]["execution_id"],
            "exec-7"
        );
        assert_eq!(value["logging.googleapis.com/trace_sampled"], true);
    }

    #[test]
    fn entries_outside_an_invocation_are_plain() {
        let value = entry(&Level::ERROR, "boom".into(), None);
        assert_eq!(
            value,
            serde_json::json!({"severity": "ERROR", "message": "boom"})
        );
        assert_eq!(severity(&Level::TRACE), "DEBUG");
        assert_eq!(severity(&Level::DEBUG), "DEBUG");
        assert_eq!(severity(&Level::INFO), "INFO");
    }

    #[test]
    fn span_ids_become_hex() {
        assert_eq!(
            span_hex("00f067aa0ba902b7").as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(span_hex("1").as_deref(), Some("0000000000000001"));
        assert_eq!(span_hex("x"), None);
    }
}
