//! Where the sockets come from: handed over by the Node.js shim, passed by systemd socket
//! activation (`LISTEN_FDS`), or bound here on `PORT`. Also the process reset that must
//! happen before any thread exists.
//!
//! # The hand-over protocol
//!
//! The shim (`shim-node`) and this runtime share only the environment variables of
//! [`functions_framework_handover`], set by the shim right before `execve(2)`: the PID the fds
//! are meant for, the listening sockets and the accepted connections. The fds have
//! `FD_CLOEXEC` cleared. Every fd is checked before it is adopted: a listener must be a
//! listening INET/INET6 stream socket, a connection a connected one; anything else is left
//! alone (never closed) and reported.
//!
//! # Before `main`
//!
//! An ELF constructor runs in every binary that links this crate, so it does nothing unless
//! the hand-over variables name this very PID, which only the shim's `execve` into a serving
//! binary arranges. Then, before any thread exists, it removes those variables (so that no
//! child sees them), clears `O_NONBLOCK` on stdio and resets the signal mask and the
//! dispositions Node.js changed. Any other process keeps what its parent chose. systemd's
//! `LISTEN_PID`/`LISTEN_FDS` are read when `serve` asks for sockets and left in place: their
//! PID check makes them harmless to children, as with systemd's own services.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, RawFd};
use std::sync::Mutex;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::stat::{SFlag, fstat};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use functions_framework_handover as handover;

/// The listen backlog: large enough that a burst during start-up is queued, not refused
/// (the default of the standard library is 128).
const BACKLOG: i32 = 1024;

/// fds found in the environment at start-up, waiting to be adopted by `serve`.
#[derive(Debug, Default)]
struct Inherited {
    /// Set when the shim exec'd this process (the PID matched).
    from_shim: bool,
    listeners: Vec<RawFd>,
    connections: Vec<RawFd>,
}

static INHERITED: Mutex<Option<Inherited>> = Mutex::new(None);

/// The sockets a server runs on.
#[derive(Debug)]
pub(crate) struct Sockets {
    pub(crate) listeners: Vec<TcpListener>,
    pub(crate) connections: Vec<TcpStream>,
    /// Where the listeners came from, for the start-up log line.
    pub(crate) origin: &'static str,
}

/// Whether this process was exec'd by the Node.js shim.
pub(crate) fn from_shim() -> bool {
    INHERITED
        .lock()
        .map(|guard| guard.as_ref().is_some_and(|i| i.from_shim))
        .unwrap_or(false)
}

/// Adopts handed-over sockets, else systemd's, else binds `host:port` (`[::]:port` without a
/// host).
pub(crate) fn sockets(host: Option<std::net::IpAddr>, port: u16) -> io::Result<Sockets> {
    let inherited = INHERITED
        .lock()
        .ok()
        .and_then(|mut guard| guard.take())
        .unwrap_or_default();

    let connections = inherited
        .connections
        .iter()
        .filter_map(|&fd| adopt(fd, Role::Connection))
        .map(TcpStream::from)
        .collect();
    let from_node: Vec<TcpListener> = inherited
        .listeners
        .iter()
        .filter_map(|&fd| adopt(fd, Role::Listener))
        .map(TcpListener::from)
        .collect();
    if !from_node.is_empty() {
        return Ok(Sockets {
            listeners: from_node,
            connections,
            origin: "handed over by Node.js",
        });
    }
    let activated: Vec<TcpListener> = socket_activation()
        .iter()
        .filter_map(|&fd| adopt(fd, Role::Listener))
        .map(TcpListener::from)
        .collect();
    if !activated.is_empty() {
        return Ok(Sockets {
            listeners: activated,
            connections,
            origin: "socket activation",
        });
    }
    let listener = match host {
        Some(host) => bind_to(SocketAddr::from((host, port)))?,
        None => bind(port)?,
    };
    Ok(Sockets {
        listeners: vec![listener],
        connections,
        origin: "bound",
    })
}

