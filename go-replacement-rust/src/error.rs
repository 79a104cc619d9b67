//! Every outcome of an invocation that is not the function's own response, and the one place
//! each becomes a response: requests refused before the function ran, function errors,
//! panics, deadlines and bodies that are too large or stall.
//!
//! Nothing here depends on the server or the signatures; they depend on this.

use std::fmt;
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};

use crate::{Body, Error, Response};

const CRASH_BODY: &str =
    "A panic occurred during user function execution. Please see logs for more details.\n";
const ERROR_BODY: &str =
    "An error occurred during user function execution. Please see logs for more details.\n";

/// The header Google's frameworks use to tell a function error from a crash.
const GOOGLE_STATUS: &str = "x-google-status";

/// An error that answers with its own status and message: what a function returns to refuse
/// a request (a 4xx, such as a poison Pub/Sub message that must not be retried, or invalid
/// input to a typed function) or to fail with another 5xx than 500.
///
/// The message is sent to the client, so it must not hold secrets. `X-Google-Status: error`
/// goes only with a 5xx, which is also the only kind logged as an error report; a 4xx is
/// logged as a warning. Returned through `?` or `.into()`, it may be wrapped: the first
/// `HttpError` in the error's chain of sources decides.
///
/// ```
/// use functions_framework::{Error, Functions, HttpError};
/// use functions_framework::http::StatusCode;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Order {
///     quantity: u32,
/// }
///
/// async fn order(order: Order) -> Result<u32, Error> {
///     if order.quantity == 0 {
///         return Err(HttpError::new(StatusCode::UNPROCESSABLE_ENTITY, "quantity must be positive").into());
///     }
///     Ok(order.quantity)
/// }
///
/// let app = Functions::new().typed("order", order);
/// # let _ = app;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    /// An error answered with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message it answers with.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

/// The first [`HttpError`] in `error` and its chain of sources.
fn http_error(error: &Error) -> Option<&HttpError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<HttpError>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// A request refused before the function ran: a client error, answered with its status and a
/// message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Rejection {
    /// A 400 whose message says what is wrong with the request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A refusal with another status.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// How an invocation failed, when it did not produce the function's response.
#[derive(Debug)]
pub(crate) enum InvokeError {
    /// The request was refused before the function ran.
    Rejected(Rejection),
    /// The function ran and returned an error.
    Failed(Error),
}

impl From<Rejection> for InvokeError {
    fn from(rejection: Rejection) -> Self {
        InvokeError::Rejected(rejection)
    }
}

impl InvokeError {
    /// The response, with the log entry that goes with it.
    pub(crate) fn into_response(self) -> Response {
        match self {
            InvokeError::Rejected(rejection) => rejected(&rejection),
            InvokeError::Failed(error) => function_error(&error),
        }
    }
}

fn text(status: StatusCode, message: impl Into<Body>) -> Response {
    let mut response = http::Response::new(message.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A response with a status and no body.
pub(crate) fn status_only(status: StatusCode) -> Response {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// 4xx with the rejection's message; the log says the function was not invoked.
pub(crate) fn rejected(rejection: &Rejection) -> Response {
    tracing::warn!(
        status = rejection.status.as_u16(),
        "request refused, function not invoked: {}",
        rejection.message
    );
    text(rejection.status, format!("{}\n", rejection.message))
}

/// A function's error: an [`HttpError`] answers with its status and message; any other is
/// 500, `X-Google-Status: error` and a generic body, with the error and its causes in the
/// log.
pub(crate) fn function_error(error: &Error) -> Response {
    let context = crate::Context::current();
    if let Some(http) = http_error(error) {
        if http.status.is_client_error() {
            tracing::warn!(
                status = http.status.as_u16(),
                "function refused the request: {}",
                http.message
            );
            return text(http.status, format!("{}\n", http.message));
        }
    }
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let function = match context.as_ref().and_then(crate::Context::function_name) {
        Some(name) => name.to_owned(),
        None => crate::log::service::function().to_owned(),
    };
    crate::log::report(
        &crate::log::ErrorReport {
            message: format!("function returned an error: {chain}"),
            function_name: Some(function),
            file_path: None,
            line_number: None,
        },
        context.as_ref(),
    );
    let mut response = match http_error(error) {
        // A status the function chose (5xx, or a 1xx-3xx it should not have put in an
        // error: still answered as it asked).
        Some(http) => text(http.status, format!("{}\n", http.message)),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, ERROR_BODY),
    };
    if response.status().is_server_error() {
        response
            .headers_mut()
            .insert(GOOGLE_STATUS, HeaderValue::from_static("error"));
    }
    response
}

/// 500, `X-Google-Status: crash` and a generic body: the panic itself is logged by the panic
/// hook, with its backtrace.
pub(crate) fn crash() -> Response {
    let mut response = text(StatusCode::INTERNAL_SERVER_ERROR, CRASH_BODY);
    response
        .headers_mut()
        .insert(GOOGLE_STATUS, HeaderValue::from_static("crash"));
    response
}

/// 504: the function ran past its deadline and was cancelled.
pub(crate) fn deadline_exceeded(timeout: Duration) -> Response {
    tracing::error!(
        timeout_secs = timeout.as_secs(),
        "function exceeded its deadline and was cancelled"
    );
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "Function execution exceeded the {}s deadline.\n",
            timeout.as_secs()
        ),
    )
}

/// 413; the rest of the body is not read, so the connection cannot be reused.
pub(crate) fn too_large(limit: usize) -> Response {
    let mut response = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body exceeds the limit of {limit} bytes.\n"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 408: nothing of the body arrived for `idle`; the connection is closed.
pub(crate) fn body_stalled(idle: Duration) -> Response {
    let mut response = text(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "The request body stalled: nothing arrived for {}s.\n",
            idle.as_secs()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(response: Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn function_errors_are_500_with_a_generic_body() {
        let error: Error = Box::new(std::io::Error::other("disk full"));
        let response = InvokeError::Failed(error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[GOOGLE_STATUS], "error");
        let text = body(response).await;
        assert!(!text.contains("disk full"), "{text}");
    }

    #[tokio::test]
    async fn rejections_carry_their_status_and_message() {
        let response =
            InvokeError::from(Rejection::new(StatusCode::METHOD_NOT_ALLOWED, "POST only"))
                .into_response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().get(GOOGLE_STATUS).is_none());
        assert_eq!(body(response).await, "POST only\n");
    }

    #[tokio::test]
    async fn an_http_error_answers_with_its_status_and_message() {
        #[derive(Debug)]
        struct Context(HttpError);
        impl fmt::Display for Context {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("while reading the order")
            }
        }
        impl std::error::Error for Context {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped: Error = Box::new(Context(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "quantity must be positive",
        )));
        let response = InvokeError::Failed(wrapped).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.headers().get(GOOGLE_STATUS).is_none());
        assert_eq!(body(response).await, "quantity must be positive\n");
        let unavailable: Error =
            Box::new(HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "try later"));
        let response = InvokeError::Failed(unavailable).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[GOOGLE_STATUS], "error");
        assert_eq!(body(response).await, "try later\n");
    }

    #[tokio::test]
    async fn crashes_and_limits() {
        let crash = crash();
        assert_eq!(crash.headers()[GOOGLE_STATUS], "crash");
        assert_eq!(body(crash).await, CRASH_BODY);
        let large = too_large(10);
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(large.headers()[header::CONNECTION], "close");
        let stalled = body_stalled(Duration::from_secs(3));
        assert_eq!(stalled.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(body(stalled).await.contains("3s"));
        let late = deadline_exceeded(Duration::from_secs(2));
        assert_eq!(late.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
