//! `package`: `function.zip` for the Node.js runtime of Cloud Functions, built as `make`
//! builds it: the function's binary and the shim in release mode for glibc 2.17 (with zig,
//! through cargo-zigbuild, both installed on first use into the tool cache), laid out and
//! zipped by the same `tools/package.js` (built into this tool) with `index.js`,
//! `package.json`, its lockfile and the launcher.
//!
//! The shim travels with the tool: a release build of `ff-rust` made with `FF_RUST_SHIM`
//! set (`make cli`) carries the prebuilt `shim.node`. Otherwise the shim is built from the
//! source of the framework checkout the function depends on (`--framework-path`).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};

use crate::crate_info::{self, CrateArgs, FunctionCrate};

/// The same tools and versions as the Makefile's.
const ZIG_VERSION: &str = "0.17.1";
const ZIGBUILD_VERSION: &str = "0.24.1";
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
const GLIBC: &str = "2.17";

/// The shim built into this tool (empty when it was built without one).
const EMBEDDED_SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shim.node"));

/// What `tools/package.js` needs next to it.
const PACKAGE_JS: &str = include_str!("../assets/package.js");
/// The package's entry point (`dev --node` lays it out too).
pub(crate) const INDEX_JS: &str = include_str!("../assets/index.js");
const PACKAGE_JSON: &str = include_str!("../assets/package.json");

#[derive(Debug, Args)]
pub(crate) struct Package {
    #[command(flatten)]
    pub(crate) krate: CrateArgs,
    /// What the runtime starts as node_modules/.bin/functions-framework: `node` (Node.js
    /// requires index.js and the shim execs the binary) or `direct` (the binary itself)
    #[arg(long, value_enum, default_value_t = Launcher::Node)]
    pub(crate) launcher: Launcher,
    /// Where to write the zip (default: function.zip in the crate's folder)
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Launcher {
    Node,
    Direct,
}

impl Launcher {
    fn name(self) -> &'static str {
        match self {
            Launcher::Node => "node",
            Launcher::Direct => "direct",
        }
    }
}

/// A package that was built.
#[derive(Debug)]
pub(crate) struct Built {
    /// The zip.
    pub(crate) zip: PathBuf,
    /// Its content, unzipped: what `deploy` uploads.
    pub(crate) stage: PathBuf,
    launcher: Launcher,
}

impl Built {
    pub(crate) fn summary(&self) -> String {
        let kib = std::fs::metadata(&self.zip).map_or(0, |m| m.len() / 1024);
        format!(
            "{} ({kib} KiB, {} launcher): upload it to a Node.js Cloud Functions runtime, or ff-rust deploy\n",
            self.zip.display(),
            self.launcher.name()
        )
    }
}

pub(crate) fn run(args: &Package) -> Result<Built, String> {
    let krate = crate_info::find(&args.krate)?;
    for (tool, why) in [
        ("node", "runs tools/package.js"),
        ("npm", "writes the package's lockfile"),
        ("zip", "zips the package (apt package zip)"),
        ("python3", "installs zig from PyPI on first use"),
    ] {
        if which(tool).is_none() {
            return Err(format!("{tool} is needed ({why}): install it and retry"));
        }
    }
    let tools = Tools::installed()?;
    let binary = tools.build(
        &krate.manifest,
        &krate.target_dir,
        Artifact::Bin(&krate.bin),
    )?;
    let shim = shim(&tools, &krate)?;
    let work = krate.target_dir.join("ff-rust");
    let tool_dir = work.join("package-tool");
    write(&tool_dir.join("tools/package.js"), PACKAGE_JS.as_bytes())?;
    write(&tool_dir.join("index.js"), INDEX_JS.as_bytes())?;
    write(&tool_dir.join("package.json"), PACKAGE_JSON.as_bytes())?;
    let stage = work.join(format!("package-{}", args.launcher.name()));
    let zip = match &args.out {
        Some(out) => out.clone(),
        None => krate.dir.join("function.zip"),
    };
    let status = Command::new("node")
        .arg(tool_dir.join("tools/package.js"))
        .arg("--binary")
        .arg(&binary)
        .arg("--shim")
        .arg(&shim)
        .args(["--launcher", args.launcher.name()])
        .arg("--stage")
        .arg(&stage)
        .arg("--out")
        .arg(&zip)
        .status()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !status.success() {
        return Err(format!("laying out the package failed ({status})"));
    }
    Ok(Built {
        zip,
        stage,
        launcher: args.launcher,
    })
}

