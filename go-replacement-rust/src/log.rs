//! Logging: the framework logs through [`tracing`]; [`init`] installs a subscriber that
//! writes one JSON object per line in the Cloud Logging format, or plain text in a terminal.
//!
//! Each JSON line carries:
//!
//! | field | from |
//! | --- | --- |
//! | `severity` | the level: `ERROR`, `WARNING`, `INFO`, `DEBUG` (TRACE is `DEBUG` too) |
//! | `message` | the message |
//! | every other field of the event | a key of its own (Cloud Logging's `jsonPayload`), numbers and booleans as such |
//! | `logging.googleapis.com/sourceLocation` | `{"file", "line", "function"}` of the `tracing` call (the function is its module path) |
//! | `logging.googleapis.com/trace` | `projects/PROJECT/traces/TRACE_ID`, from the request's trace header and the project id |
//! | `logging.googleapis.com/spanId` | the invocation's span when it is traced (the `opentelemetry` feature), else the caller's; 16 hex digits |
//! | `logging.googleapis.com/labels` | `{"execution_id": ...}` |
//!
//! The invocation fields come from the [`Context`] of the task that logs, so lines of
//! concurrent invocations never mix. The project id is `GOOGLE_CLOUD_PROJECT`,
//! `GCLOUD_PROJECT` or `GCP_PROJECT`; on Cloud Run and Cloud Functions (`K_SERVICE` set)
//! without those, it is fetched once from the metadata server in the background.
//!
//! Panics and function errors are written in the form Error Reporting ingests: one entry
//! with `@type` `type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent`,
//! `serviceContext` (`K_SERVICE`, `K_REVISION`), `context.httpRequest` and
//! `context.reportLocation`, and the message with the stack.
//!
//! `FUNCTION_LOG_FORMAT=json` or `text` chooses the format; by default it is text when
//! stdout is a terminal and JSON otherwise. `RUST_LOG` sets the level (default `info`). Any
//! other value of either is an error: [`init`] returns it and `serve` stops with it.
//!
//! ```
//! functions_framework::log::init().expect("valid FUNCTION_LOG_FORMAT and RUST_LOG");
//! tracing::info!(user = "ada", attempts = 3, "signed in");
//! // {"severity":"INFO","message":"signed in","user":"ada","attempts":3, ...}
//! ```

use std::fmt;
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

/// A logging setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfigError(String);

impl fmt::Display for LogConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LogConfigError {}

/// The format `FUNCTION_LOG_FORMAT` names, or the default for where stdout goes.
fn format_from(value: Option<&str>, stdout_is_terminal: bool) -> Result<Format, LogConfigError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(f) if f.eq_ignore_ascii_case("json") => Ok(Format::Json),
        Some(f) if f.eq_ignore_ascii_case("text") => Ok(Format::Text),
        Some(other) => Err(LogConfigError(format!(
            "FUNCTION_LOG_FORMAT must be json or text, got {other:?}"
        ))),
        None if stdout_is_terminal => Ok(Format::Text),
        None => Ok(Format::Json),
    }
}

/// The level filter `RUST_LOG` names (default `info`).
fn filter_from(value: Option<&str>) -> Result<EnvFilter, LogConfigError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(EnvFilter::new("info")),
        Some(directives) => EnvFilter::builder().parse(directives).map_err(|e| {
            LogConfigError(format!(
                "RUST_LOG {directives:?} is not a valid filter ({e}); use a level such as \
                 info or debug, or directives such as my_function=debug,info"
            ))
        }),
    }
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Installs the default subscriber unless the application installed one. The format comes
/// from `FUNCTION_LOG_FORMAT` (`json` or `text`; by default text when stdout is a terminal and
/// JSON otherwise), the level from `RUST_LOG` (default `info`); an unusable value of either
/// is an error that names it.
///
/// [`Functions::serve`](crate::Functions::serve) calls it, so calling it yourself is only
/// needed to log before serving.
///
/// ```
/// functions_framework::log::init().expect("logging");
/// tracing::warn!("disk almost full");
/// ```
pub fn init() -> Result<(), LogConfigError> {
    let format = format_from(
        std::env::var("FUNCTION_LOG_FORMAT").ok().as_deref(),
        std::io::stdout().is_terminal(),
    )?;
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref())?;
    let format = *FORMAT.get_or_init(|| format);
    service::init();
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
    Ok(())
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

/// Keys the entry itself uses: a field of the same name does not replace them.
fn is_reserved(key: &str) -> bool {
    matches!(key, "severity" | "message" | "time" | "timestamp" | "@type")
        || key.starts_with("logging.googleapis.com/")
}

/// Gathers an event's message and its other fields as JSON values.
#[derive(Default)]
struct Fields {
    message: String,
    extra: Map<String, Value>,
}

