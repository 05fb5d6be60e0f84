//! The base URL of the WeCom API and building request URIs from it.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Invalid;

/// The production WeCom API host.
pub const DEFAULT_BASE_URL: &str = "https://qyapi.weixin.qq.com";

/// Characters left as they are in query values: RFC 3986 unreserved. Everything else —
/// notably `+`, `/`, `=`, `&` that media ids and secrets may hold — is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where requests go: scheme, host, optional port and path prefix, without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parses `http://` or `https://` URLs. Plain `http` is accepted because a caller who
    /// writes it has chosen it (the emulator, a private deployment); the default is HTTPS.
    ///
    /// A path is **kept** as a prefix of every request path (`https://proxy/wecom` sends
    /// gettoken to `https://proxy/wecom/cgi-bin/gettoken`), for a reverse proxy that serves
    /// the API under a path; trailing slashes are dropped. A query (`?`), a fragment (`#`) or
    /// user credentials (`user@`) are refused: each would be silently lost or, worse, swallow
    /// the request path that follows.
    pub fn parse(url: &str) -> Result<Self, Invalid> {
        let bad = |reason: &str| Invalid::BadBaseUrl {
            reason: reason.to_owned(),
        };
        let trimmed = url.trim().trim_end_matches('/');
        if trimmed.contains('#') {
            return Err(bad("a base URL has no fragment (#)"));
        }
        if trimmed.contains('?') {
            return Err(bad("a base URL has no query"));
        }
        let uri: http::Uri = trimmed.parse().map_err(|_| bad("not a URI"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(bad("the scheme must be http or https")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(bad("a base URL holds no user name or password"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether requests go over TLS.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// Builds `base + path + ?query` with every query value percent-encoded.
    pub fn uri(&self, path: &str, query: &[(&str, &str)]) -> http::Uri {
        let mut s = String::with_capacity(self.0.len() + path.len() + 64);
        s.push_str(&self.0);
        s.push_str(path);
        for (i, (key, value)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(key);
            s.push('=');
            s.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        // The base was validated and every value is encoded: this parses unless the URI is
        // longer than `http` carries (64 KiB). The ids and tokens that go into a query are
        // bounded far below that where they enter; should one slip through, the request goes
        // out with an empty URI, which every HTTP stack refuses before sending (a typed
        // transport error, never a panic).
        s.parse().unwrap_or_default()
    }
}

/// A request from parts that are valid by construction (so no builder can fail): `headers`
/// whose value is not a valid header value are left out.
pub(crate) fn request(
    method: http::Method,
    uri: http::Uri,
    headers: &[(http::header::HeaderName, String)],
    body: crate::body::Body,
) -> http::Request<crate::body::Body> {
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::try_from(value.as_str()) {
            request.headers_mut().insert(name, value);
        }
    }
    request
}

impl Default for BaseUrl {
    fn default() -> Self {
        Self(DEFAULT_BASE_URL.to_owned())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A base URL shows as the origin requests go to, without the trailing slash given.
    #[test]
    fn a_base_url_shows_as_its_origin() {
        let base: BaseUrl = "http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!(base.to_string(), "http://127.0.0.1:8080");
        assert_eq!(format!("{base:?}"), "BaseUrl(http://127.0.0.1:8080)");
    }

    #[test]
    fn encodes_reserved_characters_in_values() {
        let base = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        let uri = base.uri(
            "/cgi-bin/media/get",
            &[("access_token", "a+b/c=="), ("media_id", "x&y z")],
        );
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:8080/cgi-bin/media/get?access_token=a%2Bb%2Fc%3D%3D&media_id=x%26y%20z"
        );
    }

    #[test]
    fn rejects_bad_bases() {
        for bad in [
            "ftp://h",
            "h",
            "https://",
            "https://h?x=1",
            "https://h/?",
            "https://h#frag",
            "https://h/prefix#x",
            "https://h/#",
            "https://u:p@h",
        ] {
            assert!(
                matches!(BaseUrl::parse(bad), Err(Invalid::BadBaseUrl { .. })),
                "{bad}"
            );
        }
        assert!(BaseUrl::default().is_https());
    }

    #[test]
    fn a_path_prefix_is_kept_in_every_request() {
        let base = BaseUrl::parse("https://proxy.example:8443/wecom/api//").unwrap();
        assert_eq!(base.as_str(), "https://proxy.example:8443/wecom/api");
        assert_eq!(
            base.uri("/cgi-bin/gettoken", &[("corpid", "ww")])
                .to_string(),
            "https://proxy.example:8443/wecom/api/cgi-bin/gettoken?corpid=ww"
        );
    }

    /// A value too long for a URI (a 10 MB token from a tampered store, a 70,000-character
    /// media id) panicked every request: the URI is empty instead, which every HTTP stack
    /// refuses before sending.
    #[test]
    fn a_query_too_long_for_a_uri_is_an_empty_uri_not_a_panic() {
        let base = BaseUrl::parse("http://127.0.0.1:1").unwrap();
        let long = "a".repeat(70_000);
        let uri = base.uri("/cgi-bin/media/get", &[("media_id", &long)]);
        assert_eq!(uri, http::Uri::default());
        let fits = base.uri("/cgi-bin/media/get", &[("media_id", &long[..1000])]);
        assert_eq!(fits.path(), "/cgi-bin/media/get");
    }
}
