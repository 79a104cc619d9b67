//! Which fds to hand over, and making them survive `execve`.
//!
//! A listener is a socket with `SO_DOMAIN` INET/INET6, `SO_TYPE` STREAM and
//! `SO_ACCEPTCONN` set. An inbound connection is a connected stream socket whose local port
//! is a listener's port. Everything else (outbound connections, pipes, epoll, files) is not
//! ours and is never touched.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockType, SockaddrLike, SockaddrStorage, getpeername, getsockname,
    getsockopt, send, sockopt,
};
use nix::sys::stat::{SFlag, fstat};

/// The sockets found in this process.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) listeners: Vec<RawFd>,
    pub(crate) connections: Vec<RawFd>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Listener { port: u16 },
    Connected { local_port: u16 },
    Other,
}

/// `fd` as a borrowed descriptor, for the calls of this module.
///
/// The fds this module touches are numbers listed in `/proc/self/fd` (or handed in by
/// `index.js` and checked against that list) during one synchronous call from JavaScript:
/// nothing of ours closes them, and a borrow lasts for one system call. Another Node.js
/// thread could close one meanwhile; the call then fails with `EBADF` (or acts on the fd that
/// took the number), the same as with the raw number, and no memory is involved.
#[allow(unsafe_code)]
fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: see above; `fd` is never -1 here (callers pass listed fds, and `keep` refuses
    // negative ones before calling).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// The TCP port of an INET or INET6 socket address.
fn inet_port(address: &SockaddrStorage) -> Option<u16> {
    match address.family() {
        Some(AddressFamily::Inet) => address.as_sockaddr_in().map(|a| a.port()),
        Some(AddressFamily::Inet6) => address.as_sockaddr_in6().map(|a| a.port()),
        _ => None,
    }
}

fn classify(fd: RawFd) -> Kind {
    let Ok(stat) = fstat(borrow(fd)) else {
        return Kind::Other;
    };
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Kind::Other;
    }
    // The local address's family is the socket's domain; a socket not yet bound has none.
    let Some(port) = getsockname::<SockaddrStorage>(fd)
        .ok()
        .as_ref()
        .and_then(inet_port)
    else {
        return Kind::Other;
    };
    if getsockopt(&borrow(fd), sockopt::SockType) != Ok(SockType::Stream) {
        return Kind::Other;
    }
    match getsockopt(&borrow(fd), sockopt::AcceptConn) {
        Ok(true) => Kind::Listener { port },
        Ok(false) if getpeername::<SockaddrStorage>(fd).is_ok() => {
            Kind::Connected { local_port: port }
        }
        _ => Kind::Other,
    }
}

/// Open fd numbers, from `/proc/self/fd`.
fn open_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    // Collected first: the directory's own fd is closed once iteration ends.
    let mut fds: Vec<RawFd> = dir
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// Finds the listening sockets and the inbound connections accepted on them.
pub(crate) fn find() -> Found {
    let classified: Vec<(RawFd, Kind)> = open_fds()
        .into_iter()
        .filter(|&fd| fd > 2)
        .map(|fd| (fd, classify(fd)))
        .collect();
    let ports: Vec<u16> = classified
        .iter()
        .filter_map(|(_, kind)| match kind {
            Kind::Listener { port } => Some(*port),
            _ => None,
        })
        .collect();
    let mut found = Found::default();
    for (fd, kind) in classified {
        match kind {
            Kind::Listener { .. } => found.listeners.push(fd),
            Kind::Connected { local_port } if ports.contains(&local_port) => {
                found.connections.push(fd);
            }
            _ => {}
        }
    }
    found
}

/// Whether `fd` is an inbound connection found by [`find`].
pub(crate) fn is_inbound_connection(found: &Found, fd: RawFd) -> bool {
    found.connections.contains(&fd)
}

/// Clears `FD_CLOEXEC` and remembers what to put back if `execve` fails.
#[derive(Debug, Default)]
pub(crate) struct Inheritance {
    saved: Vec<(RawFd, FdFlag)>,
}

impl Inheritance {
    /// Makes `fd` survive `execve`.
    pub(crate) fn keep(&mut self, fd: RawFd) -> io::Result<()> {
        if fd < 0 {
            return Err(Errno::EBADF.into());
        }
        let flags = FdFlag::from_bits_truncate(fcntl(borrow(fd), FcntlArg::F_GETFD)?);
        if flags.contains(FdFlag::FD_CLOEXEC) {
            fcntl(borrow(fd), FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC))?;
            self.saved.push((fd, flags));
        }
        Ok(())
    }

    /// Puts every flag back, after a failed `execve`.
    pub(crate) fn restore(self) {
        for (fd, flags) in self.saved {
            let _ = fcntl(borrow(fd), FcntlArg::F_SETFD(flags));
        }
    }
}

/// Writes all of `bytes` to a (possibly non-blocking) socket, waiting up to a second at a
/// time for room. `MSG_NOSIGNAL` turns a closed peer into `EPIPE` instead of a signal.
pub(crate) fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match send(fd, bytes, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut ready = [PollFd::new(borrow(fd), PollFlags::POLLOUT)];
                if poll(&mut ready, PollTimeout::from(1000_u16))? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "socket not writable",
                    ));
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;

    #[test]
    fn finds_listeners_and_their_inbound_connections_only() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (inbound, _) = listener.accept().expect("accept");
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let file = std::fs::File::open("/dev/null").expect("file");

        let found = find();
        assert!(found.listeners.contains(&listener.as_raw_fd()));
        assert!(found.connections.contains(&inbound.as_raw_fd()));
        // The client side is an outbound connection: its local port is ephemeral.
        assert!(!found.connections.contains(&client.as_raw_fd()));
        assert!(!found.listeners.contains(&client.as_raw_fd()));
        for other in [udp.as_raw_fd(), file.as_raw_fd()] {
            assert!(!found.listeners.contains(&other) && !found.connections.contains(&other));
        }
        assert!(is_inbound_connection(&found, inbound.as_raw_fd()));
    }

    #[test]
    fn cloexec_is_cleared_and_restored() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let fd = listener.as_raw_fd();
        let cloexec = || {
            FdFlag::from_bits_truncate(fcntl(&listener, FcntlArg::F_GETFD).expect("F_GETFD"))
                .contains(FdFlag::FD_CLOEXEC)
        };
        assert!(cloexec());
        let mut inheritance = Inheritance::default();
        inheritance.keep(fd).expect("keep");
        assert!(!cloexec());
        inheritance.restore();
        assert!(cloexec());
        assert!(Inheritance::default().keep(-1).is_err());
    }

    #[test]
    fn write_all_reaches_the_peer() {
        use std::io::Read;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        write_all(server.as_raw_fd(), b"hello").expect("write");
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"hello");
    }
}
