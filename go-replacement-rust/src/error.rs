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

/// 500, `X-Google-Status: error`, a generic body, and the error with its causes in the log.
pub(crate) fn function_error(error: &Error) -> Response {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::log::report(
        &crate::log::ErrorReport {
            message: format!("function returned an error: {chain}"),
            function_name: Some(crate::log::service::function().to_owned()),
            file_path: None,
            line_number: None,
        },
        crate::Context::current().as_ref(),
    );
    let mut response = text(StatusCode::INTERNAL_SERVER_ERROR, ERROR_BODY);
    response
        .headers_mut()
        .insert(GOOGLE_STATUS, HeaderValue::from_static("error"));
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
