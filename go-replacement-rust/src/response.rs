//! What a function may return, and how it becomes the response: [`IntoResponse`] and
//! [`Json`].

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::{Body, Error, Response};

/// Anything a function may return: it becomes the HTTP response.
///
/// Implemented for `String` and `&'static str` (`text/plain`), `Vec<u8>` and [`Bytes`]
/// (`application/octet-stream`), `()` (empty 200), [`StatusCode`], `(StatusCode, T)`,
/// [`Json`], any `http::Response<B>`, and `Result<T, E>` for any error `E` that converts
/// into a boxed error: an `Err` answers 500 with `X-Google-Status: error` and the error
/// goes to the log, never to the client.
///
/// ```
/// use functions_framework::{IntoResponse, Request};
/// use http::StatusCode;
///
/// async fn teapot(_req: Request) -> impl IntoResponse {
///     (StatusCode::IM_A_TEAPOT, "short and stout")
/// }
/// # let _ = teapot;
/// ```
pub trait IntoResponse {
    /// Converts `self` into a response.
    fn into_response(self) -> Response;

    /// The response, or the error a function returned: how the framework reads a function's
    /// result, so that an `Err` is a failed invocation rather than a response built early.
    #[doc(hidden)]
    fn into_result(self) -> Result<Response, Error>
    where
        Self: Sized,
    {
        Ok(self.into_response())
    }
}

fn with_content_type(body: Body, content_type: HeaderValue) -> Response {
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

// Constants, so that the values are checked at compile time rather than on every response.
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl<B> IntoResponse for http::Response<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    fn into_response(self) -> Response {
        self.map(Body::new)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), TEXT)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_content_type(Body::from(self), OCTETS)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        http::Response::new(Body::empty())
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = self;
        response
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut response = self.1.into_response();
        *response.status_mut() = self.0;
        response
    }
}

impl<T, E> IntoResponse for Result<T, E>
where
    T: IntoResponse,
    E: Into<Error>,
{
    fn into_response(self) -> Response {
        match self.into_result() {
            Ok(response) => response,
            Err(error) => crate::error::function_error(&error),
        }
    }

    fn into_result(self) -> Result<Response, Error> {
        match self {
            Ok(value) => value.into_result(),
            Err(error) => Err(error.into()),
        }
    }
}

/// A JSON response: serialises `T` with `Content-Type: application/json`.
///
/// ```
/// use functions_framework::{Json, Request};
///
/// async fn hello(_req: Request) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "hello": "world" }))
/// }
/// # let _ = hello;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match self.into_result() {
            Ok(response) => response,
            Err(error) => crate::error::function_error(&error),
        }
    }

    fn into_result(self) -> Result<Response, Error> {
        let bytes = serde_json::to_vec(&self.0)?;
        Ok(with_content_type(Body::from(bytes), JSON))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(response: Response) -> Bytes {
        match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => panic!("body failed: {error}"),
        }
    }

    #[tokio::test]
    async fn strings_are_plain_text() {
        let response = "hi".into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], TEXT);
        assert_eq!(collect(response).await, "hi");
    }

    #[tokio::test]
    async fn status_tuple_keeps_body() {
        let response = (StatusCode::CREATED, String::from("made")).into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(collect(response).await, "made");
    }

    #[test]
    fn an_err_is_a_failed_invocation_not_a_response() {
        let result: Result<&'static str, std::io::Error> = Err(std::io::Error::other("disk full"));
        let error = result.into_result().expect_err("a failure");
        assert_eq!(error.to_string(), "disk full");
        let ok: Result<&'static str, std::io::Error> = Ok("fine");
        assert!(ok.into_result().is_ok());
    }

    #[tokio::test]
    async fn error_is_500_with_google_status() {
        let result: Result<&'static str, std::io::Error> = Err(std::io::Error::other("disk full"));
        let response = result.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-google-status"], "error");
        let body = collect(response).await;
        assert!(!String::from_utf8_lossy(&body).contains("disk full"));
    }

    #[tokio::test]
    async fn json_sets_content_type() {
        let response = Json(serde_json::json!({"a": 1})).into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(collect(response).await, r#"{"a":1}"#);
    }
}