/// What a release build makes: a binary, or a library (`lib<name>.so`).
#[derive(Debug, Clone, Copy)]
enum Artifact<'a> {
    Bin(&'a str),
    Lib(&'a str),
}

/// zig and cargo-zigbuild, from the tool cache.
struct Tools {
    zig: PathBuf,
    zigbuild: PathBuf,
}

impl Tools {
    /// Installs them on first use: zig from PyPI (`ziglang`), cargo-zigbuild with cargo.
    fn installed() -> Result<Tools, String> {
        let cache = crate_info::tool_cache()?;
        let zig_root = cache.join(format!("ziglang-{ZIG_VERSION}"));
        let zig = zig_root.join("ziglang/zig");
        if !zig.is_file() {
            eprintln!(
                "==> First use: installing zig {ZIG_VERSION} (PyPI package ziglang) into {}",
                cache.display()
            );
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--target",
                ])
                .arg(&zig_root)
                .arg(format!("ziglang=={ZIG_VERSION}"))
                .status()
                .map_err(|e| format!("cannot run python3: {e}"))?;
            if !status.success() || !zig.is_file() {
                return Err(format!(
                    "installing zig failed ({status}): python3 -m pip must be able to reach PyPI"
                ));
            }
        }
        let zigbuild_root = cache.join(format!("cargo-zigbuild-{ZIGBUILD_VERSION}"));
        let zigbuild = zigbuild_root.join("bin/cargo-zigbuild");
        if !zigbuild.is_file() {
            eprintln!(
                "==> First use: installing cargo-zigbuild {ZIGBUILD_VERSION} into {} (a minute or two, once)",
                cache.display()
            );
            let status = Command::new(crate_info::cargo())
                .args(["install", "--quiet", "--locked"])
                .arg(format!("cargo-zigbuild@{ZIGBUILD_VERSION}"))
                .arg("--root")
                .arg(&zigbuild_root)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err(format!("installing cargo-zigbuild failed ({status})"));
            }
        }
        Ok(Tools { zig, zigbuild })
    }

    /// Builds a crate's binary or library (the shim's cdylib) in release mode for glibc
    /// 2.17; returns the file.
    fn build(
        &self,
        manifest: &Path,
        target_dir: &Path,
        artifact: Artifact<'_>,
    ) -> Result<PathBuf, String> {
        let mut command = Command::new(&self.zigbuild);
        command
            .args(["zigbuild", "--release", "--target"])
            .arg(format!("{TRIPLE}.{GLIBC}"))
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .env("CARGO_ZIGBUILD_ZIG_PATH", &self.zig);
        if let Some(cargo) = std::env::var_os("CARGO") {
            command.env("CARGO", cargo);
        }
        let file = match artifact {
            Artifact::Bin(bin) => {
                command.args(["--bin", bin]);
                bin.to_owned()
            }
            Artifact::Lib(library) => {
                command.arg("--lib");
                format!("lib{library}.so")
            }
        };
        let status = command
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.zigbuild.display()))?;
        if !status.success() {
            return Err(format!(
                "the release build of {} failed ({status})",
                manifest.display()
            ));
        }
        let built = target_dir.join(TRIPLE).join("release").join(file);
        if built.is_file() {
            Ok(built)
        } else {
            Err(format!("the build did not make {}", built.display()))
        }
    }
}

/// The shim: the one built into this tool, else built from the framework checkout's source.
fn shim(tools: &Tools, krate: &FunctionCrate) -> Result<PathBuf, String> {
    let shim_dir = krate.target_dir.join("ff-rust");
    if let Some(file) = embedded_shim(&shim_dir)? {
        return Ok(file);
    }
    let source = shim_source(krate)?;
    tools.build(
        &source,
        &shim_dir.join("shim-target"),
        Artifact::Lib("shim_node"),
    )
}

/// The shim built into this tool, written into `dir`; `None` when it carries none.
pub(crate) fn embedded_shim(dir: &Path) -> Result<Option<PathBuf>, String> {
    if EMBEDDED_SHIM.is_empty() {
        return Ok(None);
    }
    let file = dir.join("shim.node");
    write(&file, EMBEDDED_SHIM)?;
    Ok(Some(file))
}

/// The manifest of the framework checkout's `shim-node`, next to the `functions-framework`
/// crate the function depends on by path.
pub(crate) fn shim_source(krate: &FunctionCrate) -> Result<PathBuf, String> {
    krate
        .framework_path
        .as_ref()
        .and_then(|framework| framework.parent())
        .map(|root| root.join("shim-node/Cargo.toml"))
        .filter(|manifest| manifest.is_file())
        .ok_or_else(|| {
            "this ff-rust carries no shim (it was built without FF_RUST_SHIM; `make cli` in the \
             framework's repository builds one that does), and the function does not depend on \
             a framework checkout whose shim-node it could build (ff-rust new --framework-path)"
                .to_owned()
        })
}

fn write(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The program `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Makefile and this tool install the same versions into the same cache.
    #[test]
    fn the_tool_versions_are_the_makefiles() {
        let makefile =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Makefile"))
                .expect("Makefile");
        assert!(makefile.contains(&format!("ZIG_VERSION := {ZIG_VERSION}\n")));
        assert!(makefile.contains(&format!("ZIGBUILD_VERSION := {ZIGBUILD_VERSION}\n")));
        assert!(makefile.contains(&format!("GLIBC ?= {GLIBC}\n")));
    }
}
