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
    /// The HTTP status answered (0 when the connection was dropped without an answer).
    pub status: u16,
    /// The `errcode` of a JSON answer (0 on success), `None` for a file, a status page or no
    /// answer.
    pub errcode: Option<i64>,
    /// The `Content-Length` of the answer, if it had one.
    pub response_len: Option<u64>,
    /// Set when the emulator made this request itself: a Range GET of the URL an
    /// `upload_by_url` job fetches, for that job id. `path` is then the URL without its query
    /// (`http://127.0.0.1:9000/bucket/key`), `query` its query (a presigned URL's signature
    /// and session token masked whenever shown), `status` the fetched server's answer.
    pub fetched_for_job: Option<String>,
}

impl RecordedRequest {
    /// The first value of a query parameter, decoded as the emulator decodes it
    /// (`application/x-www-form-urlencoded`: `%XX` and `+` as a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::query::param(self.query.as_deref().unwrap_or(""), name)
    }

    /// The request's `Range` header, if any (lossily decoded).
    pub fn range(&self) -> Option<String> {
        self.headers
            .get(http::header::RANGE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The raw query with the values of `access_token`, `corpsecret`, `X-Amz-Signature` and
    /// `X-Amz-Security-Token` replaced by `***`:
    /// the only form in which the emulator ever shows a query (admin API, `mock -v`).
    pub fn masked_query(&self) -> Option<String> {
        self.query.as_deref().map(crate::query::mask_secrets)
    }

    /// One line for a log: method, path, masked query, status, errcode, request and answer
    /// body bytes, Range. No token or secret.
    ///
    /// `GET /cgi-bin/media/get?access_token=***&media_id=3a 206 errcode=- req=0 resp=100 range=bytes=0-99`
    pub fn summary(&self) -> String {
        let query = self
            .masked_query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let errcode = self
            .errcode
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let resp = self
            .response_len
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let range = self.range().unwrap_or_else(|| "-".to_owned());
        format!(
            "{} {}{query} {} errcode={errcode} req={} resp={resp} range={range}",
            self.method, self.path, self.status, self.body_len
        )
    }

    /// The JSON object `GET /__mock/requests` shows: `method`, `path`, `query` (masked),
    /// `status`, `errcode` (or null), `body_len`, `response_len` (or null), `range` (or null),
    /// `fetched_for_job` (the job id for a fetch the emulator made, else null).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method.as_str(),
            "path": self.path,
            "query": self.masked_query(),
            "status": self.status,
            "errcode": self.errcode,
            "body_len": self.body_len,
            "response_len": self.response_len,
            "range": self.range(),
            "fetched_for_job": self.fetched_for_job,
        })
    }
}
