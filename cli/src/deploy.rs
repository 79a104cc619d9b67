//! `deploy`: packages the function, then deploys it with `gcloud functions deploy` as a gen2
//! function on the Node.js runtime (the package's launcher starts the Rust binary).

use std::process::Command;

use clap::{ArgGroup, Args};

use crate::package::{self, Package};

/// The Node.js runtime the package is made for (Ubuntu 22.04).
const RUNTIME: &str = "nodejs22";

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("trigger").required(true).args([
    "trigger_http", "trigger_topic", "trigger_bucket", "trigger_event_filters",
])))]
pub(crate) struct Deploy {
    /// The Cloud Functions name (default: the function the binary registers, when it
    /// registers one)
    name: Option<String>,
    /// The registered function to serve (FUNCTION_TARGET; default: the name)
    #[arg(long)]
    entry_point: Option<String>,
    /// The region (gcloud's --region)
    #[arg(long)]
    region: Option<String>,
    /// The project (default: gcloud's configured one)
    #[arg(long)]
    project: Option<String>,
    /// An HTTP function
    #[arg(long)]
    trigger_http: bool,
    /// A Pub/Sub topic's messages
    #[arg(long, value_name = "TOPIC")]
    trigger_topic: Option<String>,
    /// A Cloud Storage bucket's object events
    #[arg(long, value_name = "BUCKET")]
    trigger_bucket: Option<String>,
    /// Eventarc filters, e.g. type=google.cloud.firestore.document.v1.written (repeatable)
    #[arg(long, value_name = "ATTRIBUTE=VALUE")]
    trigger_event_filters: Vec<String>,
    /// With --trigger-event-filters: filters on path patterns (repeatable)
    #[arg(
        long,
        value_name = "ATTRIBUTE=PATTERN",
        requires = "trigger_event_filters"
    )]
    trigger_event_filters_path_pattern: Vec<String>,
    /// With --trigger-http: answer requests without authentication
    #[arg(long, requires = "trigger_http")]
    allow_unauthenticated: bool,
    /// Environment variables of the function, KEY=VALUE (repeatable)
    #[arg(long = "set-env-vars", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The Node.js runtime
    #[arg(long, default_value = RUNTIME)]
    runtime: String,
    /// Print the gcloud command instead of running it (the package is still built)
    #[arg(long)]
    dry_run: bool,
    /// Further arguments for gcloud functions deploy, after `--`
    #[arg(last = true)]
    gcloud_args: Vec<String>,
    #[command(flatten)]
    package: Package,
}

pub(crate) fn run(args: &Deploy) -> Result<String, String> {
    for variable in &args.env {
        if !variable.contains('=') {
            return Err(format!("--set-env-vars {variable:?}: expected KEY=VALUE"));
        }
    }
    let built = package::run(&args.package)?;
    let registered = registered_functions(&built.stage);
    let name = match (&args.name, registered.as_slice()) {
        (Some(name), _) => name.clone(),
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(
                "the package registers no function: name the function to deploy".to_owned(),
            );
        }
        (None, several) => {
            return Err(format!(
                "the package registers {} functions ({}): name the one to deploy",
                several.len(),
                several.join(", ")
            ));
        }
    };
    let entry_point = args.entry_point.clone().unwrap_or_else(|| name.clone());
    if !registered.is_empty() && !registered.contains(&entry_point) {
        return Err(format!(
            "the package registers no function {entry_point:?} (it registers {}): give --entry-point",
            registered.join(", ")
        ));
    }
    let command = gcloud_arguments(args, &name, &entry_point, &built.stage);
    let shown = shell_line(&command);
    if args.dry_run {
        return Ok(format!("{}{shown}\n", built.summary()));
    }
    eprint!("{}", built.summary());
    eprintln!("==> {shown}");
    let status = Command::new(&command[0])
        .args(&command[1..])
        .status()
        .map_err(|e| {
            format!("cannot run gcloud: {e} (install the Google Cloud CLI, or use --dry-run)")
        })?;
    if status.success() {
        Ok(format!("Deployed {name}.\n"))
    } else {
        Err(format!("gcloud functions deploy failed ({status})"))
    }
}

/// The `rustFunctions` names `tools/package.js` wrote into the package's `package.json`.
fn registered_functions(stage: &std::path::Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(stage.join("package.json")) else {
        return Vec::new();
    };
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    manifest["rustFunctions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect()
}

fn gcloud_arguments(
    args: &Deploy,
    name: &str,
    entry_point: &str,
    source: &std::path::Path,
) -> Vec<String> {
    let mut command: Vec<String> = ["gcloud", "functions", "deploy", name, "--gen2"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    command.push(format!("--runtime={}", args.runtime));
    command.push(format!("--entry-point={entry_point}"));
    command.push(format!("--source={}", source.display()));
    if let Some(region) = &args.region {
        command.push(format!("--region={region}"));
    }
    if let Some(project) = &args.project {
        command.push(format!("--project={project}"));
    }
    if args.trigger_http {
        command.push("--trigger-http".to_owned());
        if args.allow_unauthenticated {
            command.push("--allow-unauthenticated".to_owned());
        }
    }
    if let Some(topic) = &args.trigger_topic {
        command.push(format!("--trigger-topic={topic}"));
    }
    if let Some(bucket) = &args.trigger_bucket {
        command.push(format!("--trigger-bucket={bucket}"));
    }
    for filter in &args.trigger_event_filters {
        command.push(format!("--trigger-event-filters={filter}"));
    }
    for filter in &args.trigger_event_filters_path_pattern {
        command.push(format!("--trigger-event-filters-path-pattern={filter}"));
    }
    // gcloud splits --set-env-vars on commas; when a value holds one, `^;^` makes `;` the
    // separator instead.
    if !args.env.is_empty() {
        if args.env.iter().any(|v| v.contains(',')) {
            command.push(format!("--set-env-vars=^;^{}", args.env.join(";")));
        } else {
            command.push(format!("--set-env-vars={}", args.env.join(",")));
        }
    }
    command.extend(args.gcloud_args.iter().cloned());
    command
}

/// The command as a shell line (each argument quoted when it needs it).
fn shell_line(command: &[String]) -> String {
    command
        .iter()
        .map(|arg| {
            if arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=./:@^,".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
