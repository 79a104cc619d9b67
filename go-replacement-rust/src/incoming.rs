//! Request bodies as functions receive them: read in full within the body limit (the
//! default), or streamed to functions that ask for it, frame by frame as the client sends
//! them. Either way a client that stops sending is not waited for forever.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{self, Rejection};
use crate::{Error, Response};

/// Reads the whole body, refusing it past `limit` bytes (413) or when the client sends
/// nothing for `idle` (408): a stalled upload must not hold a connection forever.
///
/// `declared` is the request's `Content-Length`: with it the bytes are gathered into one
/// buffer of the final size, so that a large body is copied once instead of being moved
/// each time a growing buffer is reallocated.
pub(crate) async fn read<B>(
    body: B,
    declared: Option<u64>,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, Response>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
    let mut body = Limited::new(body, limit);
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut timer = IdleTimer::new(idle);
    loop {
        // Data already received needs no timer: only a frame that has to be waited for is.
        let next = match body.frame().now_or_never() {
            Some(frame) => Ok(frame),
            None => {
                let mut frame = body.frame();
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(frame) = Pin::new(&mut frame).poll(cx) {
                        return Poll::Ready(Ok(frame));
                    }
                    timer.poll_expired(cx).map(Err)
                })
                .await
            }
        };
        timer.progress();
        let frame = match next {
            Err(_) => return Err(error::body_stalled(idle)),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(error::too_large(limit));
            }
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "request body could not be read");
                return Err(error::rejected(&Rejection::bad_request(format!(
                    "could not read the request body: {error}"
                ))));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // Most bodies arrive in one frame: keep it without copying.
        if first.is_none() && rest.is_empty() {
            first = Some(data);
            continue;
        }
        if rest.is_empty() {
            // `Limited` has already refused anything past the limit, so the declared length
            // is at most the limit here.
            let expected = declared
                .and_then(|len| usize::try_from(len).ok())
                .unwrap_or(0)
                .min(limit);
            let held = first.take().unwrap_or_default();
            rest.reserve(expected.max(held.len() + data.len()));
            rest.extend_from_slice(&held);
        }
        rest.extend_from_slice(&data);
    }
    let body = match first {
        Some(bytes) => bytes,
        None => rest.freeze(),
    };
    crate::memory::body_read(body.len());
    Ok(body)
}

/// "Nothing arrived for `idle`", armed once per idle period rather than for every frame
/// that has to be waited for: a large upload arrives in hundreds of frames.
struct IdleTimer {
    idle: Duration,
    last: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleTimer {
    fn new(idle: Duration) -> Self {
        IdleTimer {
            idle,
            last: tokio::time::Instant::now(),
            sleep: None,
        }
    }

    /// Bytes arrived.
    fn progress(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    /// Ready once nothing has arrived for the idle time.
    fn poll_expired(&mut self, cx: &mut TaskContext<'_>) -> Poll<()> {
        let deadline = self.last + self.idle;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            std::task::ready!(sleep.as_mut().poll(cx));
            // The timer was armed before the last progress: move it, once, to the real end.
            let deadline = self.last + self.idle;
            if tokio::time::Instant::now() >= deadline {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// A request body handed to the function as it arrives, with no size limit. It ends with
/// an error when the client sends nothing for the idle timeout.
pub(crate) struct Streamed<B> {
    body: B,
    idle: Duration,
    /// Released when the body has been received in full (or dropped).
    unread: Option<Unread>,
    timer: IdleTimer,
}

impl<B> Streamed<B> {
    pub(crate) fn new(body: B, idle: Duration, unread: Unread) -> Self {
        Streamed {
            body,
            idle,
            unread: Some(unread),
            timer: IdleTimer::new(idle),
        }
    }
}

impl<B> http_body::Body for Streamed<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.progress();
                if !matches!(frame, Some(Ok(_))) {
                    this.unread = None;
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.poll_expired(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Counts a request body as not yet received in full while it lives.
pub(crate) struct Unread(Arc<AtomicUsize>);

impl Unread {
    pub(crate) fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Unread(Arc::clone(counter))
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error a streamed body ends with when the client stops sending.
#[derive(Debug)]
struct BodyStalled(Duration);

impl fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client sent no request body bytes for {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyStalled {}

#[cfg(test)]
mod tests {
    use http_body_util::{Full, StreamBody};

    use super::*;

    fn chunks(parts: &[&'static str]) -> impl http_body::Body<Data = Bytes, Error = Error> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, Error>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn unread() -> Unread {
        Unread::start(&Arc::new(AtomicUsize::new(0)))
    }

    #[tokio::test]
    async fn one_frame_is_kept_and_several_are_joined() {
        let idle = Duration::from_secs(1);
        let one = read(Full::new(Bytes::from_static(b"abc")), Some(3), 10, idle).await;
        assert_eq!(one.ok().as_deref(), Some(&b"abc"[..]));
        let many = read(chunks(&["ab", "cd", "e"]), Some(5), 10, idle).await;
        assert_eq!(many.ok().as_deref(), Some(&b"abcde"[..]));
        // A wrong declared length only sizes the buffer.
        let short = read(chunks(&["ab", "cd"]), Some(1), 10, idle).await;
        assert_eq!(short.ok().as_deref(), Some(&b"abcd"[..]));
        let undeclared = read(chunks(&["ab", "cd"]), None, 10, idle).await;
        assert_eq!(undeclared.ok().as_deref(), Some(&b"abcd"[..]));
    }

    #[tokio::test]
    async fn past_the_limit_is_413() {
        let refused = read(chunks(&["abc", "def"]), None, 4, Duration::from_secs(1))
            .await
            .expect_err("too large");
        assert_eq!(refused.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_stalled_stream_ends_with_an_error() {
        let pending =
            StreamBody::new(futures_util::stream::pending::<Result<Frame<Bytes>, Error>>());
        let mut body = Streamed::new(pending, Duration::from_millis(50), unread());
        let error = body.frame().await.expect("a frame").expect_err("stalled");
        assert_eq!(
            error.to_string(),
            "the client sent no request body bytes for 0.05 s"
        );
    }

    #[tokio::test]
    async fn a_streamed_body_passes_frames_through() {
        let body = Streamed::new(chunks(&["a", "b"]), Duration::from_secs(1), unread());
        let all = body.collect().await.expect("collected").to_bytes();
        assert_eq!(all, "ab");
    }
}
