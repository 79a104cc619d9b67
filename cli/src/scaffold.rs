//! `new` and `convert`: a function crate from a template, or function code turned into an
//! app.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Convert, Framework, New, event_type, scan};

/// Where the framework's crates come from: a checkout's folder, or the published version.
enum Source {
    /// The `functions-framework` crate's folder; the events crate is its sibling `events`.
    Path(PathBuf),
    Version,
}

/// Where the framework comes from (the published version unless `--framework-path`), and
/// the lockfile to start from (the checkout's).
fn framework_source(framework: &Framework) -> Result<(Source, Option<PathBuf>), String> {
    let Some(path) = &framework.framework else {
        return Ok((Source::Version, None));
    };
    let path = path.canonicalize().map_err(|e| {
        format!(
            "--framework-path {}: {e}: give the functions-framework crate's folder of a checkout",
            path.display()
        )
    })?;
    if !path.join("Cargo.toml").is_file() {
        return Err(format!(
            "--framework-path {}: no Cargo.toml there: give the functions-framework crate's folder (go-replacement-rust in a checkout)",
            path.display()
        ));
    }
    let lock = path
        .parent()
        .map(|root| root.join("Cargo.lock"))
        .filter(|l| l.exists());
    Ok((Source::Path(path), lock))
}

/// The dependency line for `functions-framework`, and the lockfile to start from.
fn framework_dependency(framework: &Framework) -> Result<(String, Option<PathBuf>), String> {
    let (source, lock) = framework_source(framework)?;
    let line = match source {
        Source::Path(path) => format!(
            "functions-framework = {{ path = {:?} }}",
            path.display().to_string()
        ),
        Source::Version => format!("functions-framework = \"{}\"", env!("CARGO_PKG_VERSION")),
    };
    Ok((line, lock))
}

/// The dependency line for `functions-framework-events` with the feature of an event type.
fn events_dependency(
    framework: &Framework,
    event: &event_type::EventType,
) -> Result<String, String> {
    let feature = event.feature;
    Ok(match framework_source(framework)?.0 {
        Source::Path(path) => {
            let events = path.parent().unwrap_or(&path).join("events");
            format!(
                "functions-framework-events = {{ path = {:?}, features = [{feature:?}] }}",
                events.display().to_string()
            )
        }
        Source::Version => format!(
            "functions-framework-events = {{ version = \"{}\", features = [{feature:?}] }}",
            env!("CARGO_PKG_VERSION")
        ),
    })
}

/// `my-function` -> `my_function`: a Rust identifier for a registered name.
fn identifier(name: &str) -> String {
    let mut ident: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    ident
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn manifest(
    package: &str,
    framework: &Framework,
    event: Option<&event_type::EventType>,
) -> Result<(String, Option<PathBuf>), String> {
    let (mut dependency, lock) = framework_dependency(framework)?;
    if let Some(event) = event {
        // The product's feature, so that its data type is compiled.
        dependency.push('\n');
        dependency.push_str(&events_dependency(framework, event)?);
    }
    let text = format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"
publish = false

# `ff-rust package` (or `make FUNCTION_DIR=...`) packages the binary called `function`.
[[bin]]
name = "function"
path = "src/main.rs"

[dependencies]
{dependency}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
tracing = "0.1"

[profile.release]
# A panic must unwind so that it becomes a 500 and the server keeps serving.
panic = "unwind"

# A crate of its own, not a member of an enclosing workspace.
[workspace]
"#
    );
    Ok((text, lock))
}

