//! Where the sockets come from: handed over by the Node.js shim, passed by systemd socket
//! activation (`LISTEN_FDS`), or bound here on `PORT`. Also the process reset that must
//! happen before any thread exists.
//!
//! # The hand-over protocol
//!
//! The shim (`shim-node`) and this runtime share only the environment variables of
//! [`functions_framework_handover`], set by the shim right before `execve(2)`: the PID the fds
//! are meant for, the listening sockets and the accepted connections. The fds have
//! `FD_CLOEXEC` cleared. The variables are removed from the environment before `main` runs, so
//! no child process ever sees them. Every fd is checked before it is adopted: a listener must
//! be a listening INET/INET6 stream socket, a connection a connected one; anything else is left
//! alone and reported.

#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::Mutex;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

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
    /// systemd socket activation: fds 3 .. 3 + LISTEN_FDS.
    activated: Vec<RawFd>,
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

/// Adopts handed-over sockets, else systemd's, else binds `[::]:port`.
pub(crate) fn sockets(port: u16) -> io::Result<Sockets> {
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
    let activated: Vec<TcpListener> = inherited
        .activated
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
    Ok(Sockets {
        listeners: vec![bind(port)?],
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
    // SAFETY: fstat only writes into the zeroed struct we own; an fd that is not open
    // yields EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(format!("fstat failed: {}", io::Error::last_os_error()));
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err("not a socket".into());
    }
    // SAFETY: the fd is open and a socket. Ownership is given back with `into_raw_fd` on
    // every path that rejects it, so a rejected fd is never closed here.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let verdict = (|| {
        let domain = socket.domain().map_err(|e| e.to_string())?;
        if domain != Domain::IPV4 && domain != Domain::IPV6 {
            return Err("not an INET or INET6 socket".to_owned());
        }
        if socket.r#type().map_err(|e| e.to_string())? != Type::STREAM {
            return Err("not a stream socket".to_owned());
        }
        let listening = socket.is_listener().map_err(|e| e.to_string())?;
        match role {
            Role::Listener if !listening => Err("not a listening socket".to_owned()),
            Role::Connection if listening => Err("a listener, not a connection".to_owned()),
            Role::Connection if socket.peer_addr().is_err() => Err("not connected".to_owned()),
            _ => Ok(()),
        }
    })();
    match verdict {
        Ok(()) => {
            socket
                .set_nonblocking(true)
                .and_then(|()| socket.set_cloexec(true))
                .map_err(|e| e.to_string())?;
            Ok(socket)
        }
        Err(reason) => {
            let _ = socket.into_raw_fd();
            Err(reason)
        }
    }
}

/// Runs before `main` and before any thread: a thread started earlier would inherit a
/// blocked signal mask, and removing variables from the environment is only sound while
/// no other thread can read it.
fn early_init() {
    let pid = std::process::id().to_string();
    let mut inherited = Inherited::default();

    if let Ok(target) = std::env::var(handover::PID) {
        let listeners = std::env::var(handover::LISTENERS).unwrap_or_default();
        let connections = std::env::var(handover::CONNECTIONS).unwrap_or_default();
        for name in handover::ALL {
            // SAFETY: no other thread exists yet (see above).
            unsafe { std::env::remove_var(name) };
        }
        if target.trim() == pid {
            inherited.from_shim = true;
            inherited.listeners = handover::parse_fds(&listeners);
            inherited.connections = handover::parse_fds(&connections);
        }
    }
    if let Ok(target) = std::env::var("LISTEN_PID") {
        let count = std::env::var("LISTEN_FDS").unwrap_or_default();
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            // SAFETY: as above.
            unsafe { std::env::remove_var(name) };
        }
        if target.trim() == pid {
            let count = count.trim().parse::<RawFd>().unwrap_or(0).clamp(0, 64);
            inherited.activated = (3..3 + count).collect();
        }
    }

    reset_stdio();
    reset_signals(inherited.from_shim);
    if let Ok(mut guard) = INHERITED.lock() {
        *guard = Some(inherited);
    }
}

/// libuv leaves piped stdio non-blocking and the flag survives `execve`: a large `println!`
/// would then fail with EAGAIN. Rust's stdio expects blocking fds.
fn reset_stdio() {
    for fd in 0..=2 {
        // SAFETY: fcntl on fds 0-2 with F_GETFL/F_SETFL touches no memory.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
}

/// The signal mask and ignored dispositions survive `execve`. A blocked SIGTERM would never
/// reach the shutdown handler; an ignored SIGCHLD breaks waiting for children.
fn reset_signals(from_shim: bool) {
    // SAFETY: plain libc calls on a stack-allocated, initialised signal set.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if from_shim {
            // Node ignores some of these; a process started normally keeps what its parent
            // chose (`nohup` ignoring SIGHUP, say).
            for signal in [
                libc::SIGXFSZ,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGUSR1,
                libc::SIGUSR2,
                libc::SIGCHLD,
            ] {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does: a server
/// holding many idle keep-alive connections must not fail `accept` at 1024.
pub(crate) fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
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
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstat(fd, &mut stat) }, 0);
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
