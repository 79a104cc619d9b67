//! `dev`: serves the function crate on `PORT`, and rebuilds and restarts it whenever its
//! sources change. The running server gets SIGTERM (it drains) before the new one starts; a
//! build error is shown and the old server keeps serving until the next change. With
//! `--node`, the server is started as the cloud starts it: Node.js requires `index.js`,
//! whose shim execs the binary (same PID). Ctrl-C (or SIGTERM) stops everything.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::crate_info::{self, CrateArgs, FunctionCrate};

#[derive(Debug, Args)]
pub(crate) struct Dev {
    #[command(flatten)]
    krate: CrateArgs,
    /// The port (default: $PORT, else 8080)
    #[arg(long)]
    port: Option<u16>,
    /// The function to serve (FUNCTION_TARGET), when the crate registers several
    #[arg(long)]
    target: Option<String>,
    /// Serve through Node.js and the shim, as the cloud does
    #[arg(long)]
    node: bool,
}

fn log(message: &str) {
    eprintln!("[dev] {message}");
}

pub(crate) fn run(args: &Dev) -> Result<String, String> {
    let krate = crate_info::find(&args.krate)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    }
    let port = match args.port {
        Some(port) => port.to_string(),
        None => std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned()),
    };
    let shim = if args.node {
        Some(dev_shim(&krate)?)
    } else {
        None
    };
    let mut server: Option<Child> = None;
    let mut seen = snapshot(&krate.dir);
    let mut rebuild = true;
    while !stop.load(Ordering::Relaxed) {
        if rebuild {
            rebuild = false;
            log(&format!("building {}", krate.manifest.display()));
            match build(&krate) {
                Some(executable) => {
                    stop_server(&mut server);
                    let started = match &shim {
                        Some(shim) => start_through_node(&krate, &executable, shim, &port, args),
                        None => start(&executable, &port, args),
                    };
                    match started {
                        Ok(child) => {
                            log(&format!("serving on port {port} (pid {})", child.id()));
                            server = Some(child);
                        }
                        Err(error) => log(&error),
                    }
                }
                None => log("build failed: waiting for a change"),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
        // On Ctrl-C the terminal signals the server too: its exit is then no news.
        if !stop.load(Ordering::Relaxed)
            && let Some(child) = server.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            log(&format!(
                "the server exited ({status}): waiting for a change"
            ));
            server = None;
        }
        let now = snapshot(&krate.dir);
        if now != seen {
            // Let an editor finish writing before building.
            std::thread::sleep(Duration::from_millis(200));
            let settled = snapshot(&krate.dir);
            for path in changed(&seen, &settled) {
                log(&format!("changed: {path}"));
            }
            seen = settled;
            rebuild = true;
        }
    }
    stop_server(&mut server);
    log("stopped");
    Ok(String::new())
}

/// Every file of the crate with its modification time, but for build outputs and VCS data.
fn snapshot(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "target"
                || name.starts_with('.')
                || name.ends_with('~')
                || name == "function.zip"
            {
                continue;
            }
            let path = entry.path();
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(path);
            } else if let Ok(modified) = metadata.modified() {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                files.insert(relative.display().to_string(), modified);
            }
        }
    }
    files
}

fn changed(
    before: &BTreeMap<String, SystemTime>,
    after: &BTreeMap<String, SystemTime>,
) -> Vec<String> {
    let mut paths: Vec<String> = after
        .iter()
        .filter(|(path, time)| before.get(*path) != Some(time))
        .map(|(path, _)| path.clone())
        .collect();
    paths.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    paths
}

/// `cargo build` of the binary; its path, or `None` when the build failed.
fn build(krate: &FunctionCrate) -> Option<PathBuf> {
    let mut cargo = Command::new(crate_info::cargo())
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&krate.manifest)
        .args(["--bin", &krate.bin])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut executable = None;
    if let Some(stdout) = cargo.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let ours = message["reason"] == "compiler-artifact"
                && message["target"]["name"] == krate.bin.as_str();
            match message["executable"].as_str() {
                Some(path) if ours => executable = Some(PathBuf::from(path)),
                _ => {}
            }
        }
    }
    let status = cargo.wait().ok()?;
    if status.success() { executable } else { None }
}

fn environment(command: &mut Command, port: &str, args: &Dev) {
    command.env("PORT", port);
    if let Some(target) = &args.target {
        command.env("FUNCTION_TARGET", target);
    }
}

fn start(executable: &Path, port: &str, args: &Dev) -> Result<Child, String> {
    let mut command = Command::new(executable);
    environment(&mut command, port, args);
    command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", executable.display()))
}

/// Lays out index.js, the shim and the binary as the package does, and starts Node.js on
/// them: requiring index.js execs the binary in the same process.
fn start_through_node(
    krate: &FunctionCrate,
    executable: &Path,
    shim: &Path,
    port: &str,
    args: &Dev,
) -> Result<Child, String> {
    let stage = krate.target_dir.join("ff-rust/dev-node");
    let folder = stage.join("functions-framework-rust");
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
    };
    std::fs::write(stage.join("index.js"), crate::package::INDEX_JS)
        .map_err(|e| format!("{}: {e}", stage.display()))?;
    copy(shim, &folder.join("shim.node"))?;
    copy(executable, &folder.join("function-server"))?;
    let mut command = Command::new("node");
    command
        .arg("-e")
        .arg("process.env.FUNCTIONS_FRAMEWORK_EXEC = '1'; require(process.argv[1]);")
        .arg(stage.join("index.js"));
    environment(&mut command, port, args);
    command
        .spawn()
        .map_err(|e| format!("cannot start node: {e} (--node needs Node.js on PATH)"))
}

/// The shim for `--node`: the one built into this tool, else a debug build of the framework
/// checkout's `shim-node`.
fn dev_shim(krate: &FunctionCrate) -> Result<PathBuf, String> {
    if let Some(file) = crate::package::embedded_shim(&krate.target_dir.join("ff-rust"))? {
        return Ok(file);
    }
    let manifest = crate::package::shim_source(krate)?;
    let target = krate.target_dir.join("ff-rust/shim-dev");
    log("building the shim");
    let status = Command::new(crate_info::cargo())
        .args(["build", "--lib", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let built = target.join("debug/libshim_node.so");
    if status.success() && built.is_file() {
        Ok(built)
    } else {
        Err(format!("building the shim ({}) failed", manifest.display()))
    }
}

/// SIGTERM, then SIGKILL after ten seconds.
fn stop_server(server: &mut Option<Child>) {
    let Some(mut child) = server.take() else {
        return;
    };
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        return;
    };
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