impl Fields {
    fn insert(&mut self, field: &Field, value: Value) {
        if !is_reserved(field.name()) {
            self.extra.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.insert(field, Value::from(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::from(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write as _;
            let _ = write!(self.message, "{value:?}");
        } else {
            self.insert(field, Value::from(format!("{value:?}")));
        }
    }
}

/// The Cloud Logging JSON entry for an event, with the invocation's fields when there is
/// one.
fn entry(level: &Level, message: String, context: Option<&Context>) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("severity".into(), Value::from(severity(level)));
    object.insert("message".into(), Value::from(message));
    if let Some(context) = context {
        if let Some(trace_id) = context.trace_id() {
            let trace_name = match project::id() {
                Some(project) => format!("projects/{project}/traces/{trace_id}"),
                None => trace_id.to_owned(),
            };
            object.insert(
                "logging.googleapis.com/trace".into(),
                Value::from(trace_name),
            );
            let span = context.span_id().map(str::to_owned).or_else(|| {
                context
                    .trace()
                    .and_then(|t| t.span_id.as_deref())
                    .and_then(span_hex)
            });
            if let Some(span) = span {
                object.insert("logging.googleapis.com/spanId".into(), Value::from(span));
            }
            // A trace the framework started itself is sampled: its span is exported.
            let sampled = context.trace().is_none_or(|t| t.sampled);
            object.insert(
                "logging.googleapis.com/trace_sampled".into(),
                Value::from(sampled),
            );
        }
        let mut labels = Map::new();
        labels.insert("execution_id".into(), Value::from(context.execution_id()));
        object.insert(
            "logging.googleapis.com/labels".into(),
            Value::Object(labels),
        );
    }
    object
}

/// Span ids as Cloud Logging wants them: 16 hex digits. `traceparent` gives hex already;
/// `X-Cloud-Trace-Context` gives a decimal number.
pub(crate) fn span_hex(span: &str) -> Option<String> {
    if span.len() == 16 && span.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(span.to_ascii_lowercase());
    }
    span.parse::<u64>().ok().map(|n| format!("{n:016x}"))
}

fn write_line(value: &Map<String, Value>) {
    let mut line = serde_json::to_string(value).unwrap_or_default();
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
        let context = Context::current();
        let metadata = event.metadata();
        let mut object = entry(metadata.level(), fields.message, context.as_ref());
        for (key, value) in fields.extra {
            object.entry(key).or_insert(value);
        }
        let mut location = Map::new();
        if let Some(file) = metadata.file() {
            location.insert("file".into(), Value::from(file));
        }
        if let Some(line) = metadata.line() {
            // Cloud Logging's `LogEntrySourceLocation.line` is an int64: a string in JSON.
            location.insert("line".into(), Value::from(line.to_string()));
        }
        if let Some(module) = metadata.module_path() {
            location.insert("function".into(), Value::from(module));
        }
        if !location.is_empty() {
            object.insert(
                "logging.googleapis.com/sourceLocation".into(),
                Value::Object(location),
            );
        }
        write_line(&object);
    }
}

/// An error to report: a panic or a function's error.
#[derive(Debug)]
pub(crate) struct ErrorReport<'a> {
    /// The message, with the stack when there is one (for a panic: its backtrace).
    pub(crate) message: String,
    /// Where the error happened: for a panic, the panicking function and its location; for a
    /// function error, the registered function.
    pub(crate) function_name: Option<String>,
    pub(crate) file_path: Option<&'a str>,
    pub(crate) line_number: Option<u32>,
}

/// The Error Reporting type of an entry.
const REPORTED_ERROR_EVENT: &str =
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent";

/// The `context` of a reported error: the request and where the error happened.
fn report_context(report: &ErrorReport<'_>, context: Option<&Context>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(request) = context.and_then(Context::request) {
        let mut http = Map::new();
        http.insert("method".into(), Value::from(request.method.as_str()));
        http.insert("url".into(), Value::from(request.uri.to_string()));
        let text = |value: &Option<http::HeaderValue>| {
            value
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(Value::from)
        };
        if let Some(agent) = text(&request.user_agent) {
            http.insert("userAgent".into(), agent);
        }
        if let Some(referrer) = text(&request.referrer) {
            http.insert("referrer".into(), referrer);
        }
        if let Some(ip) = request.remote_ip {
            http.insert("remoteIp".into(), Value::from(ip.to_string()));
        }
        out.insert("httpRequest".into(), Value::Object(http));
    }
    let mut location = Map::new();
    if let Some(function) = &report.function_name {
        location.insert("functionName".into(), Value::from(function.as_str()));
    }
    if let Some(file) = report.file_path {
        location.insert("filePath".into(), Value::from(file));
    }
    if let Some(line) = report.line_number {
        location.insert("lineNumber".into(), Value::from(line));
    }
    if !location.is_empty() {
        out.insert("reportLocation".into(), Value::Object(location));
    }
    out
}

