//! Proto3 JSON `bytes`: a base64 string, in the standard or the URL-safe alphabet, padded or
//! not, as the mapping allows.
//!
//! The generated code reads `bytes` fields through [`BytesDeserialize`] rather than pbjson's
//! own: a Pub/Sub message's data is most of its event, and this reads it at a fraction of the
//! cost. It asks for the string as bytes (serde_json then finds its end with `memchr` and
//! skips the UTF-8 check, which the base64 alphabet makes moot) and decodes it with SIMD.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A `bytes` field's value, decoded from base64.
pub(crate) struct BytesDeserialize<T>(pub(crate) T);

impl<'de, T: From<Vec<u8>>> Deserialize<'de> for BytesDeserialize<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_bytes(Base64Visitor)
            .map(|bytes| BytesDeserialize(bytes.into()))
    }
}

struct Base64Visitor;

impl Visitor<'_> for Base64Visitor {
    type Value = Vec<u8>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a base64 string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        self.visit_bytes(text.as_bytes())
    }

    fn visit_bytes<E: de::Error>(self, text: &[u8]) -> Result<Vec<u8>, E> {
        decode(text).ok_or_else(|| {
            E::custom(format_args!(
                "invalid base64 ({} characters): expected the standard or the URL-safe \
                 alphabet, padded or not",
                text.len()
            ))
        })
    }
}

/// Decodes base64 in either alphabet; `None` when it is neither.
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    // Padding is optional: a string of whole quads decodes the same with or without it.
    let (standard, url_safe) = if text.len() % 4 == 0 {
        (base64_simd::STANDARD, base64_simd::URL_SAFE)
    } else {
        (base64_simd::STANDARD_NO_PAD, base64_simd::URL_SAFE_NO_PAD)
    };
    standard
        .decode_to_vec(text)
        .or_else(|_| url_safe.decode_to_vec(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::from_str::<BytesDeserialize<Vec<u8>>>(json).map(|bytes| bytes.0)
    }

    #[test]
    fn every_alphabet_and_padding() {
        // 0xfb 0xff 0xbf encodes with both alphabet-specific characters.
        let raw = b"\xfb\xff\xbfhello, world\xfe";
        for encoded in [
            "+/+/aGVsbG8sIHdvcmxk/g==",
            "+/+/aGVsbG8sIHdvcmxk/g",
            "-_-_aGVsbG8sIHdvcmxk_g==",
            "-_-_aGVsbG8sIHdvcmxk_g",
        ] {
            assert_eq!(
                read(&format!("\"{encoded}\"")).expect("decodes"),
                raw,
                "{encoded}"
            );
        }
        assert_eq!(read("\"\"").expect("decodes"), b"");
        assert_eq!(read("\"QQ\"").expect("decodes"), b"A");
        assert_eq!(read("\"QUI=\"").expect("decodes"), b"AB");
    }

    #[test]
    fn json_escapes_are_undone_first() {
        // Some encoders escape `/` in JSON strings.
        assert_eq!(read(r#""\/w==""#).expect("decodes"), [0xff]);
        assert_eq!(read(r#""\u0051Q==""#).expect("decodes"), b"A");
    }

    #[test]
    fn from_a_json_value_too() {
        let value = serde_json::json!("aGk=");
        let bytes = BytesDeserialize::<Vec<u8>>::deserialize(&value)
            .expect("decodes")
            .0;
        assert_eq!(bytes, b"hi");
    }

    #[test]
    fn refuses_what_is_not_base64() {
        for json in [
            r#""a""#,
            r#""QQ=""#,
            r#""Q===""#,
            r#""aGk=aGk=""#,
            r#""aG k=""#,
            r#""+-==""#,
            "\"\u{e9}\u{e9}\u{e9}\u{e9}\"",
            "\"aGk\u{0}\"",
            "[104, 105]",
            "12",
            "null",
        ] {
            let error = read(json).expect_err(json);
            assert!(error.to_string().contains("base64"), "{json}: {error}");
        }
    }
}
