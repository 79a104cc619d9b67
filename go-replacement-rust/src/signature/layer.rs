//! tower `Layer`s around registered functions of any signature: the function, its adapter
//! included, becomes a `tower::Service` that the layer wraps, and the wrapped service is
//! served like one registered with `.service`.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use tower_service::Service;

use super::http::ServiceFunction;
use super::{BoxFuture, Handler};
use crate::error::InvokeError;
use crate::{Body, Error, Response};

/// A registered function as a `tower::Service`: what a layer given to
/// [`Functions::layer`](crate::Functions::layer) wraps.
///
/// It answers every request with a response, never an error: a request the function's
/// signature refuses gets its 4xx, a function error its 500. For functions of every
/// signature but [`http_streaming`](crate::Functions::http_streaming) and
/// [`service_streaming`](crate::Functions::service_streaming), the body reaches it already
/// read; a layer that replaces the body (a decompression layer, say) has its body read here,
/// within the same limit.
#[derive(Clone)]
pub struct FunctionService {
    handler: Handler,
    body_limit: usize,
    body_idle_timeout: Duration,
}

impl fmt::Debug for FunctionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.handler {
            Handler::Buffered(_) => "buffered body",
            Handler::Streaming(_) => "streamed body",
        };
        f.debug_struct("FunctionService")
            .field("takes", &kind)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl FunctionService {
    pub(crate) fn new(handler: Handler, body_limit: usize, body_idle_timeout: Duration) -> Self {
        FunctionService {
            handler,
            body_limit,
            body_idle_timeout,
        }
    }
}

impl Service<http::Request<Body>> for FunctionService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let function = match &self.handler {
            Handler::Streaming(function) => function.invoke(request),
            Handler::Buffered(function) => {
                let (parts, body) = request.into_parts();
                match body.try_into_bytes() {
                    Ok(bytes) => function.invoke(http::Request::from_parts(parts, bytes)),
                    Err(body) => {
                        let function = Arc::clone(function);
                        let (limit, idle) = (self.body_limit, self.body_idle_timeout);
                        return Box::pin(async move {
                            let bytes = match crate::incoming::read(body, None, limit, idle).await {
                                Ok(bytes) => bytes,
                                Err(response) => return Ok(response),
                            };
                            let invoked = function.invoke(http::Request::from_parts(parts, bytes));
                            Ok(invoked.await.unwrap_or_else(InvokeError::into_response))
                        });
                    }
                }
            }
        };
        Box::pin(async move { Ok(function.await.unwrap_or_else(InvokeError::into_response)) })
    }
}

/// Wraps a function in a layer, keeping how it takes its body.
pub(crate) type Wrap = Arc<dyn Fn(FunctionService) -> Handler + Send + Sync>;

/// The wrapping for `layer`, applied when the server starts (the limits are known then).
pub(crate) fn wrap<L, B>(layer: L) -> Wrap
where
    L: tower_layer::Layer<FunctionService> + Send + Sync + 'static,
    L::Service: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    <L::Service as Service<http::Request<Body>>>::Future: Send + 'static,
    <L::Service as Service<http::Request<Body>>>::Error: Into<Error>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    Arc::new(move |inner: FunctionService| {
        let streams = matches!(inner.handler, Handler::Streaming(_));
        let wrapped = ServiceFunction(std::sync::Mutex::new(layer.layer(inner)));
        if streams {
            Handler::Streaming(Arc::new(wrapped))
        } else {
            Handler::Buffered(Arc::new(wrapped))
        }
    })
}