/// Writes one error report: in JSON mode one ERROR entry that Error Reporting groups; in
/// text mode one write to stderr.
pub(crate) fn report(report: &ErrorReport<'_>, context: Option<&Context>) {
    match FORMAT.get().copied().unwrap_or(Format::Text) {
        Format::Json => {
            let mut object = entry(&Level::ERROR, report.message.clone(), context);
            object.insert("@type".into(), Value::from(REPORTED_ERROR_EVENT));
            object.insert(
                "serviceContext".into(),
                Value::Object(service::context_json()),
            );
            object.insert(
                "context".into(),
                Value::Object(report_context(report, context)),
            );
            write_line(&object);
        }
        Format::Text => {
            let id = context.map(Context::execution_id).unwrap_or("-");
            let line = format!("ERROR execution_id={id} {}\n", report.message);
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Error Reporting's `serviceContext`: `K_SERVICE` and `K_REVISION` as the platform sets
/// them, else the served function's name.
pub(crate) mod service {
    use std::sync::OnceLock;

    use serde_json::{Map, Value};

    static NAME: OnceLock<String> = OnceLock::new();
    static FUNCTION: OnceLock<String> = OnceLock::new();
    static VERSION: OnceLock<Option<String>> = OnceLock::new();

    fn var(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    pub(crate) fn init() {
        if let Some(service) = var("K_SERVICE") {
            let _ = NAME.set(service);
        }
        let _ = VERSION.set(var("K_REVISION"));
    }

    /// The function being served: the service name when the platform gives none.
    pub(crate) fn set_function(name: &str) {
        let _ = FUNCTION.set(name.to_owned());
    }

    /// The name of the function being served (`function` before `serve` has chosen one).
    pub(crate) fn function() -> &'static str {
        FUNCTION.get().map_or("function", String::as_str)
    }

    pub(crate) fn context_json() -> Map<String, Value> {
        let mut out = Map::new();
        let service = NAME
            .get()
            .or_else(|| FUNCTION.get())
            .map_or("function", String::as_str);
        out.insert("service".into(), Value::from(service));
        if let Some(Some(version)) = VERSION.get() {
            out.insert("version".into(), Value::from(version.as_str()));
        }
        out
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
        let value = Value::Object(entry(&Level::WARN, "careful".into(), Some(&ctx)));
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
        let value = Value::Object(entry(&Level::ERROR, "boom".into(), None));
        assert_eq!(
            value,
            serde_json::json!({"severity": "ERROR", "message": "boom"})
        );
        assert_eq!(severity(&Level::TRACE), "DEBUG");
        assert_eq!(severity(&Level::DEBUG), "DEBUG");
        assert_eq!(severity(&Level::INFO), "INFO");
    }

    #[test]
    fn bad_settings_are_errors_that_name_them() {
        assert_eq!(format_from(Some("JSON"), true), Ok(Format::Json));
        assert_eq!(format_from(Some(" text "), false), Ok(Format::Text));
        assert_eq!(format_from(None, true), Ok(Format::Text));
        assert_eq!(format_from(Some(""), false), Ok(Format::Json));
        let error = format_from(Some("xml"), false).expect_err("xml");
        assert!(error.to_string().contains("FUNCTION_LOG_FORMAT"), "{error}");
        assert!(filter_from(None).is_ok());
        assert!(filter_from(Some("debug,hyper=warn")).is_ok());
        let error = filter_from(Some("info,[[[")).expect_err("bad directive");
        assert!(error.to_string().contains("RUST_LOG"), "{error}");
    }

    #[test]
    fn fields_become_keys_of_their_own() {
        struct Capture(std::sync::Mutex<Vec<Map<String, Value>>>);
        // Recorded through a real subscriber: the visitor sees typed values.
        impl<S: Subscriber> Layer<S> for &'static Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
                let mut fields = Fields::default();
                event.record(&mut fields);
                let mut object = fields.extra;
                object.insert("message".into(), Value::from(fields.message));
                self.0.lock().expect("lock").push(object);
            }
        }
        let capture: &'static Capture = Box::leak(Box::new(Capture(Default::default())));
        let subscriber = tracing_subscriber::registry().with(capture);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                user = "ada",
                attempts = 3,
                ok = true,
                ratio = 0.5,
                severity = "x",
                "signed in"
            );
        });
        let seen = capture.0.lock().expect("lock");
        assert_eq!(
            Value::Object(seen[0].clone()),
            serde_json::json!({"message": "signed in", "user": "ada", "attempts": 3, "ok": true, "ratio": 0.5})
        );
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
