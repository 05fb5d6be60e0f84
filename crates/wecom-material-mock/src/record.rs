//! What the emulator saw, for assertions.

use http::{HeaderMap, Method};

use crate::fault::Endpoint;

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The endpoint the path names (`None` for an unknown path, answered 404).
    pub endpoint: Option<Endpoint>,
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (still percent-encoded), if any.
    pub query: Option<String>,
    /// The request headers.
    pub headers: HeaderMap,
    /// How many body bytes the emulator read. Handlers read the whole body except when a
    /// fault dropped the connection first.
    pub body_len: u64,
    /// MD5 of the bytes read, 32 lower-case hex digits.
    pub body_md5: String,
}

impl RecordedRequest {
    /// The first value of a query parameter, decoded as the emulator decodes it
    /// (`application/x-www-form-urlencoded`: `%XX` and `+` as a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::query::param(self.query.as_deref().unwrap_or(""), name)
    }
}
