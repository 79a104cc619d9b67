//! Flags and environment: what the function is, where it listens, and the precedence
//! code > command-line flags > environment variables.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use clap::Parser;

/// The kind of function, as `FUNCTION_SIGNATURE_TYPE` / `--signature-type` name it.
///
/// ```
/// use functions_framework::SignatureType;
///
/// assert_eq!("cloudevent".parse::<SignatureType>().ok(), Some(SignatureType::CloudEvent));
/// assert_eq!(SignatureType::Http.to_string(), "http");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SignatureType {
    /// A plain HTTP function (also any `tower::Service`).
    #[value(name = "http")]
    Http,
    /// A legacy background event function: `(data, context)`.
    #[value(name = "event")]
    Event,
    /// A CloudEvent function.
    #[value(name = "cloudevent")]
    CloudEvent,
    /// A typed function: JSON in, JSON out.
    #[value(name = "typed")]
    Typed,
}

impl SignatureType {
    /// The name used by `FUNCTION_SIGNATURE_TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureType::Http => "http",
            SignatureType::Event => "event",
            SignatureType::CloudEvent => "cloudevent",
            SignatureType::Typed => "typed",
        }
    }

    /// Whether a function registered as `self` can serve requests the platform announces as
    /// `requested`. Typed functions are HTTP functions to the platform, and event and
    /// CloudEvent functions accept both event encodings (they convert), so only crossing
    /// between HTTP and events is a mismatch.
    pub(crate) fn serves(self, requested: SignatureType) -> bool {
        let is_event =
            |s: SignatureType| matches!(s, SignatureType::Event | SignatureType::CloudEvent);
        is_event(self) == is_event(requested)
    }
}

impl fmt::Display for SignatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SignatureType {
    type Err = UnknownSignatureType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <SignatureType as clap::ValueEnum>::from_str(s.trim(), true)
            .map_err(|_| UnknownSignatureType(s.to_owned()))
    }
}

/// A signature type name that is none of `http`, `event`, `cloudevent` and `typed`.
///
/// ```
/// use functions_framework::SignatureType;
///
/// let error = "grpc".parse::<SignatureType>().expect_err("not a signature type");
/// assert_eq!(
///     error.to_string(),
///     r#"unknown signature type "grpc": expected one of http, event, cloudevent, typed"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignatureType(String);

impl fmt::Display for UnknownSignatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signature type {:?}: expected one of http, event, cloudevent, typed",
            self.0
        )
    }
}

impl std::error::Error for UnknownSignatureType {}

/// The command line. Environment variables are read by [`resolve`] rather than by clap, so
/// that resolution is a pure function of its inputs and can be tested without touching the
/// process environment.
#[derive(Debug, Parser)]
#[command(
    about = "Serves a function with the Functions Framework for Rust",
    after_help = "Environment: PORT, HOST, FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE, \
                  CLOUD_RUN_TIMEOUT_SECONDS, IGNORED_ROUTES. Flags override the environment; \
                  values set in code override both."
)]
struct Flags {
    /// Port to listen on [env: PORT] [default: 8080]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Address to listen on [env: HOST] [default: all addresses, IPv6 and IPv4]
    #[arg(long, value_name = "ADDRESS")]
    host: Option<std::net::IpAddr>,
    /// Name of the registered function to serve [env: FUNCTION_TARGET] [default: function]
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    /// Signature type the platform expects [env: FUNCTION_SIGNATURE_TYPE]
    #[arg(long, value_name = "TYPE", value_enum)]
    signature_type: Option<SignatureType>,
    /// Print the registered functions as JSON and exit
    #[arg(long)]
    list_functions: bool,
    /// The function's source folder, as the Node.js launcher takes it; accepted so that the
    /// binary can stand in for that launcher, and ignored: the binary is the function
    #[arg(long, value_name = "DIR")]
    source: Option<std::path::PathBuf>,
}

/// What the code fixed with the builder: it wins over flags and environment.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    pub(crate) port: Option<u16>,
    pub(crate) target: Option<String>,
    pub(crate) signature_type: Option<SignatureType>,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) port: u16,
    /// `None`: every address, IPv6 and IPv4.
    pub(crate) host: Option<std::net::IpAddr>,
    /// Paths HTTP functions answer with 404 without being invoked.
    pub(crate) ignored_routes: Vec<String>,
    /// `None` when nothing named a target: the sole registered function is served then.
    pub(crate) target: Option<String>,
    pub(crate) signature_type: Option<SignatureType>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) list_functions: bool,
}

