//! Where the binary is, what it is given (argv and environment), and `execve` itself, with
//! the `memfd_create` + exec fallback for a binary that lost its executable bit.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::AtFlags;
use nix::unistd::{execve, execveat};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The binary's file name, next to the `.node` file.
pub(crate) const BINARY_NAME: &str = "function-server";

/// For development only: run this binary instead of the one next to the `.node` file.
pub(crate) const DEV_BINARY_VAR: &str = "FUNCTIONS_FRAMEWORK_DEV_BINARY";

use functions_framework_handover as handover;

/// The flags of the Node.js launcher that mean the same to the binary.
const FORWARDED_FLAGS: [&str; 3] = ["--target", "--port", "--signature-type"];

/// The directory of the loaded `.node` file, found from the address of our own code (never
/// from `PATH` or the current directory). nix has no `dladdr`, so this calls libc.
#[allow(unsafe_code)]
fn module_directory() -> io::Result<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let anchor = module_directory as fn() -> io::Result<PathBuf>;
    // SAFETY: `info` is a writable `Dl_info`; dladdr only reads the address, which is our own
    // function's, and fills `info` when it lies inside a loaded object.
    let found = unsafe { libc::dladdr(anchor as *const libc::c_void, info.as_mut_ptr()) };
    // SAFETY: zeroed is a valid `Dl_info` (null pointers), whatever dladdr wrote.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return Err(io::Error::other(
            "dladdr cannot tell where the native module was loaded from",
        ));
    }
    // SAFETY: on success `dli_fname` points to a NUL-terminated path owned by the dynamic
    // loader, valid while the object stays loaded (for this whole call: it is ours).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = Path::new(OsStr::from_bytes(name.to_bytes()));
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("the native module path has no directory"))
}

/// The binary to run: next to the `.node` file, unless the development variable names one.
pub(crate) fn locate() -> io::Result<PathBuf> {
    match std::env::var_os(DEV_BINARY_VAR).filter(|v| !v.is_empty()) {
        Some(path) => Ok(PathBuf::from(path)),
        None => Ok(module_directory()?.join(BINARY_NAME)),
    }
}

/// The launcher's `--target`, `--port` and `--signature-type`, in either `--flag=value` or
/// `--flag value` form, as `--flag=value`. Everything else is the launcher's own business.
pub(crate) fn forwarded_flags(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = argv.iter().peekable();
    while let Some(arg) = args.next() {
        for flag in FORWARDED_FLAGS {
            if let Some(value) = arg
                .strip_prefix(flag)
                .and_then(|rest| rest.strip_prefix('='))
            {
                out.push(format!("{flag}={value}"));
            } else if arg == flag
                && let Some(value) = args.next_if(|next| !next.starts_with("--"))
            {
                out.push(format!("{flag}={value}"));
            }
        }
    }
    out
}

/// This process's environment with the hand-over variables set (stale ones replaced).
pub(crate) fn environment(pid: u32, listeners: &[RawFd], connections: &[RawFd]) -> Vec<CString> {
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(name, _)| !handover::ALL.iter().any(|ours| name == OsStr::new(ours)))
        .filter_map(|(name, value)| {
            let mut entry: OsString = name;
            entry.push("=");
            entry.push(value);
            CString::new(entry.into_vec()).ok()
        })
        .collect();
    for (name, value) in [
        (handover::PID, pid.to_string()),
        (handover::LISTENERS, handover::encode_fds(listeners)),
        (handover::CONNECTIONS, handover::encode_fds(connections)),
    ] {
        if let Ok(entry) = CString::new(format!("{name}={value}")) {
            env.push(entry);
        }
    }
    env
}

