//! Generates the Rust types of every Google CloudEvents data type.
//!
//! ```text
//! events-codegen [--check] [--source DIR] [--cargo-toml FILE] OUT_DIR
//! ```
//!
//! 1. compiles every `.proto` under `DIR/proto/google/events` with protox (include paths
//!    `DIR/proto` and `DIR/third_party/googleapis`; protox has `google/protobuf/*` built in);
//! 2. generates the prost types of each package the event packages need (`google.events.*`,
//!    and the `google.type`, `google.rpc`, `google.api` packages they import), with
//!    `google.protobuf` taken from `pbjson_types` but for `Any` and `Timestamp` (the events
//!    crate's own);
//! 3. generates their serde implementations (proto3 JSON mapping) with pbjson-build, unknown
//!    fields ignored;
//! 4. writes into OUT_DIR one `<package>.rs` (prost) and one `<package>.serde.rs` (pbjson) per
//!    package, `mod.rs` (the module tree: each package's module includes its two files, behind
//!    the features that need it; the `EventData` trait), `cloud_event_types.rs` (one constant
//!    per CloudEvent type and `ALL`, the table of them) and `event_data.rs` (`impl EventData`
//!    for each data type), and removes any other `.rs` file there;
//! 5. writes the `[features]` lines of the events crate between the lines
//!    `# @generated features begin` and `# @generated features end` of FILE (or prints them).
//!
//! With `--check` nothing is written: it exits 1, naming the files, when OUT_DIR or FILE is not
//! what it would write.
//!
//! The crate using the output declares `#[rustfmt::skip] mod generated;` (OUT_DIR being
//! `src/generated`): `mod.rs` is a module file (its inner `#![allow]` covers the generated code),
//! every other file is `include!`d by it, so rustfmt never formats any of them; prettyplease
//! does, here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{env, fs};

