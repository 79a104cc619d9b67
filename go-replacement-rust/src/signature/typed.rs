//! Typed functions: JSON in, JSON out, decoded and encoded with serde.

use std::marker::PhantomData;

use bytes::Bytes;
use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::decode::{json_from_slice, json_from_value};
use super::{BoxFuture, Invoke, refused};
use crate::error::{InvokeError, Rejection};
use crate::{Error, IntoResponse, Json, Response};

/// An `async fn(In) -> Result<Out, E>`.
pub(crate) struct TypedFunction<F, In> {
    pub(crate) function: F,
    pub(crate) _input: PhantomData<fn(In)>,
}

/// Decodes the body; an empty body reads as JSON `null` (so `Option` and `()` inputs work).
fn decode<In: DeserializeOwned>(body: &[u8]) -> Result<In, Rejection> {
    const WHAT: &str = "invalid request body";
    let result = if body.iter().all(u8::is_ascii_whitespace) {
        json_from_value(WHAT, &serde_json::Value::Null)
    } else {
        json_from_slice(WHAT, body)
    };
    result.map_err(Rejection::bad_request)
}

impl<F, In, Out, Fut, E> Invoke for TypedFunction<F, In>
where
    F: Fn(In) -> Fut + Send + Sync + 'static,
    In: DeserializeOwned + Send + 'static,
    Out: Serialize,
    Fut: Future<Output = Result<Out, E>> + Send + 'static,
    E: Into<Error>,
{
    fn invoke(&self, request: http::Request<Bytes>) -> BoxFuture<Result<Response, InvokeError>> {
        match decode::<In>(request.body()) {
            Ok(input) => {
                let future = (self.function)(input);
                // `map`: see `CloudEventFunction`.
                Box::pin(future.map(|result| match result {
                    Ok(output) => Json(output).into_result().map_err(InvokeError::Failed),
                    Err(error) => Err(InvokeError::Failed(error.into())),
                }))
            }
            Err(rejection) => refused(rejection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct In {
        name: String,
        tags: Vec<u32>,
    }

    #[test]
    fn decodes_and_names_the_failing_field() {
        assert_eq!(
            decode::<In>(br#"{"name":"a","tags":[1,2]}"#).ok(),
            Some(In {
                name: "a".into(),
                tags: vec![1, 2]
            })
        );
        for (body, names) in [
            (&br#"{"name":"a","tags":[1,"x"]}"#[..], "`tags[1]`"),
            (br#"{"tags":[]}"#, "name"),
            (br#"{"name":"a","tags":[1"#, "EOF"),
            (b"", "null"),
        ] {
            let rejection = decode::<In>(body).expect_err("rejected");
            assert_eq!(rejection.status, http::StatusCode::BAD_REQUEST);
            assert!(rejection.message.contains(names), "{}", rejection.message);
        }
        assert_eq!(decode::<Option<In>>(b"  ").ok(), Some(None));
    }
}