/// Replaces this process with `binary`. Returns only on failure. When the file is not
/// executable (EACCES: an upload lost the mode bits) it is copied into an anonymous memory
/// file and executed from there.
pub(crate) fn exec(binary: &Path, args: &[String], env: &[CString]) -> io::Error {
    let Ok(path) = CString::new(binary.as_os_str().as_bytes()) else {
        return io::Error::new(io::ErrorKind::InvalidInput, "binary path contains NUL");
    };
    let mut argv = vec![path.clone()];
    argv.extend(args.iter().filter_map(|a| CString::new(a.as_bytes()).ok()));

    let Err(errno) = execve(&path, &argv, env);
    if errno != nix::errno::Errno::EACCES {
        return errno.into();
    }
    let error = io::Error::from(errno);
    match exec_from_memory(binary, &argv, env) {
        Ok(never) => match never {},
        Err(memfd_error) => io::Error::new(
            error.kind(),
            format!("{error}; running it from memory failed too: {memfd_error}"),
        ),
    }
}

enum Never {}

/// An anonymous memory file (`memfd_create`, close-on-exec).
///
/// Through the raw syscall, not libc's wrapper (nor nix's, which calls it on glibc): glibc
/// 2.17, the floor we link against, lacks `memfd_create`, and an unversioned symbol would hide
/// from the glibc check.
#[allow(unsafe_code)]
fn memory_file(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; the syscall reads nothing else
    // and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the fd was just created by the kernel for us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn exec_from_memory(binary: &Path, argv: &[CString], env: &[CString]) -> io::Result<Never> {
    let mut source = std::fs::File::open(binary)?;
    let mut target = std::fs::File::from(memory_file(c"function-server")?);
    io::copy(&mut source, &mut target)?;
    // AT_EMPTY_PATH runs the file behind the fd itself.
    let Err(_) = execveat(&target, c"", argv, env, AtFlags::AT_EMPTY_PATH);
    // Kernels before 3.19 have no execveat: go through /proc.
    let proc_path =
        CString::new(format!("/proc/self/fd/{}", target.as_raw_fd())).map_err(io::Error::other)?;
    let Err(errno) = execve(&proc_path, argv, env);
    Err(errno.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn launcher_flags_keep_their_meaning() {
        let argv = strings(&[
            "/usr/bin/node",
            "/workspace/node_modules/.bin/functions-framework",
            "--target=hello",
            "--port",
            "9090",
            "--signature-type",
            "cloudevent",
            "--source=/workspace",
            "--log-execution-id",
            "--target-other=x",
        ]);
        assert_eq!(
            forwarded_flags(&argv),
            strings(&[
                "--target=hello",
                "--port=9090",
                "--signature-type=cloudevent"
            ])
        );
        assert!(
            forwarded_flags(&strings(&["node", "--port", "--target=x"]))
                == strings(&["--target=x"])
        );
    }

    #[test]
    fn environment_carries_the_handover_and_replaces_stale_values() {
        let env = environment(42, &[3, 4], &[7]);
        let text: Vec<String> = env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert!(text.contains(&"FUNCTIONS_FRAMEWORK_HANDOVER_PID=42".to_owned()));
        assert!(text.contains(&"FUNCTIONS_FRAMEWORK_HANDOVER_LISTENERS=3,4".to_owned()));
        assert!(text.contains(&"FUNCTIONS_FRAMEWORK_HANDOVER_CONNECTIONS=7".to_owned()));
        assert_eq!(
            text.iter()
                .filter(|e| e.starts_with("FUNCTIONS_FRAMEWORK_HANDOVER_PID="))
                .count(),
            1
        );
        assert!(text.iter().any(|e| e.starts_with("PATH=")) || std::env::var_os("PATH").is_none());
    }

    #[test]
    fn locate_finds_a_path_next_to_the_loaded_object() {
        // In a test the "loaded object" is the test executable itself.
        if std::env::var_os(DEV_BINARY_VAR).is_none() {
            let path = locate().expect("locate");
            assert_eq!(path.file_name().and_then(OsStr::to_str), Some(BINARY_NAME));
            let exe = std::env::current_exe()
                .expect("exe")
                .canonicalize()
                .expect("canonical");
            assert_eq!(path.parent(), exe.parent());
        }
    }

    #[test]
    fn exec_of_a_missing_binary_fails_with_enoent() {
        let error = exec(Path::new("/nonexistent/function-server"), &[], &[]);
        assert_eq!(error.raw_os_error(), Some(nix::errno::Errno::ENOENT as i32));
    }
}
