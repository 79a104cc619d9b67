//! One adapter per signature type: each turns a user function into the [`Invoke`] shape the
//! server runs. The decoding the two event signatures share is in [`decode`].

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::InvokeError;
use crate::{Body, Response};

pub(crate) mod cloudevent;
pub(crate) mod decode;
pub(crate) mod http;
pub(crate) mod layer;
pub(crate) mod legacy;
pub(crate) mod pubsub_push;
pub(crate) mod typed;

/// A future boxed for storage behind the type-erased [`Invoke`].
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A registered function with its signature adapter, erased to one shape.
pub(crate) trait Invoke: Send + Sync + 'static {
    /// Runs the function on a request whose body has been read: the function's response, or
    /// why there is none (the request was refused, or the function failed).
    fn invoke(&self, request: ::http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>>;
}

/// A registered function that takes the request body as it arrives, without the framework
/// reading it first.
pub(crate) trait InvokeStreaming: Send + Sync + 'static {
    /// Runs the function on a request whose body is still being received.
    fn invoke(&self, request: ::http::Request<Body>) -> BoxFuture<Result<Response, InvokeError>>;
}

/// A registered function, by how it takes its request body.
#[derive(Clone)]
pub(crate) enum Handler {
    /// The framework reads the body (within the limit) before the function runs.
    Buffered(Arc<dyn Invoke>),
    /// The function reads the body itself.
    Streaming(Arc<dyn InvokeStreaming>),
}

/// An invocation that ends before the function runs.
pub(crate) fn refused(
    rejection: crate::error::Rejection,
) -> BoxFuture<Result<Response, InvokeError>> {
    Box::pin(std::future::ready(Err(InvokeError::Rejected(rejection))))
}

/// Requests for the adapters' tests.
#[cfg(test)]
pub(crate) mod test_requests {
    use bytes::Bytes;

    /// A POST to `/` with these headers and body.
    pub(crate) fn post(headers: &[(&str, &str)], body: &str) -> ::http::Request<Bytes> {
        let mut request = ::http::Request::post("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Bytes::copy_from_slice(body.as_bytes()))
            .expect("request")
    }

    /// The headers of a binary-mode Cloud Storage event with JSON data.
    pub(crate) const BINARY: [(&str, &str); 5] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
        ("ce-type", "google.cloud.storage.object.v1.finalized"),
        ("content-type", "application/json"),
    ];
}