/// Binds `[::]:port` dual-stack (IPv4 clients arrive as mapped addresses), or `0.0.0.0` where
/// the host has no IPv6.
pub(crate) fn bind(port: u16) -> io::Result<TcpListener> {
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let socket = match Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)) {
        Ok(socket) => {
            socket.set_only_v6(false)?;
            Some((socket, v6))
        }
        Err(_) => None,
    };
    let (socket, addr) = match socket {
        Some(pair) => pair,
        None => (
            Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
    };
    socket.set_reuse_address(true)?;
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on port {port}: {e}")))?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds exactly `addr` (a `HOST` that names one address).
fn bind_to(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot listen on port {} of {}: {e}",
                addr.port(),
                addr.ip()
            ),
        )
    })?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Listener,
    Connection,
}

/// Takes ownership of `fd` when it is what `role` needs; otherwise leaves it untouched.
fn adopt(fd: RawFd, role: Role) -> Option<Socket> {
    match check(fd, role) {
        Ok(socket) => Some(socket),
        Err(reason) => {
            tracing::warn!(fd, ?role, "not adopting handed-over fd: {reason}");
            None
        }
    }
}

fn check(fd: RawFd, role: Role) -> Result<Socket, String> {
    if fd < 0 {
        return Err("negative fd".into());
    }
    let borrowed = borrow(fd);
    let stat = fstat(borrowed).map_err(|e| format!("fstat failed: {e}"))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err("not a socket".into());
    }
    // Checked through a reference: the fd is owned only once every check has passed, so a
    // rejected fd is never closed here.
    let socket = SockRef::from(&borrowed);
    let domain = socket.domain().map_err(|e| e.to_string())?;
    if domain != Domain::IPV4 && domain != Domain::IPV6 {
        return Err("not an INET or INET6 socket".to_owned());
    }
    if socket.r#type().map_err(|e| e.to_string())? != Type::STREAM {
        return Err("not a stream socket".to_owned());
    }
    let listening = socket.is_listener().map_err(|e| e.to_string())?;
    match role {
        Role::Listener if !listening => return Err("not a listening socket".to_owned()),
        Role::Connection if listening => return Err("a listener, not a connection".to_owned()),
        Role::Connection if socket.peer_addr().is_err() => return Err("not connected".to_owned()),
        _ => {}
    }
    socket
        .set_nonblocking(true)
        .and_then(|()| socket.set_cloexec(true))
        .map_err(|e| e.to_string())?;
    Ok(own(fd))
}

/// `fd`, handed to this process by number, as a borrowed descriptor for the checks.
#[allow(unsafe_code)]
fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: `fd` is not -1 (`check` refuses negative numbers) and is only used while
    // `check` runs, before anything in this process could close it: nothing else knows the
    // number but the hand-over or systemd, and adopting happens once, before serving.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of a socket `check` accepted.
#[allow(unsafe_code)]
fn own(fd: RawFd) -> Socket {
    // SAFETY: `fd` is an open socket that the hand-over (or systemd) gave this process and
    // that nothing else owns: `sockets()` adopts each listed fd at most once.
    unsafe { Socket::from_raw_fd(fd) }
}

/// systemd socket activation: fds 3 .. 3 + `LISTEN_FDS` when `LISTEN_PID` is this process.
fn socket_activation() -> Vec<RawFd> {
    let pid = std::env::var("LISTEN_PID").unwrap_or_default();
    if pid.trim() != std::process::id().to_string() {
        return Vec::new();
    }
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|count| count.trim().parse::<RawFd>().ok())
        .unwrap_or(0)
        .clamp(0, 64);
    (3..3 + count).collect()
}

/// Runs before `main` and before any thread (see the module documentation): a thread
/// started earlier would inherit a blocked signal mask, and removing variables from the
/// environment is only sound while no other thread can read it.
fn early_init() {
    let handed_over = std::env::var(handover::PID)
        .is_ok_and(|target| target.trim() == std::process::id().to_string());
    if !handed_over {
        return;
    }
    let listeners = std::env::var(handover::LISTENERS).unwrap_or_default();
    let connections = std::env::var(handover::CONNECTIONS).unwrap_or_default();
    remove_handover_variables();
    reset_stdio();
    reset_signals();
    if let Ok(mut guard) = INHERITED.lock() {
        *guard = Some(Inherited {
            from_shim: true,
            listeners: handover::parse_fds(&listeners),
            connections: handover::parse_fds(&connections),
        });
    }
}

