//! What functions read off a request beyond `http::Request` itself: query parameters,
//! percent-decoded.

use std::borrow::Cow;

/// Conveniences on any `http::Request`, such as the [`Request`](crate::Request) an HTTP
/// function receives.
///
/// ```
/// use functions_framework::{Request, RequestExt};
///
/// let req: Request = functions_framework::http::Request::get("/?name=Ada%20L&lang=en")
///     .body(Default::default())
///     .expect("request");
/// assert_eq!(req.query_param("name").as_deref(), Some("Ada L"));
/// assert_eq!(req.query_param("missing"), None);
/// assert_eq!(req.query_pairs().count(), 2);
/// ```
pub trait RequestExt {
    /// The first value of query parameter `name`, percent-decoded (`+` is a space), as HTML
    /// forms and every Functions Framework read it.
    fn query_param(&self, name: &str) -> Option<Cow<'_, str>>;

    /// Every query parameter in order, percent-decoded.
    fn query_pairs(&self) -> form_urlencoded::Parse<'_>;
}

impl<B> RequestExt for http::Request<B> {
    fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    fn query_pairs(&self) -> form_urlencoded::Parse<'_> {
        form_urlencoded::parse(self.uri().query().unwrap_or_default().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> http::Request<()> {
        http::Request::get(uri).body(()).expect("request")
    }

    #[test]
    fn parameters_are_percent_decoded() {
        let req = request("/path?name=Ada%20L&x=1&name=second&plus=a+b&utf=%C3%A9");
        assert_eq!(req.query_param("name").as_deref(), Some("Ada L"));
        assert_eq!(req.query_param("plus").as_deref(), Some("a b"));
        assert_eq!(req.query_param("utf").as_deref(), Some("é"));
        assert_eq!(req.query_pairs().count(), 5);
        assert_eq!(request("/").query_param("name"), None);
        // Invalid escapes are kept as they are, never an error.
        assert_eq!(request("/?q=%zz").query_param("q").as_deref(), Some("%zz"));
    }
}
