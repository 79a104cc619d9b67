//! The body of responses: bytes known up front or any streaming `http_body::Body`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::Error;

/// The body of a [`Response`]: either bytes known up front or any streaming
/// [`http_body::Body`] (what an axum handler or another `tower::Service` returns).
///
/// ```
/// use functions_framework::Body;
///
/// let body = Body::from("Hello");
/// let empty = Body::empty();
/// # let _ = (body, empty);
/// ```
pub struct Body(Inner);

enum Inner {
    Full(Option<Bytes>),
    Boxed(UnsyncBoxBody<Bytes, Error>),
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Body(Inner::Full(None))
    }

    /// Wraps any body whose chunks are [`Bytes`].
    ///
    /// ```
    /// use functions_framework::Body;
    /// use http_body_util::Full;
    ///
    /// let body = Body::new(Full::new(bytes::Bytes::from_static(b"streamed")));
    /// # let _ = body;
    /// ```
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Error>,
    {
        // A `Body` handed back to us must not be boxed a second time.
        let mut slot = Some(body);
        if let Some(inner) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
            if let Some(body) = inner.take() {
                return body;
            }
        }
        match slot {
            Some(body) => Body(Inner::Boxed(body.map_err(Into::into).boxed_unsync())),
            None => Body::empty(),
        }
    }
}

impl Body {
    /// Whether the body is produced as it is sent, rather than known up front.
    pub(crate) fn is_streaming(&self) -> bool {
        matches!(self.0, Inner::Boxed(_))
    }

    /// The bytes of a body known up front, without copying; any other body back as it was.
    pub(crate) fn try_into_bytes(self) -> Result<Bytes, Body> {
        match self.0 {
            Inner::Full(bytes) => Ok(bytes.unwrap_or_default()),
            other => Err(Body(other)),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Full(bytes) => f.debug_tuple("Body").field(bytes).finish(),
            Inner::Boxed(_) => f.write_str("Body(<stream>)"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().0 {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Body::empty()
        } else {
            Body(Inner::Full(Some(bytes)))
        }
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::from(Bytes::from(v))
    }
}

impl From<&'static [u8]> for Body {
    fn from(v: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(v))
    }
}

/// The response a function produces.
pub type Response = http::Response<Body>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_new_does_not_rebox_a_body() {
        let body = Body::new(Body::from("x"));
        assert!(matches!(body.0, Inner::Full(Some(_))));
    }
}
