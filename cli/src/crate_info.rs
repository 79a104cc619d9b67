//! The function crate a command works on: by default the one in the current folder, as
//! `cargo metadata` describes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

/// Which crate, and which of its binaries.
#[derive(Debug, Args)]
pub(crate) struct CrateArgs {
    /// The function crate's manifest (default: ./Cargo.toml)
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
    /// The binary that serves the functions (default: `function` when the crate has it,
    /// else its only binary)
    #[arg(long)]
    pub(crate) bin: Option<String>,
}

/// A function crate.
#[derive(Debug, Clone)]
pub(crate) struct FunctionCrate {
    /// Its `Cargo.toml`.
    pub(crate) manifest: PathBuf,
    /// Its folder.
    pub(crate) dir: PathBuf,
    /// The binary that serves its functions.
    pub(crate) bin: String,
    /// Where cargo builds it.
    pub(crate) target_dir: PathBuf,
    /// The folder of the `functions-framework` crate when it is a path dependency (a
    /// checkout: the shim is built from its sibling `shim-node`).
    pub(crate) framework_path: Option<PathBuf>,
}

/// The crate `args` name, described by `cargo metadata`.
pub(crate) fn find(args: &CrateArgs) -> Result<FunctionCrate, String> {
    let manifest = args
        .manifest_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("Cargo.toml"));
    if !manifest.is_file() {
        return Err(format!(
            "no {} here: run ff-rust in a function crate's folder (ff-rust new makes one), or give --manifest-path",
            manifest.display()
        ));
    }
    let output = Command::new(cargo())
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed for {}:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata: unexpected output: {e}"))?;
    let manifest = manifest
        .canonicalize()
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|packages| {
            packages
                .iter()
                .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        })
        .ok_or_else(|| format!("{} describes no package", manifest.display()))?;
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str())
        .collect();
    let bin = match &args.bin {
        Some(bin) if bins.contains(&bin.as_str()) => bin.clone(),
        Some(bin) => {
            return Err(format!(
                "{} has no binary {bin:?} (it has: {})",
                manifest.display(),
                bins.join(", ")
            ));
        }
        None if bins.contains(&"function") => "function".to_owned(),
        None if bins.len() == 1 => bins[0].to_owned(),
        None => {
            return Err(format!(
                "{} has {} binaries ({}): say which serves the functions with --bin",
                manifest.display(),
                bins.len(),
                bins.join(", ")
            ));
        }
    };
    let framework_path = package["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == "functions-framework")
        .and_then(|d| d["path"].as_str())
        .map(PathBuf::from);
    let target_dir = metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or("cargo metadata gave no target directory")?;
    let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(FunctionCrate {
        manifest,
        dir,
        bin,
        target_dir,
        framework_path,
    })
}

/// The cargo that runs this tool (`cargo ff-rust`), else the one on `PATH`.
pub(crate) fn cargo() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// Where tools installed on first use are kept: `~/.cache/functions-framework-rust`, the
/// Makefile's cache too (`FF_RUST_TOOLS` chooses another).
pub(crate) fn tool_cache() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("FF_RUST_TOOLS") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .ok_or("HOME is not set: set FF_RUST_TOOLS to a folder for the build tools")?;
    Ok(PathBuf::from(home)
        .join(".cache")
        .join("functions-framework-rust"))
}
