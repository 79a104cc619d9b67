//! Compressed request bodies: `Content-Encoding: gzip` (or `deflate`) is undone before the
//! function sees the body, as Node.js's body parser does, within the body limit after
//! decompression, so that a small bomb cannot grow past it.

use std::io::Read;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::Response;
use crate::error::{self, Rejection};

// The error is the response to send, made once on a rare path: boxing it buys nothing.
#[allow(clippy::result_large_err)]
/// The body as the function should see it: decompressed, with `Content-Encoding` removed and
/// `Content-Length` set to what it now is. Bodies without an encoding pass untouched.
pub(crate) fn decode(
    parts: &mut http::request::Parts,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, Response> {
    let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let encoding = encoding
        .to_str()
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let decoded = match encoding.as_str() {
        "identity" | "" => body,
        "gzip" | "x-gzip" => inflate(flate2::read::GzDecoder::new(&body[..]), limit, "gzip")?,
        "deflate" => inflate(flate2::read::ZlibDecoder::new(&body[..]), limit, "deflate")?,
        other => {
            return Err(error::rejected(&Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Encoding {other:?}: send the body uncompressed, or \
                     with gzip or deflate"
                ),
            )));
        }
    };
    parts.headers.remove(header::CONTENT_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(decoded.len()));
    Ok(decoded)
}

#[allow(clippy::result_large_err)]
/// Reads at most `limit + 1` decompressed bytes: one more than the limit means too large.
fn inflate(decoder: impl Read, limit: usize, name: &str) -> Result<Bytes, Response> {
    let mut out = Vec::new();
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(bound).read_to_end(&mut out).map_err(|e| {
        error::rejected(&Rejection::bad_request(format!(
            "the {name} request body cannot be decompressed: {e}"
        )))
    })?;
    if out.len() > limit {
        return Err(error::too_large(limit));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn parts(encoding: Option<&str>) -> http::request::Parts {
        let mut request = http::Request::post("/");
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).expect("write");
        Bytes::from(encoder.finish().expect("finish"))
    }

    #[test]
    fn gzip_and_deflate_are_undone() {
        let mut p = parts(Some("gzip"));
        let body = decode(&mut p, gzip(b"hello, compressed"), 100).expect("decoded");
        assert_eq!(body, "hello, compressed");
        assert!(p.headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(p.headers[header::CONTENT_LENGTH], "17");

        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"deflated").expect("write");
        let mut p = parts(Some("Deflate"));
        let body = decode(&mut p, Bytes::from(encoder.finish().expect("finish")), 100);
        assert_eq!(body.ok().as_deref(), Some(&b"deflated"[..]));

        let mut p = parts(None);
        assert_eq!(
            decode(&mut p, Bytes::from_static(b"as is"), 10)
                .ok()
                .as_deref(),
            Some(&b"as is"[..])
        );
    }

    #[test]
    fn bombs_corrupt_bodies_and_unknown_encodings_are_refused() {
        // 10 MiB of zeros compress to about 10 KiB; the limit counts what they decompress to.
        let bomb = gzip(&vec![0; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let refused = decode(&mut parts(Some("gzip")), bomb, 1024 * 1024).expect_err("too large");
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let corrupt = decode(
            &mut parts(Some("gzip")),
            Bytes::from_static(b"not gzip"),
            100,
        )
        .expect_err("corrupt");
        assert_eq!(corrupt.status(), StatusCode::BAD_REQUEST);
        let unknown =
            decode(&mut parts(Some("br")), Bytes::from_static(b"x"), 100).expect_err("unknown");
        assert_eq!(unknown.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
