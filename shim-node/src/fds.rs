//! Which fds to hand over, and making them survive `execve`.
//!
//! A listener is a socket with `SO_DOMAIN` INET/INET6, `SO_TYPE` STREAM and
//! `SO_ACCEPTCONN` set. An inbound connection is a connected stream socket whose local port
//! is a listener's port. Everything else (outbound connections, pipes, epoll, files) is not
//! ours and is never touched.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

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

fn sockopt(fd: RawFd, option: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

fn socket_port(fd: RawFd, peer: bool) -> Option<u16> {
    // SAFETY: a zeroed sockaddr_storage is a valid out-buffer of the size we pass.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let address = (&raw mut storage).cast::<libc::sockaddr>();
    // SAFETY: the kernel writes at most `len` bytes into `storage`.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, address, &mut len)
        } else {
            libc::getsockname(fd, address, &mut len)
        }
    };
    if rc != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in>() };
            Some(u16::from_be(v4.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in6>() };
            Some(u16::from_be(v6.sin6_port))
        }
        _ => None,
    }
}

fn classify(fd: RawFd) -> Kind {
    // SAFETY: fstat writes into a zeroed struct we own; a closed fd gives EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Kind::Other;
    }
    let inet = matches!(
        sockopt(fd, libc::SO_DOMAIN),
        Some(libc::AF_INET | libc::AF_INET6)
    );
    if !inet || sockopt(fd, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return Kind::Other;
    }
    match (sockopt(fd, libc::SO_ACCEPTCONN), socket_port(fd, false)) {
        (Some(1), Some(port)) => Kind::Listener { port },
        (Some(0), Some(local_port)) if socket_port(fd, true).is_some() => {
            Kind::Connected { local_port }
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
    saved: Vec<(RawFd, libc::c_int)>,
}

impl Inheritance {
    /// Makes `fd` survive `execve`.
    pub(crate) fn keep(&mut self, fd: RawFd) -> io::Result<()> {
        // SAFETY: fcntl F_GETFD/F_SETFD on a number touches no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::FD_CLOEXEC != 0 {
            if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
                return Err(io::Error::last_os_error());
            }
            self.saved.push((fd, flags));
        }
        Ok(())
    }

    /// Puts every flag back, after a failed `execve`.
    pub(crate) fn restore(self) {
        for (fd, flags) in self.saved {
            // SAFETY: as in `keep`.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags) };
        }
    }
}

/// Writes all of `bytes` to a (possibly non-blocking) socket, waiting up to a second at a
/// time for room.
pub(crate) fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length; MSG_NOSIGNAL turns a closed peer into
        // EPIPE instead of a signal.
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            bytes = bytes.get(n as usize..).unwrap_or_default();
            continue;
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {
                let mut poll = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one pollfd we own.
                if unsafe { libc::poll(&mut poll, 1, 1000) } <= 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "socket not writable",
                    ));
                }
            }
            _ => return Err(error),
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
        let cloexec = || unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC != 0;
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
