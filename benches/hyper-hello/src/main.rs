//! The smallest useful hyper server: reads the request body and answers `OK`. It binds
//! `[::]:$PORT` like the framework (dual-stack, backlog 1024) and runs on the same tokio and
//! hyper, so that the difference to the framework is what the framework adds. With `H2C=1`
//! it speaks HTTP/2 with prior knowledge only (hyper's HTTP/2 server), the peer of the
//! framework's h2c row.

use std::convert::Infallible;
use std::net::{Ipv6Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use socket2::{Domain, Protocol, Socket, Type};

async fn hello(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as a function framework must, so that POST costs are comparable.
    let _ = request.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(b"OK"))))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(socket.into())?;
    println!("serving on {}", listener.local_addr()?);
    let h2c = std::env::var("H2C").is_ok_and(|v| v == "1");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            if h2c {
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service_fn(hello))
                    .await;
            } else {
                let _ = http1::Builder::new()
                    .serve_connection(io, service_fn(hello))
                    .await;
            }
        });
    }
}
