//! HTTP functions: a plain `async fn(Request) -> impl IntoResponse`, or any `tower::Service`.

use std::future::poll_fn;

use bytes::Bytes;
use futures_util::FutureExt;
use tower_service::Service;

use super::{BoxFuture, Invoke, InvokeStreaming};
use crate::error::InvokeError;
use crate::{Body, Error, IntoResponse, Request, Response};

/// An `async fn(Request) -> impl IntoResponse`.
pub(crate) struct HttpFunction<F>(pub(crate) F);

impl<F, Fut, R> Invoke for HttpFunction<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>> {
        let future = (self.0)(request);
        // `map`, not an `async` block: a block would hold the function's future twice
        // (before and while it is awaited), and the box is made per request.
        Box::pin(future.map(|output| output.into_result().map_err(InvokeError::Failed)))
    }
}

/// An `async fn(http::Request<Body>) -> impl IntoResponse` that reads the body itself.
pub(crate) struct StreamingHttpFunction<F>(pub(crate) F);

impl<F, Fut, R> InvokeStreaming for StreamingHttpFunction<F>
where
    F: Fn(http::Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn invoke(&self, request: http::Request<Body>) -> BoxFuture<Result<Response, InvokeError>> {
        let future = (self.0)(request);
        Box::pin(future.map(|output| output.into_result().map_err(InvokeError::Failed)))
    }
}

/// Any `tower::Service` over `http::Request<Body>`: an axum `Router`, a `tower` stack. Each
/// request gets a clone; the original sits behind a lock, so services that are `Send` but not
/// `Sync` (tower's `BoxCloneService`) work too.
pub(crate) struct ServiceFunction<S>(pub(crate) std::sync::Mutex<S>);

impl<S, B> Invoke for ServiceFunction<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>> {
        InvokeStreaming::invoke(self, request.map(Body::from))
    }
}

impl<S, B> InvokeStreaming for ServiceFunction<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    fn invoke(&self, request: http::Request<Body>) -> BoxFuture<Result<Response, InvokeError>> {
        // A clone that panicked poisons the lock: the service cannot be used any more.
        let service = self.0.lock().map(|service| service.clone()).map_err(|_| ());
        Box::pin(async move {
            let mut service = service.map_err(|_| {
                InvokeError::Failed("the service panicked while being cloned".into())
            })?;
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|error| InvokeError::Failed(error.into()))?;
            match service.call(request).await {
                Ok(response) => Ok(response.into_response()),
                Err(error) => Err(InvokeError::Failed(error.into())),
            }
        })
    }
}