use heck::{ToKebabCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use prost::Message as _;
use prost_build::Module;
use protox::prost_reflect::{DescriptorPool, Kind};

type Error = Box<dyn std::error::Error>;
type Result<T, E = Error> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: events-codegen [--check] [--source DIR] [--cargo-toml FILE] OUT_DIR

  OUT_DIR           where the generated .rs files go (e.g. events/src/generated)
  --source DIR      the google-cloudevents checkout (default: third_party/google-cloudevents
                    of this repository)
  --cargo-toml FILE the events crate's Cargo.toml: its lines between
                    `# @generated features begin` and `# @generated features end` are replaced
                    by the product features (without it they are printed)
  --check           write nothing; exit 1 if anything would change
";

/// The custom option naming the CloudEvent type of an event message (`cloudevent.proto`).
const CLOUD_EVENT_TYPE: &str = "google.events.cloud_event_type";
/// The custom file option naming the product of an `events.proto`.
const CLOUD_EVENT_PRODUCT: &str = "google.events.cloud_event_product";
/// The package of `cloudevent.proto`: only option definitions, nothing to generate.
const EVENTS_PACKAGE: &str = "google.events";
/// What pbjson-build writes to read a `google.protobuf.NullValue` of a oneof: a JSON `null`
/// reads as "no value" (influxdata/pbjson#100), which loses Firestore's and Datastore's
/// `{"nullValue": null}`.
const NULL_VALUE_READ: &str =
    "map_.next_value::<::std::option::Option<::pbjson_types::NullValue>>()?";
/// What it is replaced with: `NullValue` deserializes from `null` itself.
const NULL_VALUE_READ_FIXED: &str = "Some(map_.next_value::<::pbjson_types::NullValue>()?)";
/// `google.protobuf.Any` is the events crate's own (`events/src/any.rs`): pbjson-types' `Any`
/// reads JSON as `{"typeUrl", "value"}` and refuses the `"@type"` of the proto3 mapping, so a
/// status with details failed its whole event.
const ANY_TYPE: &str = "crate::Any";
/// `google.protobuf.Timestamp` is the events crate's own (`events/src/timestamp.rs`), written
/// in UTC with `Z` as the proto3 JSON mapping says; pbjson-types' writes `+00:00`.
const TIMESTAMP_TYPE: &str = "crate::Timestamp";
/// What pbjson-build writes to read a `bytes` field, and what replaces it: the events crate's
/// own reader, which takes the base64 string without a UTF-8 check and decodes it with SIMD
/// (a Pub/Sub message's data is most of its event).
const BYTES_READ: &str = "::pbjson::private::BytesDeserialize<_>";
const BYTES_READ_FAST: &str = "crate::base64::BytesDeserialize<_>";
/// pbjson-build refuses a field given twice. Google's producers send some fields under both
/// their JSON and proto names (Pub/Sub's `messageId` and `message_id`, `publishTime` and
/// `publish_time`), which Google's own libraries accept: the check is removed for plain
/// fields (the last value wins) and kept for the members of a oneof, where two members are
/// a contradiction.
const DUPLICATE_CHECK: &str = r#"\n\s*if (?:r#)?(\w+)__\.is_some\(\) \{\s*return Err\(\s*serde::de::Error::duplicate_field\("(\w+)"\),?\s*\);\s*\}"#;
const FEATURES_BEGIN: &str = "# @generated features begin";
const FEATURES_END: &str = "# @generated features end";
const HEADER: &str = "// @generated by tools/events-codegen (`make generate`) from \
                      third_party/google-cloudevents. Do not edit.\n";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("events-codegen: {error}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    source: PathBuf,
    out_dir: PathBuf,
    cargo_toml: Option<PathBuf>,
    check: bool,
}

/// The arguments, or `None` for `--help`.
fn parse_args() -> Result<Option<Args>> {
    let mut source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/google-cloudevents");
    let mut out_dir: Option<PathBuf> = None;
    let mut cargo_toml: Option<PathBuf> = None;
    let mut check = false;
    let mut args = env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--check") => check = true,
            Some("--source") => source = args.next().ok_or("--source needs a directory")?.into(),
            Some("--cargo-toml") => {
                cargo_toml = Some(args.next().ok_or("--cargo-toml needs a file")?.into());
            }
            Some("-h" | "--help") => return Ok(None),
            Some(flag) if flag.starts_with('-') => {
                return Err(format!("unknown option {flag}\n{USAGE}").into());
            }
            _ if out_dir.is_none() => out_dir = Some(PathBuf::from(&arg)),
            _ => {
                return Err(
                    format!("unexpected argument {}\n{USAGE}", arg.to_string_lossy()).into(),
                );
            }
        }
    }
    let out_dir = out_dir.ok_or_else(|| format!("OUT_DIR is missing\n{USAGE}"))?;
    Ok(Some(Args {
        source,
        out_dir,
        cargo_toml,
        check,
    }))
}