#[allow(unsafe_code)]
fn remove_handover_variables() {
    for name in handover::ALL {
        // SAFETY: called only from the constructor of a process the shim has just exec'd
        // (the PID matched), before `main`: the process runs nothing but this binary, and no
        // thread exists yet to read the environment.
        unsafe { std::env::remove_var(name) };
    }
}

/// libuv leaves piped stdio non-blocking and the flag survives `execve`: a large `println!`
/// would then fail with EAGAIN. Rust's stdio expects blocking fds.
fn reset_stdio() {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for fd in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()] {
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let flags = OFlag::from_bits_truncate(flags);
            if flags.contains(OFlag::O_NONBLOCK) {
                let _ = fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK));
            }
        }
    }
}

/// The signal mask and ignored dispositions survive `execve`, and Node.js changes both: a
/// blocked SIGTERM would never reach the shutdown handler, an ignored SIGCHLD breaks waiting
/// for children.
#[allow(unsafe_code)]
fn reset_signals() {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for signal in [
        Signal::SIGXFSZ,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
    ] {
        // SAFETY: restoring the default disposition installs no handler of ours, and no
        // other thread exists yet to race with.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does: a server
/// holding many idle keep-alive connections must not fail `accept` at 1024.
pub(crate) fn raise_fd_limit() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

extern "C" fn early_init_entry() {
    // Unwinding out of an ELF constructor is undefined behaviour.
    let _ = std::panic::catch_unwind(early_init);
}

/// Runs `early_init` from the ELF constructors, before `main` and thus before the tokio
/// runtime starts its threads.
#[cfg(target_os = "linux")]
#[used]
#[allow(unsafe_code)]
// SAFETY: `.init_array` holds `extern "C" fn()` pointers the loader calls once before
// `main`; `early_init_entry` has that type and never unwinds (it catches panics).
#[unsafe(link_section = ".init_array")]
static EARLY_INIT: extern "C" fn() = early_init_entry;

/// Keeps the constructor linked into every binary that uses the crate.
pub(crate) fn ensure_early_init_linked() {
    #[cfg(target_os = "linux")]
    std::hint::black_box(&EARLY_INIT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn listener_is_adopted_and_connection_rejected_as_listener() {
        let listener = bind(0).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fd = listener.into_raw_fd();
        let adopted = adopt(fd, Role::Listener).expect("listener adopted");
        let client = TcpStream::connect(("127.0.0.1", addr.port())).expect("connect");
        let (accepted, _) = TcpListener::from(adopted).accept().expect("accept");
        let accepted_fd = accepted.into_raw_fd();
        assert!(check(accepted_fd, Role::Listener).is_err());
        let conn = adopt(accepted_fd, Role::Connection).expect("connection adopted");
        drop((conn, client));
    }

    #[test]
    fn non_sockets_are_rejected_and_left_open() {
        let file = std::fs::File::open("/dev/null").expect("open");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        assert_eq!(
            check(fd, Role::Listener).err().as_deref(),
            Some("not a socket")
        );
        // Still open: fstat succeeds.
        assert!(fstat(file.as_fd()).is_ok());
        assert!(check(9999, Role::Listener).is_err());
    }

    #[test]
    fn udp_socket_is_rejected() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&udp);
        assert_eq!(
            check(fd, Role::Listener).err().as_deref(),
            Some("not a stream socket")
        );
    }

    #[test]
    fn bind_is_dual_stack() {
        let listener = bind(0).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        if TcpListener::bind("[::1]:0").is_ok() {
            assert!(TcpStream::connect(("::1", port)).is_ok());
        }
    }
}
