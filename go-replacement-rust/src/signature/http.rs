//! HTTP functions: a plain `async fn(Request) -> impl IntoResponse`, or any `tower::Service`.

use std::future::poll_fn;

use bytes::Bytes;
use tower_service::Service;

use crate::server::{BoxFuture, Invoke, Rejection};
use crate::{Body, BoxError, IntoResponse, Request, Response};

/// An `async fn(Request) -> impl IntoResponse`.
pub(crate) struct HttpFunction<F>(pub(crate) F);

impl<F, Fut, R> Invoke for HttpFunction<F>
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, Rejection>> {
        let future = (self.0)(request);
        Box::pin(async move { Ok(future.await.into_response()) })
    }
}

/// Any `tower::Service` over `http::Request<Body>`: an axum `Router`, a `tower` stack.
pub(crate) struct ServiceFunction<S>(pub(crate) S);

impl<S, B> Invoke for ServiceFunction<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, Rejection>> {
        let mut service = self.0.clone();
        Box::pin(async move {
            if let Err(error) = poll_fn(|cx| service.poll_ready(cx)).await {
                return Ok(crate::server::function_error(error.into()));
            }
            let response = service.call(request.map(Body::from)).await;
            Ok(match response {
                Ok(response) => response.into_response(),
                Err(error) => crate::server::function_error(error.into()),
            })
        })
    }
}