fn run() -> Result<ExitCode> {
    let Some(args) = parse_args()? else {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    let source = args
        .source
        .canonicalize()
        .map_err(|e| format!("{}: {e}", args.source.display()))?;
    let proto_root = source.join("proto");
    let googleapis = source.join("third_party").join("googleapis");
    let files = proto_files(&proto_root.join("google").join("events"))?;
    if files.is_empty() {
        return Err(format!("no .proto file under {}", proto_root.display()).into());
    }

    // 1. Compile. The FileDescriptorSet is what prost-build and pbjson-build read; the custom
    //    options (extensions) are only in the DescriptorPool, prost-types drops them.
    let mut compiler = protox::Compiler::new([&proto_root, &googleapis])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    let fds = compiler.file_descriptor_set();
    let pool = compiler.descriptor_pool();

    let events = event_types(&pool)?;
    let plan = Plan::new(&pool)?;

    // 2. prost: the same requests as `Config::compile_fds`, but the files are written here.
    let mut config = prost_build::Config::new();
    config
        // Otherwise prost-build maps `.google.protobuf` to prost-types itself, and our
        // extern_path would be a duplicate.
        .compile_well_known_types()
        .extern_path(".google.protobuf.Any", ANY_TYPE)
        .extern_path(".google.protobuf.Timestamp", TIMESTAMP_TYPE)
        .extern_path(".google.protobuf", "::pbjson_types")
        // `impl prost::Name`: the full protobuf name and type URL of each message.
        .enable_type_names();
    let requests: Vec<_> = fds
        .file
        .iter()
        .map(|file| {
            (
                Module::from_protobuf_package_name(file.package()),
                file.clone(),
            )
        })
        .collect();
    let prost_modules = config.generate(requests)?;

    // 3. pbjson. `build` would write `<package>.serde.rs` files itself; `generate` gives them
    //    to us, keyed by the same module path prost uses (`google.r#type`).
    let encoded = fds.encode_to_vec();
    let mut builder = pbjson_build::Builder::new();
    builder.register_descriptors(&encoded)?;
    builder
        .extern_path(".google.protobuf.Any", ANY_TYPE)
        .extern_path(".google.protobuf.Timestamp", TIMESTAMP_TYPE)
        .extern_path(".google.protobuf", "::pbjson_types")
        .ignore_unknown_fields();
    let prefixes: Vec<String> = plan.packages.keys().map(|p| format!(".{p}")).collect();
    let mut serde_modules: BTreeMap<String, String> = BTreeMap::new();
    let generated = builder.generate(prefixes.as_slice(), |_package| Ok(Vec::<u8>::new()))?;
    for (package, bytes) in generated {
        let text = String::from_utf8(bytes)?;
        serde_modules
            .entry(package.to_string())
            .or_default()
            .push_str(&text);
    }

    // 4. The files.
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut null_value_fixes = 0;
    for package in plan.packages.keys() {
        let module = Module::from_protobuf_package_name(package);
        let stem = file_stem(&module);
        let code = prost_modules
            .get(&module)
            .ok_or_else(|| format!("prost-build generated nothing for package {package}"))?;
        out.insert(format!("{stem}.rs"), code.clone());
        let key = module.parts().collect::<Vec<_>>().join(".");
        if let Some(serde) = serde_modules.get(&key) {
            let fixed = serde
                .replace(NULL_VALUE_READ, NULL_VALUE_READ_FIXED)
                .replace(BYTES_READ, BYTES_READ_FAST);
            null_value_fixes += serde.matches(NULL_VALUE_READ).count();
            let formatted = format_rust(&fixed, &format!("{stem}.serde.rs"))?;
            let formatted = allow_both_names(&formatted);
            out.insert(
                format!("{stem}.serde.rs"),
                format!("// @generated by pbjson-build (tools/events-codegen).\n{formatted}"),
            );
        }
    }
    let expected_fixes = null_value_oneof_fields(&pool, &plan);
    if null_value_fixes != expected_fixes {
        return Err(format!(
            "pbjson-build's code for google.protobuf.NullValue in a oneof changed: \
             {expected_fixes} such fields, {null_value_fixes} replaced; update NULL_VALUE_READ"
        )
        .into());
    }
    let tree = format_rust(&module_tree(&plan, &out), "mod.rs")?;
    out.insert("mod.rs".to_owned(), format!("{HEADER}{tree}"));
    out.insert(
        "cloud_event_types.rs".to_owned(),
        format!(
            "{HEADER}{}",
            format_rust(&cloud_event_types(&events), "cloud_event_types.rs")?
        ),
    );
    out.insert(
        "event_data.rs".to_owned(),
        format!(
            "{HEADER}{}",
            format_rust(&event_data(&events, &pool)?, "event_data.rs")?
        ),
    );
    let features = features_block(&plan);

    // 5. Write, or compare.
    let mut differences = Vec::new();
    let mut stale = Vec::new();
    if args.out_dir.is_dir() {
        for entry in fs::read_dir(&args.out_dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_file() && name.ends_with(".rs") && !out.contains_key(name) {
                stale.push(path);
            }
        }
    }
    stale.sort();
    for (name, content) in &out {
        let path = args.out_dir.join(name);
        if fs::read(&path).ok().as_deref() != Some(content.as_bytes()) {
            differences.push(path);
        }
    }
    let toml_update = match &args.cargo_toml {
        Some(path) => {
            let current =
                fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let updated = replace_features(&current, &features)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (updated != current).then_some((path.clone(), updated))
        }
        None => None,
    };

    if args.check {
        let mut changed = false;
        for path in differences.iter().chain(&stale) {
            eprintln!("events-codegen: {} is not what `make generate` writes", path.display());
            changed = true;
        }
        if let Some((path, _)) = &toml_update {
            eprintln!("events-codegen: the features of {} are out of date", path.display());
            changed = true;
        }
        return Ok(if changed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    fs::create_dir_all(&args.out_dir)?;
    for path in &differences {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        fs::write(path, &out[name])?;
    }
    for path in &stale {
        fs::remove_file(path)?;
    }
    match toml_update {
        Some((path, updated)) => fs::write(path, updated)?,
        None if args.cargo_toml.is_none() => print!("{features}"),
        None => {}
    }
    eprintln!(
        "events-codegen: {} packages, {} features, {} CloudEvent types, {} data types; \
         {} files written, {} removed",
        plan.packages.len(),
        plan.features.len(),
        events.len(),
        events
            .iter()
            .map(|e| e.data_type.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        differences.len(),
        stale.len(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Every `.proto` file under `dir`, sorted.
fn proto_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One CloudEvent type: a message of an `events.proto` with `option (cloud_event_type)`.
struct EventType {
    /// `google.cloud.pubsub.topic.v1.messagePublished`.
    event_type: String,
    /// `PUBSUB_TOPIC_V1_MESSAGE_PUBLISHED`.
    const_name: String,
    /// The type of its `data` field, `google.events.cloud.pubsub.v1.MessagePublishedData`.
    data_type: String,
    /// The Cargo feature of the data type's package, `pubsub`.
    feature: String,
}

fn event_types(pool: &DescriptorPool) -> Result<Vec<EventType>> {
    let extension = pool
        .get_extension_by_name(CLOUD_EVENT_TYPE)
        .ok_or_else(|| format!("the option {CLOUD_EVENT_TYPE} is not defined"))?;
    let mut events = Vec::new();
    for message in pool.all_messages() {
        let options = message.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let value = options.get_extension(&extension);
        let event_type = value
            .as_str()
            .ok_or_else(|| format!("{}: {CLOUD_EVENT_TYPE} is not a string", message.full_name()))?
            .to_owned();
        let field = message
            .get_field_by_name("data")
            .ok_or_else(|| format!("{} ({event_type}) has no field `data`", message.full_name()))?;
        let Kind::Message(data) = field.kind() else {
            return Err(format!(
                "{} ({event_type}): `data` is not a message",
                message.full_name()
            )
            .into());
        };
        let feature = feature_of(data.package_name()).ok_or_else(|| {
            format!("{}: no product in its package name", data.full_name())
        })?;
        events.push(EventType {
            const_name: const_name(&event_type)?,
            event_type,
            data_type: data.full_name().to_owned(),
            feature,
        });
    }
    if events.is_empty() {
        return Err(format!("no message has the option {CLOUD_EVENT_TYPE}").into());
    }
    events.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    let mut names = BTreeMap::new();
    for event in &events {
        if let Some(other) = names.insert(event.const_name.as_str(), event.event_type.as_str()) {
            return Err(format!(
                "{other} and {} both make the constant {}",
                event.event_type, event.const_name
            )
            .into());
        }
    }
    Ok(events)
}

/// `google.cloud.pubsub.topic.v1.messagePublished` → `PUBSUB_TOPIC_V1_MESSAGE_PUBLISHED`,
/// `google.firebase.auth.user.v1.created` → `FIREBASE_AUTH_USER_V1_CREATED`.
fn const_name(event_type: &str) -> Result<String> {
    let rest = event_type
        .strip_prefix("google.")
        .ok_or_else(|| format!("CloudEvent type {event_type} does not start with google."))?;
    let rest = rest.strip_prefix("cloud.").unwrap_or(rest);
    let name = rest
        .split('.')
        .map(|part| part.to_shouty_snake_case())
        .collect::<Vec<_>>()
        .join("_");
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err(format!("CloudEvent type {event_type} makes the constant {name}").into());
    }
    Ok(name)
}

/// The Cargo feature of a package: `google.events.cloud.<product>.…` → `<product>`
/// (`beyondcorp` for its three packages, `video` for `video.transcoder`),
/// `google.events.firebase.<product>.…` → `firebase-<product>` (`firebase-alerts` for
/// `firebasealerts`); `None` for other packages.
fn feature_of(package: &str) -> Option<String> {
    let mut parts = package.strip_prefix("google.events.")?.split('.');
    match (parts.next()?, parts.next()?) {
        ("cloud", product) => Some(product.to_kebab_case()),
        ("firebase", product) => {
            let product = product
                .strip_prefix("firebase")
                .filter(|rest| !rest.is_empty())
                .unwrap_or(product);
            Some(format!("firebase-{}", product.to_kebab_case()))
        }
        _ => None,
    }
}

/// Packages whose code is not generated here.
fn is_external(package: &str) -> bool {
    package == EVENTS_PACKAGE
        || package == "google.protobuf"
        || package.starts_with("google.protobuf.")
}

/// What to generate: the packages, and for each the features that need it.
struct Plan {
    /// Package → the features that compile it (its own, or of the products importing it).
    packages: BTreeMap<String, BTreeSet<String>>,
    /// Feature → the other features it needs (a product importing another product's package).
    features: BTreeMap<String, BTreeSet<String>>,
    /// Feature → its packages.
    feature_packages: BTreeMap<String, BTreeSet<String>>,
    /// Package → `cloud_event_product` of its files ("Cloud Pub/Sub").
    products: BTreeMap<String, String>,
}

impl Plan {
    fn new(pool: &DescriptorPool) -> Result<Self> {
        let product_option = pool.get_extension_by_name(CLOUD_EVENT_PRODUCT);
        let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut products = BTreeMap::new();
        for file in pool.files() {
            let package = file.package_name().to_owned();
            if package.is_empty() {
                return Err(format!("{} has no package", file.name()).into());
            }
            let deps = imports.entry(package.clone()).or_default();
            for dep in file.dependencies() {
                if dep.package_name() != package {
                    deps.insert(dep.package_name().to_owned());
                }
            }
            if let Some(option) = &product_option {
                let options = file.options();
                if options.has_extension(option) {
                    if let Some(product) = options.get_extension(option).as_str() {
                        products.insert(package.clone(), product.to_owned());
                    }
                }
            }
        }

        let mut feature_packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for package in imports.keys() {
            if let Some(feature) = feature_of(package) {
                feature_packages.entry(feature).or_default().insert(package.clone());
            }
        }

        let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut features: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (feature, own) in &feature_packages {
            // Every package the feature's packages import, transitively.
            let mut needed = BTreeSet::new();
            let mut pending: Vec<&str> = own.iter().map(String::as_str).collect();
            while let Some(package) = pending.pop() {
                if is_external(package) || !needed.insert(package.to_owned()) {
                    continue;
                }
                if let Some(deps) = imports.get(package) {
                    pending.extend(deps.iter().map(String::as_str));
                }
            }
            let requires = features.entry(feature.clone()).or_default();
            for package in needed {
                if let Some(other) = feature_of(&package) {
                    if &other != feature {
                        requires.insert(other);
                    }
                }
                packages.entry(package).or_default().insert(feature.clone());
            }
        }
        Ok(Self {
            packages,
            features,
            feature_packages,
            products,
        })
    }
}

/// The file name of a package's code: `google.events.cloud.pubsub.v1`, `google.type`.
fn file_stem(module: &Module) -> String {
    module
        .parts()
        .map(|part| part.trim_start_matches("r#"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The number of `google.protobuf.NullValue` fields in a oneof (or proto3 `optional`).
fn null_value_oneof_fields(pool: &DescriptorPool, plan: &Plan) -> usize {
    pool.all_messages()
        .filter(|message| plan.packages.contains_key(message.package_name()))
        .map(|message| {
            message
                .fields()
                .filter(|field| {
                    field.containing_oneof().is_some()
                        && !field.is_list()
                        && matches!(
                            field.kind(),
                            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue"
                        )
                })
                .count()
        })
        .sum()
}

/// Removes the duplicate-field refusal of each plain field (see `DUPLICATE_CHECK`).
fn allow_both_names(code: &str) -> String {
    let pattern = regex::Regex::new(DUPLICATE_CHECK).expect("DUPLICATE_CHECK is a valid regex");
    pattern
        .replace_all(code, |captures: &regex::Captures<'_>| {
            let (variable, json_name) = (&captures[1], &captures[2]);
            if json_name.to_snake_case() == variable {
                String::new()
            } else {
                captures[0].to_owned()
            }
        })
        .into_owned()
}

fn format_rust(source: &str, name: &str) -> Result<String> {
    let file = syn::parse_file(source)
        .map_err(|e| format!("{name}: the generated code does not parse: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// `#[cfg(...)]` for code needed by `needed`, or nothing when every feature needs it.
fn cfg_line(needed: &BTreeSet<String>, all: usize) -> String {
    let list: Vec<String> = needed.iter().map(|f| format!("feature = {f:?}")).collect();
    match list.len() {
        n if n == all => String::new(),
        1 => format!("#[cfg({})]\n", list[0]),
        _ => format!("#[cfg(any({}))]\n", list.join(", ")),
    }
}

#[derive(Default)]
struct Node {
    children: BTreeMap<String, Node>,
    /// The protobuf package whose code is in this module.
    package: Option<String>,
    /// The features that need this module or one below.
    features: BTreeSet<String>,
}

/// `mod.rs`: `pub mod google { pub mod events { ... } }`, each package's two files included
/// in its module, behind the features that need it.
fn module_tree(plan: &Plan, files: &BTreeMap<String, String>) -> String {
    let mut root = Node::default();
    for (package, features) in &plan.packages {
        let module = Module::from_protobuf_package_name(package);
        let mut node = &mut root;
        for part in module.parts() {
            node = node.children.entry(part.to_owned()).or_default();
            node.features.extend(features.iter().cloned());
        }
        node.package = Some(package.clone());
    }
    let mut out = String::from(TREE_PRELUDE);
    for (name, child) in &root.children {
        write_node(&mut out, name, name, child, plan, files);
    }
    out.push_str(TREE_EPILOGUE);
    out
}

/// The start of `mod.rs`: it is a module file (`#[rustfmt::skip] mod generated;`), so it may
/// allow the lints the generated code does not pass.
const TREE_PRELUDE: &str = "\
#![allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    deprecated,
    rust_2018_idioms,
    rustdoc::all,
    clippy::all,
    clippy::pedantic,
    clippy::dbg_macro,
    clippy::todo,
    clippy::unwrap_used,
    clippy::str_to_string,
    clippy::mem_forget,
    clippy::exit,
    clippy::undocumented_unsafe_blocks
)]
";

/// The end of `mod.rs`: the CloudEvent type table, and `EventData` with its implementations.
const TREE_EPILOGUE: &str = "\
/// The CloudEvent types of the Google event catalog: one constant per type, and `ALL`.
pub mod cloud_event_types {
    include!(\"cloud_event_types.rs\");
}

/// The data of a Google CloudEvent: a protobuf message (prost, `impl prost::Name`) with the
/// proto3 JSON mapping (serde), and the CloudEvent types whose `data` it is.
pub trait EventData:
    ::prost::Message + ::prost::Name + Default + ::serde::Serialize + ::serde::de::DeserializeOwned + 'static
{
    /// The CloudEvent types whose `data` is this message (constants of `cloud_event_types`).
    const CLOUD_EVENT_TYPES: &'static [&'static str];
}

include!(\"event_data.rs\");
";

fn write_node(
    out: &mut String,
    name: &str,
    path: &str,
    node: &Node,
    plan: &Plan,
    files: &BTreeMap<String, String>,
) {
    let all = plan.feature_packages.len();
    match &node.package {
        Some(package) => {
            let product = plan
                .products
                .get(package)
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            let _ = writeln!(out, "/// Protobuf package `{package}`{product}.");
        }
        None => {
            let _ = writeln!(out, "/// Protobuf packages `{}.*`.", path.replace("r#", ""));
        }
    }
    // A module is gated when it holds code, or is one product's (`beyondcorp`, `pubsub`);
    // the modules above (`google`, `events`, `cloud`) stay, empty without features.
    let gate = if node.package.is_some() || node.features.len() == 1 {
        cfg_line(&node.features, all)
    } else {
        String::new()
    };
    if !gate.is_empty() {
        let features = node.features.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>();
        let _ = writeln!(out, "///\n/// Needs the feature {}.", features.join(" or "));
    }
    out.push_str(&gate);
    let _ = writeln!(out, "pub mod {name} {{");
    if let Some(package) = &node.package {
        // Narrower than the module when a package below needs it for more features (e.g.
        // `google.rpc` for `google.rpc.context`).
        let own = &plan.packages[package];
        let guard = if *own == node.features {
            String::new()
        } else {
            cfg_line(own, all)
        };
        let stem = file_stem(&Module::from_protobuf_package_name(package));
        for file in [format!("{stem}.rs"), format!("{stem}.serde.rs")] {
            if files.contains_key(&file) {
                let _ = writeln!(out, "{guard}include!({file:?});");
            }
        }
    }
    for (child_name, child) in &node.children {
        write_node(out, child_name, &format!("{path}.{child_name}"), child, plan, files);
    }
    out.push_str("}\n");
}

/// `cloud_event_types.rs`: one `&str` constant per CloudEvent type, and `ALL`.
fn cloud_event_types(events: &[EventType]) -> String {
    let mut out = String::new();
    for event in events {
        let _ = writeln!(
            out,
            "/// `{}`: data `{}`, feature `{}`.\npub const {}: &str = {:?};",
            event.event_type, event.data_type, event.feature, event.const_name, event.event_type
        );
    }
    out.push_str(
        "/// Every CloudEvent type, sorted by type (for `binary_search_by_key`): the type, the \
         full protobuf name of its data message, and the Cargo feature that compiles that \
         message.\npub const ALL: &[(&str, &str, &str)] = &[\n",
    );
    for event in events {
        let _ = writeln!(
            out,
            "({}, {:?}, {:?}),",
            event.const_name, event.data_type, event.feature
        );
    }
    out.push_str("];\n");
    out
}

/// `event_data.rs`: `impl EventData` for each data type, listing its CloudEvent types
/// (included by `mod.rs`, whose module the paths are relative to).
fn event_data(events: &[EventType], pool: &DescriptorPool) -> Result<String> {
    let mut by_type: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
    for event in events {
        let entry = by_type
            .entry(event.data_type.as_str())
            .or_insert_with(|| (event.feature.as_str(), Vec::new()));
        entry.1.push(event.const_name.as_str());
    }
    let mut out = String::new();
    let mut decoders = String::new();
    let mut arms = String::new();
    for event in events {
        let message = pool
            .get_message_by_name(&event.data_type)
            .ok_or_else(|| format!("{} is not in the descriptor pool", event.data_type))?;
        let rust_path = rust_path(message.package_name(), message.full_name());
        let _ = writeln!(
            arms,
            "#[cfg(feature = {:?})]\ncloud_event_types::{} => Some(visitor.visit::<{rust_path}>()),",
            event.feature, event.const_name
        );
    }
    let _ = writeln!(
        out,
        "/// Code generic over an event data type, run by [`visit_data_type`] with the data type \
         of a CloudEvent type known only at run time.\n\
         pub trait DataTypeVisitor {{\n\
         /// What the visit gives.\n\
         type Output;\n\
         /// Runs with `T`, the data type of the CloudEvent type.\n\
         fn visit<T: EventData>(self) -> Self::Output;\n}}\n\n\
         /// Runs `visitor` with the data type of `cloud_event_type`; `None` when the type is not \
         in the catalog or its product's feature is off.\n\
         #[allow(unused_variables)]\n\
         pub fn visit_data_type<V: DataTypeVisitor>(cloud_event_type: &str, visitor: V) -> Option<V::Output> {{\n\
         match cloud_event_type {{\n{arms}_ => None,\n}}\n}}\n"
    );
    for (data_type, (feature, consts)) in by_type {
        let message = pool
            .get_message_by_name(data_type)
            .ok_or_else(|| format!("{data_type} is not in the descriptor pool"))?;
        let rust_path = rust_path(message.package_name(), message.full_name());
        let list = consts
            .iter()
            .map(|c| format!("cloud_event_types::{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "#[cfg(feature = {feature:?})]\nimpl EventData for {rust_path} {{\n\
             const CLOUD_EVENT_TYPES: &'static [&'static str] = &[{list}];\n}}"
        );
        let _ = writeln!(
            decoders,
            "#[cfg(feature = {feature:?})]\nif id == ::core::any::TypeId::of::<{rust_path}>() {{\n\
             return decode_as::<{rust_path}, T>(bytes);\n}}"
        );
    }
    let _ = writeln!(
        out,
        "/// Decodes `bytes` as the protobuf encoding of `T`, when `T` is the data type of a \
         CloudEvent type of an enabled feature; `None` for any other type. A function taking \
         `CloudEvent<T>` gets `application/protobuf` data this way without naming the type.\n\
         #[allow(unused_variables)]\n\
         pub fn decode_protobuf<T: 'static>(bytes: &[u8]) -> Option<Result<T, ::prost::DecodeError>> {{\n\
         let id = ::core::any::TypeId::of::<T>();\n\
         {decoders}None\n}}\n\n\
         #[allow(dead_code)]\n\
         fn decode_as<M: ::prost::Message + Default + 'static, T: 'static>(bytes: &[u8]) -> Option<Result<T, ::prost::DecodeError>> {{\n\
         match M::decode(bytes) {{\n\
         Ok(message) => {{\n\
         let mut slot = Some(message);\n\
         (&mut slot as &mut dyn ::core::any::Any).downcast_mut::<Option<T>>().and_then(Option::take).map(Ok)\n\
         }}\n\
         Err(error) => Some(Err(error)),\n\
         }}\n}}"
    );
    Ok(out)
}

/// The Rust path prost-build gives a message, relative to the module tree's root:
/// `google.events.cloud.pubsub.v1.MessagePublishedData` →
/// `google::events::cloud::pubsub::v1::MessagePublishedData`; a nested `Outer.Inner` →
/// `outer::Inner`.
fn rust_path(package: &str, full_name: &str) -> String {
    let mut parts: Vec<String> = Module::from_protobuf_package_name(package)
        .parts()
        .map(str::to_owned)
        .collect();
    let local = full_name
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(full_name);
    let names: Vec<&str> = local.split('.').collect();
    if let Some((last, outer)) = names.split_last() {
        parts.extend(outer.iter().map(|name| sanitize(&name.to_snake_case())));
        parts.push(sanitize(&last.to_upper_camel_case()));
    }
    parts.join("::")
}

/// As prost-build's `sanitize_identifier`, for the names that occur here.
fn sanitize(ident: &str) -> String {
    match ident {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        _ => ident.to_owned(),
    }
}

/// The `[features]` lines, between the markers.
fn features_block(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{FEATURES_BEGIN}");
    out.push_str(
        "# One feature per product of the Google event catalog (tools/events-codegen writes these\n\
         # lines; `make generate`).\n",
    );
    out.push_str("full = [\n");
    for feature in plan.features.keys() {
        let _ = writeln!(out, "    {feature:?},");
    }
    out.push_str("]\n");
    for (feature, requires) in &plan.features {
        let list = requires
            .iter()
            .map(|f| format!("{f:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let packages = plan.feature_packages[feature]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let product = plan.feature_packages[feature]
            .iter()
            .find_map(|p| plan.products.get(p))
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        let _ = writeln!(out, "{feature} = [{list}] # {product}{packages}");
    }
    let _ = writeln!(out, "{FEATURES_END}");
    out
}

/// `toml` with the lines from `FEATURES_BEGIN` to `FEATURES_END` replaced by `block`.
fn replace_features(toml: &str, block: &str) -> Result<String> {
    let begin = toml.find(FEATURES_BEGIN).ok_or_else(|| {
        format!("no line `{FEATURES_BEGIN}` (put it, and `{FEATURES_END}`, under [features])")
    })?;
    let end = toml[begin..]
        .find(FEATURES_END)
        .map(|i| begin + i + FEATURES_END.len())
        .ok_or_else(|| format!("no line `{FEATURES_END}` after `{FEATURES_BEGIN}`"))?;
    let end = match toml[end..].find('\n') {
        Some(i) => end + i + 1,
        None => toml.len(),
    };
    Ok(format!("{}{block}{}", &toml[..begin], &toml[end..]))
}