/// The default port, as every Functions Framework uses.
pub(crate) const DEFAULT_PORT: u16 = 8080;
/// The default target name of the Functions Framework contract.
pub(crate) const DEFAULT_TARGET: &str = "function";
/// What HTTP functions answer 404 for without being invoked, unless `IGNORED_ROUTES` says.
pub(crate) const DEFAULT_IGNORED_ROUTES: [&str; 2] = ["/robots.txt", "/favicon.ico"];

/// Why configuration failed.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// The command line was wrong, or asked for `--help`: clap prints and exits.
    Flags(clap::Error),
    /// An environment variable holds a value that cannot be used.
    Env(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Flags(e) => write!(f, "{e}"),
            ConfigError::Env(message) => f.write_str(message),
        }
    }
}

/// Resolves code > flags > environment.
pub(crate) fn resolve<I, T>(
    code: &Overrides,
    args: I,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let flags = Flags::try_parse_from(args).map_err(ConfigError::Flags)?;
    let env_raw = |name: &str| env(name);
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());

    let port = match (code.port, flags.port, env("PORT")) {
        (Some(port), _, _) | (None, Some(port), _) => port,
        (None, None, Some(raw)) => raw.trim().parse::<u16>().map_err(|_| {
            ConfigError::Env(format!(
                "PORT must be a port number from 0 to 65535, got {raw:?}"
            ))
        })?,
        (None, None, None) => DEFAULT_PORT,
    };
    let host = match (flags.host, env("HOST")) {
        (Some(host), _) => Some(host),
        (None, Some(raw)) => Some(raw.trim().parse().map_err(|_| {
            ConfigError::Env(format!(
                "HOST must be an IP address to listen on, such as 0.0.0.0 or ::1, got {raw:?}"
            ))
        })?),
        (None, None) => None,
    };
    // As the Node.js framework reads it: a list replaces the default, empty turns it off.
    let ignored_routes = match env_raw("IGNORED_ROUTES") {
        None => DEFAULT_IGNORED_ROUTES
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|route| !route.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let target = code
        .target
        .clone()
        .or(flags.target)
        .or_else(|| env("FUNCTION_TARGET"));
    let signature_type = match (code.signature_type, flags.signature_type) {
        (Some(s), _) | (None, Some(s)) => Some(s),
        (None, None) => match env("FUNCTION_SIGNATURE_TYPE") {
            Some(raw) => Some(
                raw.parse()
                    .map_err(|e| ConfigError::Env(format!("FUNCTION_SIGNATURE_TYPE: {e}")))?,
            ),
            None => None,
        },
    };
    let timeout = match env("CLOUD_RUN_TIMEOUT_SECONDS") {
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(secs) => Some(Duration::from_secs(secs)),
            Err(_) => {
                return Err(ConfigError::Env(format!(
                    "CLOUD_RUN_TIMEOUT_SECONDS must be a whole number of seconds, got {raw:?}"
                )));
            }
        },
        None => None,
    };
    Ok(Config {
        port,
        host,
        ignored_routes,
        target,
        signature_type,
        timeout,
        list_functions: flags.list_functions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn ok(code: &Overrides, args: &[&str], env: &[(&str, &str)]) -> Config {
        let mut argv = vec!["bin"];
        argv.extend_from_slice(args);
        match resolve(code, argv, env_of(env)) {
            Ok(config) => config,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn defaults() {
        let config = ok(&Overrides::default(), &[], &[]);
        assert_eq!(config.port, 8080);
        assert_eq!(config.target, None);
        assert_eq!(config.signature_type, None);
        assert_eq!(config.timeout, None);
    }

    #[test]
    fn env_is_used_without_flags() {
        let config = ok(
            &Overrides::default(),
            &[],
            &[
                ("PORT", "9000"),
                ("FUNCTION_TARGET", "hello"),
                ("FUNCTION_SIGNATURE_TYPE", "cloudevent"),
                ("CLOUD_RUN_TIMEOUT_SECONDS", "300"),
            ],
        );
        assert_eq!(config.port, 9000);
        assert_eq!(config.target.as_deref(), Some("hello"));
        assert_eq!(config.signature_type, Some(SignatureType::CloudEvent));
        assert_eq!(config.timeout, Some(Duration::from_secs(300)));
    }

    #[test]
    fn flags_beat_env() {
        let env = [
            ("PORT", "9000"),
            ("FUNCTION_TARGET", "env"),
            ("FUNCTION_SIGNATURE_TYPE", "event"),
        ];
        let config = ok(
            &Overrides::default(),
            &[
                "--port",
                "9001",
                "--target=flag",
                "--signature-type",
                "http",
            ],
            &env,
        );
        assert_eq!(config.port, 9001);
        assert_eq!(config.target.as_deref(), Some("flag"));
        assert_eq!(config.signature_type, Some(SignatureType::Http));
    }

    #[test]
    fn code_beats_flags_and_env() {
        let code = Overrides {
            port: Some(9002),
            target: Some("code".into()),
            signature_type: Some(SignatureType::Typed),
        };
        let config = ok(
            &code,
            &[
                "--port",
                "9001",
                "--target=flag",
                "--signature-type",
                "http",
            ],
            &[("PORT", "9000"), ("FUNCTION_TARGET", "env")],
        );
        assert_eq!(config.port, 9002);
        assert_eq!(config.target.as_deref(), Some("code"));
        assert_eq!(config.signature_type, Some(SignatureType::Typed));
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("FUNCTION_SIGNATURE_TYPE", "grpc"),
            ("CLOUD_RUN_TIMEOUT_SECONDS", "-1"),
        ] {
            match resolve(&Overrides::default(), ["bin"], env_of(&[(name, value)])) {
                Err(ConfigError::Env(message)) => assert!(message.contains(name), "{message}"),
                other => panic!("{name}={value}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn bad_flags_are_clap_errors() {
        for args in [
            &["bin", "--port", "x"][..],
            &["bin", "--signature-type", "grpc"],
            &["bin", "--unknown"],
        ] {
            assert!(matches!(
                resolve(&Overrides::default(), args.iter().copied(), env_of(&[])),
                Err(ConfigError::Flags(_))
            ));
        }
    }

    #[test]
    fn the_node_launchers_flags_are_accepted() {
        let config = ok(
            &Overrides::default(),
            &[
                "--target=hello",
                "--port=9003",
                "--signature-type=http",
                "--source=/workspace",
            ],
            &[],
        );
        assert_eq!(config.target.as_deref(), Some("hello"));
        assert_eq!(config.port, 9003);
        let config = ok(&Overrides::default(), &["--source", "."], &[]);
        assert_eq!(config.port, 8080);
    }

    #[test]
    fn host_and_ignored_routes() {
        let config = ok(&Overrides::default(), &[], &[]);
        assert_eq!(config.host, None);
        assert_eq!(config.ignored_routes, ["/robots.txt", "/favicon.ico"]);
        let config = ok(
            &Overrides::default(),
            &["--host", "127.0.0.1"],
            &[("HOST", "::1"), ("IGNORED_ROUTES", "/a, /b,")],
        );
        assert_eq!(config.host, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(config.ignored_routes, ["/a", "/b"]);
        let config = ok(
            &Overrides::default(),
            &[],
            &[("HOST", "::1"), ("IGNORED_ROUTES", "")],
        );
        assert_eq!(config.host, Some("::1".parse().expect("ip")));
        assert!(config.ignored_routes.is_empty());
        assert!(matches!(
            resolve(&Overrides::default(), ["bin"], env_of(&[("HOST", "example.com")])),
            Err(ConfigError::Env(message)) if message.contains("HOST")
        ));
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let config = ok(
            &Overrides::default(),
            &[],
            &[("PORT", ""), ("FUNCTION_TARGET", " ")],
        );
        assert_eq!(config.port, 8080);
        assert_eq!(config.target, None);
    }

    #[test]
    fn signature_compatibility() {
        use SignatureType::*;
        assert!(Typed.serves(Http));
        assert!(Http.serves(Http));
        assert!(CloudEvent.serves(Event));
        assert!(Event.serves(CloudEvent));
        assert!(!Http.serves(CloudEvent));
        assert!(!CloudEvent.serves(Http));
        assert!(!Event.serves(Typed));
    }
}
