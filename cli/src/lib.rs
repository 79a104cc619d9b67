//! `ff-rust`: the whole workflow of a Rust function for Google Cloud Functions, run from the
//! function crate's own folder (also as `cargo ff-rust`).
//!
//! - `new NAME --http|--cloudevent|--event|--typed` writes a function crate;
//!   `--cloudevent --event-type TYPE` takes a Google event's data decoded into its generated
//!   type (`event-types` lists them).
//! - `convert SOURCE` turns function code (a `.rs` file or a library crate) whose functions
//!   are marked with `#[functions_framework::register::http]` (or `cloud_event`, `event`,
//!   `typed`), or that has `pub fn register(Functions) -> Functions`, into an app.
//! - `dev` serves the crate on `PORT`, rebuilt and restarted on every change, directly or
//!   through Node.js and the shim (`--node`).
//! - `invoke` sends a test event (every Google event family; binary, structured or legacy
//!   form; a Pub/Sub push request) or a file to a running function.
//! - `package` builds `function.zip` for the Node.js runtime, as `make` does.
//! - `deploy` packages, then runs `gcloud functions deploy` (`--dry-run` prints it).
//!
//! ```no_run
//! // What the `ff-rust` binary runs.
//! fn main() -> std::process::ExitCode {
//!     functions_framework_cli::run(std::env::args_os())
//! }
//! ```

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod crate_info;
mod deploy;
mod dev;
mod event_type;
mod fixtures;
mod invoke;
mod package;
mod scaffold;
mod scan;

#[derive(Debug, Parser)]
#[command(
    name = "ff-rust",
    version,
    about = "Start, serve, test, package and deploy Rust functions for Google Cloud Functions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a function project from a template
    New(New),
    /// Turn function code (a .rs file or a library crate) into an app
    Convert(Convert),
    /// List the Google CloudEvent types `new --cloudevent --event-type` takes, with their
    /// data types
    EventTypes(EventTypes),
    /// Serve the function crate on PORT, rebuilt and restarted on every change
    Dev(dev::Dev),
    /// Send a test event (a named fixture, or a file) to a running function
    Invoke(invoke::Invoke),
    /// Build function.zip for the Node.js runtime of Cloud Functions
    Package(Box<package::Package>),
    /// Package, then deploy with `gcloud functions deploy`
    Deploy(Box<deploy::Deploy>),
}

#[derive(Debug, Args)]
struct EventTypes {
    /// Only the types that contain this text (e.g. `pubsub`, `firestore.document`)
    filter: Option<String>,
}

#[derive(Debug, Args)]
#[group(id = "kind", multiple = false)]
struct Kind {
    /// An HTTP function (the default)
    #[arg(long)]
    http: bool,
    /// A CloudEvent function
    #[arg(long)]
    cloudevent: bool,
    /// A legacy event (background) function
    #[arg(long)]
    event: bool,
    /// A typed function: JSON in, JSON out
    #[arg(long)]
    typed: bool,
}

#[derive(Debug, Args)]
struct New {
    /// The function's name: the registered name and the crate's name
    name: String,
    #[command(flatten)]
    kind: Kind,
    /// With --cloudevent: the Google event type the function takes (e.g.
    /// google.cloud.pubsub.topic.v1.messagePublished); its data arrives decoded into the
    /// generated type. `ff-rust event-types` lists them
    #[arg(long, value_name = "TYPE", requires = "cloudevent")]
    event_type: Option<String>,
    /// Where to create the project folder
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    framework: Framework,
}

#[derive(Debug, Args)]
struct Convert {
    /// A .rs file, or a library crate's folder
    source: PathBuf,
    /// Where to write the app (a .rs file only; a crate is converted in place)
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    framework: Framework,
}

#[derive(Debug, Args)]
struct Framework {
    /// Depend on the framework's crates in this checkout (the functions-framework crate's
    /// folder, `go-replacement-rust` in the repository) rather than on the published
    /// version
    #[arg(long = "framework-path", alias = "framework", value_name = "PATH")]
    framework: Option<PathBuf>,
}

/// Runs `ff-rust` with these arguments (the first is the program name); what it says goes to
/// stdout, errors to stderr. Exits 2 on a usage error, 1 when the command fails. As
/// `cargo ff-rust`, cargo passes `ff-rust` as the first argument after the program: it is
/// skipped.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_some_and(|a| a == "ff-rust") {
        args.remove(1);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match &cli.command {
        Command::New(args) => scaffold::new(args),
        Command::Convert(args) => scaffold::convert(args),
        Command::EventTypes(args) => Ok(event_type::list(args.filter.as_deref())),
        Command::Dev(args) => dev::run(args),
        Command::Invoke(args) => invoke::run(args),
        Command::Package(args) => package::run(args).map(|built| built.summary()),
        Command::Deploy(args) => deploy::run(args),
    };
    match result {
        Ok(message) => {
            print!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ff-rust: {message}");
            ExitCode::FAILURE
        }
    }
}