fn write_new(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub(crate) fn new(args: &New) -> Result<String, String> {
    if !is_valid_name(&args.name) {
        return Err(format!(
            "{:?} is not a usable function name: use letters, digits, '-' and '_', starting with a letter",
            args.name
        ));
    }
    let event = args
        .event_type
        .as_deref()
        .map(event_type::find)
        .transpose()?;
    let (kind, template) = match (&args.kind.cloudevent, &args.kind.event, &args.kind.typed) {
        (true, _, _) => ("cloudevent", include_str!("../templates/cloudevent.rs")),
        (_, true, _) => ("event", include_str!("../templates/event.rs")),
        (_, _, true) => ("typed", include_str!("../templates/typed.rs")),
        _ => ("http", include_str!("../templates/http.rs")),
    };
    let root = args.dir.join(&args.name);
    if root.exists() {
        return Err(format!(
            "{} already exists: choose another name or --dir",
            root.display()
        ));
    }
    let (cargo_toml, lock) = manifest(&args.name, &args.framework, event.as_ref())?;
    write_new(&root.join("Cargo.toml"), &cargo_toml)?;
    let mut main = render(template, kind, &args.name);
    if kind == "cloudevent" {
        main = cloud_event_data(&main, event.as_ref());
    }
    write_new(&root.join("src/main.rs"), &main)?;
    write_new(&root.join(".gitignore"), "/target\n")?;
    if let Some(lock) = lock {
        let _ = std::fs::copy(lock, root.join("Cargo.lock"));
    }
    Ok(format!(
        "Created the {kind} function {name:?} in {dir}.\n  cd {dir}\n  ff-rust dev        # serves it on http://localhost:8080, rebuilt on every change\n  ff-rust invoke --list\n  ff-rust package    # function.zip for the Node.js runtime\n  ff-rust deploy --region REGION --trigger-http\n",
        name = args.name,
        dir = root.display()
    ))
}

/// A template with the function's name in it. The HTTP template is the repository's own
/// hello function (`function/src/main.rs`), registered as `"hello"` by the function `hello`;
/// the others have `{{name}}` and `{{ident}}` placeholders.
fn render(template: &str, kind: &str, name: &str) -> String {
    let ident = identifier(name);
    if kind == "http" {
        return template
            .replace("\"hello\"", &format!("{name:?}"))
            .replace("hello", &ident);
    }
    template
        .replace("{{name}}", name)
        .replace("{{ident}}", &ident)
}

/// The CloudEvent template for a Google event type's generated data type, or for any JSON
/// (`serde_json::Value`).
fn cloud_event_data(template: &str, event: Option<&event_type::EventType>) -> String {
    match event {
        Some(event) => {
            let (module, name) = event.rust_path();
            template
                .replace("{{for_type}}", &format!(", for `{}` events", event.ty))
                .replace(
                    "{{about_data}}",
                    &format!(
                        "their data arrives decoded into\n//! `{name}`, whether it came as JSON or protobuf, in binary or structured mode"
                    ),
                )
                .replace(
                    "{{use_data}}",
                    &format!("\nuse functions_framework::events::{module}::{name};"),
                )
                .replace("{{data_type}}", name)
                .replace("{{show}}", "{:?}")
        }
        None => template
            .replace("{{for_type}}", "")
            .replace(
                "{{about_data}}",
                "send it an event in binary or\n//! structured mode (or a legacy event, converted)",
            )
            .replace("{{use_data}}", "")
            .replace("{{data_type}}", "serde_json::Value")
            .replace("{{show}}", "{}"),
    }
}

/// The `main.rs` that registers `functions`, found in module `module`.
fn generated_main(module_line: &str, module: &str, found: &scan::Found) -> String {
    let mut main = String::from(
        "//! Generated by `ff-rust convert`: registers the marked functions. Regenerate it\n\
         //! rather than edit it.\n\n",
    );
    main.push_str(module_line);
    main.push_str(
        "\n\n#[tokio::main]\nasync fn main() -> Result<(), functions_framework::Error> {\n",
    );
    main.push_str("    let functions = functions_framework::Functions::new();\n");
    if found.register {
        let _ = writeln!(main, "    let functions = {module}::register(functions);");
    }
    for function in &found.functions {
        let _ = writeln!(
            main,
            "    let functions = functions.{}({:?}, {module}::{});",
            function.kind.method(),
            function.name,
            function.ident
        );
    }
    main.push_str("    functions.serve().await\n}\n");
    main
}

pub(crate) fn convert(args: &Convert) -> Result<String, String> {
    if args.source.is_dir() {
        return convert_crate(args);
    }
    let source = std::fs::read_to_string(&args.source)
        .map_err(|e| format!("cannot read {}: {e}", args.source.display()))?;
    let found = scan::scan(&source).map_err(|e| format!("{}: {e}", args.source.display()))?;
    let stem = args
        .source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("function")
        .to_owned();
    let package = if is_valid_name(&stem) {
        stem.replace('_', "-")
    } else {
        "function-app".to_owned()
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{package}-app")));
    if out.join("Cargo.toml").exists() {
        return Err(format!(
            "{} already holds a crate: choose another --out",
            out.display()
        ));
    }
    let (cargo_toml, lock) = manifest(&package, &args.framework, None)?;
    write_new(&out.join("Cargo.toml"), &cargo_toml)?;
    write_new(&out.join("src/function.rs"), &source)?;
    write_new(
        &out.join("src/main.rs"),
        &generated_main("mod function;", "function", &found),
    )?;
    if let Some(lock) = lock {
        let _ = std::fs::copy(lock, out.join("Cargo.lock"));
    }
    Ok(format!(
        "{}\n  cd {} && cargo run\n",
        found.summary(),
        out.display()
    ))
}

/// Converts a library crate in place: adds the dependencies and `src/bin/function.rs`.
fn convert_crate(args: &Convert) -> Result<String, String> {
    let root = &args.source;
    let manifest_path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", manifest_path.display()))?;
    let package = document
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{} has no package name", manifest_path.display()))?
        .to_owned();
    let lib_name = document
        .get("lib")
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str())
        .map_or_else(|| package.replace('-', "_"), str::to_owned);
    let lib_path = root.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib_path).map_err(|e| {
        format!(
            "cannot read {} (a library crate is expected): {e}",
            lib_path.display()
        )
    })?;
    let found = scan::scan(&source).map_err(|e| format!("{}: {e}", lib_path.display()))?;

    let (dependency, _) = framework_dependency(&args.framework)?;
    let dependency: toml_edit::DocumentMut = dependency
        .parse()
        .map_err(|e| format!("internal: bad dependency line: {e}"))?;
    let dependencies = document
        .entry("dependencies")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or("`dependencies` is not a table")?;
    for (name, item) in dependency.iter() {
        if !dependencies.contains_key(name) {
            dependencies.insert(name, item.clone());
        }
    }
    if !dependencies.contains_key("tokio") {
        let tokio: toml_edit::DocumentMut =
            "tokio = { version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }"
                .parse()
                .map_err(|e| format!("internal: {e}"))?;
        for (name, item) in tokio.iter() {
            dependencies.insert(name, item.clone());
        }
    }
    std::fs::write(&manifest_path, document.to_string())
        .map_err(|e| format!("cannot write {}: {e}", manifest_path.display()))?;
    let main = generated_main(&format!("use {lib_name} as function;"), "function", &found);
    write_new(&root.join("src/bin/function.rs"), &main)?;
    Ok(format!(
        "{}\n  added functions-framework to {} and wrote src/bin/function.rs\n  cd {} && cargo run --bin function\n",
        found.summary(),
        manifest_path.display(),
        root.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_dependency_by_default_and_a_path_only_when_asked() {
        let (published, lock) =
            manifest("f", &Framework { framework: None }, None).expect("manifest");
        assert!(
            published.contains(&format!(
                "functions-framework = \"{}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{published}"
        );
        assert!(
            !published.contains("functions-framework = {"),
            "{published}"
        );
        assert!(lock.is_none());
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../go-replacement-rust");
        let (local, lock) = manifest(
            "f",
            &Framework {
                framework: Some(checkout),
            },
            event_type::find("google.cloud.storage.object.v1.finalized")
                .ok()
                .as_ref(),
        )
        .expect("manifest");
        assert!(local.contains("functions-framework = { path = "), "{local}");
        assert!(
            local.contains("functions-framework-events = { path = ")
                && local.contains("features = [\"storage\"]"),
            "{local}"
        );
        assert!(lock.is_some());
        let missing = manifest(
            "f",
            &Framework {
                framework: Some(PathBuf::from("/no/such/checkout")),
            },
            None,
        )
        .expect_err("refused");
        assert!(missing.contains("--framework-path"), "{missing}");
    }

    #[test]
    fn names_become_identifiers() {
        assert_eq!(identifier("helloWorld"), "helloworld");
        assert_eq!(identifier("my-function"), "my_function");
        assert_eq!(identifier("9lives"), "_9lives");
        assert!(is_valid_name("on-upload_2"));
        assert!(!is_valid_name("2fast"));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn the_http_template_is_the_hello_function_renamed() {
        let main = render(include_str!("../templates/http.rs"), "http", "say-hi");
        assert!(main.contains(".http(\"say-hi\", say_hi)"), "{main}");
        assert!(main.contains("async fn say_hi(req: Request)"), "{main}");
        assert!(!main.contains("hello"), "{main}");
        assert!(main.contains("Hello, {name}!"), "{main}");
    }

    #[test]
    fn the_generated_main_registers_every_function() {
        let found = scan::scan(
            "#[functions_framework::register::http] pub async fn a(r: R) -> S { todo!() }\n\
             #[functions_framework::register::typed(name = \"bee\")] pub async fn b(i: I) -> O { todo!() }\n\
             pub fn register(f: F) -> F { f }",
        )
        .expect("scan");
        let main = generated_main("mod function;", "function", &found);
        assert!(
            main.contains("functions.http(\"a\", function::a)"),
            "{main}"
        );
        assert!(
            main.contains("functions.typed(\"bee\", function::b)"),
            "{main}"
        );
        assert!(main.contains("function::register(functions)"), "{main}");
    }
}
