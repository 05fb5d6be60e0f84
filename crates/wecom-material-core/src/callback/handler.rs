//! A framework-neutral callback endpoint, and the request WeCom would send to one.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use super::cipher::{decrypt, encrypt};
use super::config::CallbackConfig;
use super::error::CallbackError;
use super::event::{CallbackEvent, envelope_xml, parse_envelope, parse_event};
use super::signature::{signature, verify_signature};

/// The largest delivery body [`CallbackHandler`] accepts by default (64 KiB; a job-finished
/// envelope is well under 1 KiB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Characters left as they are in query values we build (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What to answer a callback request with, and the event it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReply {
    /// The HTTP status (200).
    pub status: StatusCode,
    /// The body: the decrypted `echostr` for a URL check, empty for an event delivery.
    pub body: Bytes,
    /// The event of a delivery; `None` for a URL check.
    pub event: Option<CallbackEvent>,
}

impl CallbackReply {
    /// The reply as an HTTP response (`text/plain` with its `Content-Length`).
    pub fn to_response(&self) -> Response<Bytes> {
        let mut response = Response::new(self.body.clone());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CONTENT_LENGTH, self.body.len().into());
        response
    }
}

/// Answers WeCom's callback requests for one app: URL checks (GET) and event deliveries
/// (POST). See the [module docs](super) for the flow.
#[derive(Debug, Clone)]
pub struct CallbackHandler {
    config: CallbackConfig,
    max_body: usize,
}

impl CallbackHandler {
    /// A handler with the [`DEFAULT_MAX_BODY`] limit.
    pub fn new(config: CallbackConfig) -> Self {
        Self {
            config,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Sets the largest body accepted.
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &CallbackConfig {
        &self.config
    }

    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Handles one request, given its method, its raw query string (with or without the
    /// leading `?`) and its body.
    ///
    /// On error, answer with [`CallbackError::status`].
    pub fn handle(
        &self,
        method: &Method,
        query: &str,
        body: &[u8],
    ) -> Result<CallbackReply, CallbackError> {
        if *method == Method::GET {
            self.verify_url(query)
        } else if *method == Method::POST {
            self.receive_event(query, body)
        } else {
            Err(CallbackError::MethodNotAllowed)
        }
    }

    /// [`CallbackHandler::handle`] for an `http::Request`.
    pub fn handle_request<B: AsRef<[u8]>>(
        &self,
        request: &Request<B>,
    ) -> Result<CallbackReply, CallbackError> {
        self.handle(
            request.method(),
            request.uri().query().unwrap_or(""),
            request.body().as_ref(),
        )
    }

    fn verify_url(&self, query: &str) -> Result<CallbackReply, CallbackError> {
        let params = QueryParams::parse(query);
        let msg_signature = params.require("msg_signature")?;
        let timestamp = params.require("timestamp")?;
        let nonce = params.require("nonce")?;
        let echostr = params.require("echostr")?;
        let token = self.config.token.expose();
        verify_signature(token, &timestamp, &nonce, &echostr, &msg_signature)?;
        let plain = decrypt(&self.config.aes_key, &echostr, &self.config.receive_id)?;
        Ok(CallbackReply {
            status: StatusCode::OK,
            body: Bytes::from(plain),
            event: None,
        })
    }

    fn receive_event(&self, query: &str, body: &[u8]) -> Result<CallbackReply, CallbackError> {
        if body.len() > self.max_body {
            return Err(CallbackError::BodyTooLarge {
                len: body.len(),
                max: self.max_body,
            });
        }
        let params = QueryParams::parse(query);
        let msg_signature = params.require("msg_signature")?;
        let timestamp = params.require("timestamp")?;
        let nonce = params.require("nonce")?;
        let envelope = parse_envelope(body)?;
        let token = self.config.token.expose();
        verify_signature(token, &timestamp, &nonce, &envelope.encrypt, &msg_signature)?;
        let xml = decrypt(
            &self.config.aes_key,
            &envelope.encrypt,
            &self.config.receive_id,
        )?;
        let event = parse_event(&xml)?;
        Ok(CallbackReply {
            status: StatusCode::OK,
            body: Bytes::new(),
            event: Some(event),
        })
    }
}

/// Query parameters, each name and value percent-decoded once (`+` stays `+`: WeCom sends
/// base64 with `%2B`, and a form-style `+`→space would break it). The first of a repeated
/// name wins.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_once(name), decode_once(value))
            })
            .collect();
        Self(pairs)
    }

    fn require(&self, name: &'static str) -> Result<String, CallbackError> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or(CallbackError::MissingParameter(name))
    }
}

fn decode_once(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Builds the POST that WeCom sends to deliver `event_xml` to the callback at `url_base`:
/// the message encrypted with `random16`, wrapped in the envelope (`ToUserName` = the
/// receive id, no `AgentID`), signed with `timestamp` and `nonce`, which are added to the
/// query (after any query `url_base` already has).
///
/// An `event_xml` longer than `u32::MAX` bytes is [`CallbackError::BodyTooLarge`] (see
/// [`encrypt`]).
pub fn build_event_request(
    config: &CallbackConfig,
    url_base: &Uri,
    timestamp: &str,
    nonce: &str,
    random16: [u8; 16],
    event_xml: &str,
) -> Result<Request<Bytes>, CallbackError> {
    let encrypted = encrypt(
        &config.aes_key,
        random16,
        event_xml.as_bytes(),
        &config.receive_id,
    )?;
    let msg_signature = signature(config.token.expose(), timestamp, nonce, &encrypted);
    let body = Bytes::from(envelope_xml(&config.receive_id, None, &encrypted));

    let base = url_base.to_string();
    let separator = match url_base.query() {
        None => "?",
        Some("") => "",
        Some(_) => "&",
    };
    let uri = format!(
        "{base}{separator}msg_signature={msg_signature}&timestamp={}&nonce={}",
        utf8_percent_encode(timestamp, QUERY_VALUE),
        utf8_percent_encode(nonce, QUERY_VALUE),
    );
    // A valid URI followed by a query of percent-encoded ASCII is a valid URI; should that
    // ever fail, fall back to the base so that the request still goes somewhere visible.
    let uri = uri.parse::<Uri>().unwrap_or_else(|_| url_base.clone());

    let mut request = Request::new(body.clone());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/xml"),
    );
    headers.insert(header::CONTENT_LENGTH, body.len().into());
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::JobId;
    use proptest::prelude::*;

    const TOKEN: &str = "QDG6eK";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const RID: &str = "wx5823bf96d3bd56c7";
    const ECHOSTR: &str =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    const EVENT_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

    fn handler() -> CallbackHandler {
        CallbackHandler::new(CallbackConfig::new(TOKEN, KEY, RID).unwrap())
    }

    fn enc(value: &str) -> String {
        utf8_percent_encode(value, QUERY_VALUE).to_string()
    }

    fn url_check_query() -> String {
        format!(
            "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr={}",
            enc(ECHOSTR)
        )
    }

    const EVENT_QUERY: &str = "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149";

    fn event_body() -> String {
        envelope_xml(RID, Some("218"), EVENT_ENCRYPT)
    }

    #[test]
    fn official_url_check_replies_the_plaintext_alone() {
        let reply = handler()
            .handle(&Method::GET, &format!("?{}", url_check_query()), b"")
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"1616140317555161061");
        assert_eq!(reply.event, None);
        let response = reply.to_response();
        assert_eq!(response.body().as_ref(), b"1616140317555161061");
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "19");
    }

    #[test]
    fn official_event_vector() {
        assert_eq!(
            signature(TOKEN, "1409659813", "1372623149", EVENT_ENCRYPT),
            "477715d11cdb4164915debcba66cb864d751f3e6"
        );
        let key = crate::callback::EncodingAesKey::parse(KEY).unwrap();
        let xml = decrypt(&key, EVENT_ENCRYPT, RID).unwrap();
        assert_eq!(xml.len(), 284);
        let text = std::str::from_utf8(&xml).unwrap();
        assert!(
            text.contains("<Content><![CDATA[hello]]></Content>"),
            "{text}"
        );

        let reply = handler()
            .handle(&Method::POST, EVENT_QUERY, event_body().as_bytes())
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.is_empty());
        match reply.event.unwrap() {
            CallbackEvent::Other {
                msg_type, raw_xml, ..
            } => {
                assert_eq!(msg_type, "text");
                assert_eq!(raw_xml.as_bytes(), &xml[..]);
                let children = crate::callback::xml::root_children(&raw_xml).unwrap();
                assert_eq!(
                    crate::callback::xml::field(&children, "ToUserName"),
                    Some(RID)
                );
                assert_eq!(
                    crate::callback::xml::field(&children, "Content"),
                    Some("hello")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_signatures_are_refused() {
        let query = url_check_query().replace("5c45ff5e", "5c45ff5f");
        let err = handler().handle(&Method::GET, &query, b"").unwrap_err();
        assert_eq!(err, CallbackError::BadSignature);
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

        // Same query, another body: the signature covers Encrypt.
        let other = envelope_xml(RID, None, ECHOSTR);
        assert_eq!(
            handler().handle(&Method::POST, EVENT_QUERY, other.as_bytes()),
            Err(CallbackError::BadSignature)
        );
        // Wrong token.
        let wrong = CallbackHandler::new(CallbackConfig::new("other", KEY, RID).unwrap());
        assert_eq!(
            wrong.handle(&Method::POST, EVENT_QUERY, event_body().as_bytes()),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn missing_parameters_are_named() {
        let full = url_check_query();
        for name in ["msg_signature", "timestamp", "nonce", "echostr"] {
            let query: Vec<&str> = full
                .split('&')
                .filter(|p| !p.starts_with(&format!("{name}=")))
                .collect();
            assert_eq!(
                handler().handle(&Method::GET, &query.join("&"), b""),
                Err(CallbackError::MissingParameter(name))
            );
        }
        assert_eq!(
            handler().handle(&Method::POST, "", event_body().as_bytes()),
            Err(CallbackError::MissingParameter("msg_signature"))
        );
        assert_eq!(
            handler().handle(
                &Method::POST,
                EVENT_QUERY,
                b"<xml><ToUserName>x</ToUserName></xml>"
            ),
            Err(CallbackError::MissingParameter("Encrypt"))
        );
    }

    #[test]
    fn wrong_receive_id_malformed_body_oversize_and_method() {
        let other = CallbackHandler::new(CallbackConfig::new(TOKEN, KEY, "ww_other").unwrap());
        assert_eq!(
            other.handle(&Method::POST, EVENT_QUERY, event_body().as_bytes()),
            Err(CallbackError::WrongReceiveId {
                expected: "ww_other".into(),
                found: RID.into()
            })
        );
        assert!(matches!(
            handler().handle(&Method::POST, EVENT_QUERY, b"<xml><Encrypt>abc</xml>"),
            Err(CallbackError::MalformedXml(_))
        ));
        let big = vec![b' '; DEFAULT_MAX_BODY + 1];
        let err = handler()
            .handle(&Method::POST, EVENT_QUERY, &big)
            .unwrap_err();
        assert_eq!(
            err,
            CallbackError::BodyTooLarge {
                len: DEFAULT_MAX_BODY + 1,
                max: DEFAULT_MAX_BODY
            }
        );
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // The limit is 64 KiB, inclusive: a body of exactly the limit is read.
        assert_eq!(
            (handler().max_body(), DEFAULT_MAX_BODY),
            (64 << 10, 64 << 10)
        );
        let exact = event_body().len();
        let at_limit = handler().with_max_body(exact);
        assert_eq!(at_limit.max_body(), exact);
        assert!(
            at_limit
                .handle(&Method::POST, EVENT_QUERY, event_body().as_bytes())
                .is_ok()
        );
        let small = handler().with_max_body(10);
        assert!(matches!(
            small.handle(&Method::POST, EVENT_QUERY, event_body().as_bytes()),
            Err(CallbackError::BodyTooLarge { max: 10, .. })
        ));
        assert_eq!(
            handler().handle(&Method::PUT, EVENT_QUERY, b""),
            Err(CallbackError::MethodNotAllowed)
        );
    }

    #[test]
    fn bad_base64_and_padding_through_the_handler() {
        let config = handler().config().clone();
        // Not base64, correctly signed.
        let bad = "@@@@";
        let sig = signature(TOKEN, "1", "2", bad);
        let query = format!("msg_signature={sig}&timestamp=1&nonce=2&echostr={bad}");
        assert_eq!(
            handler().handle(&Method::GET, &query, b""),
            Err(CallbackError::BadBase64)
        );
        // Valid base64 of 32 random-looking bytes: decrypts to garbage padding (almost surely).
        let garbage = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let sig = signature(TOKEN, "1", "2", garbage);
        let body = envelope_xml(&config.receive_id, None, garbage);
        let err = handler()
            .handle(
                &Method::POST,
                &format!("msg_signature={sig}&timestamp=1&nonce=2"),
                body.as_bytes(),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                CallbackError::BadPadding | CallbackError::LengthOutOfBounds
            ),
            "{err:?}"
        );
    }

    #[test]
    fn built_requests_are_handled_end_to_end() {
        let config = handler().config().clone();
        let job = JobId::new("jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4");
        let xml = crate::callback::event_xml_upload_media_job_finish(RID, 1425284517, &job);
        for base in [
            "http://127.0.0.1:9/cb",
            "http://127.0.0.1:9/cb?app=1",
            "http://h",
        ] {
            let request = build_event_request(
                &config,
                &base.parse().unwrap(),
                "1409659813",
                "n o+n/ce",
                [3; 16],
                &xml,
            )
            .unwrap();
            assert_eq!(request.method(), Method::POST);
            assert_eq!(request.headers()[header::CONTENT_TYPE], "text/xml");
            let reply = handler().handle_request(&request).unwrap();
            assert_eq!(
                reply.event,
                Some(CallbackEvent::UploadMediaJobFinish {
                    job_id: job.clone(),
                    create_time: 1425284517,
                    corp_id: RID.into()
                }),
                "{base}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token_or_key() {
        let text = format!("{:?}", handler());
        assert!(
            !text.contains(TOKEN) && !text.contains(&KEY[..20]),
            "{text}"
        );
        // The token itself shows its mask, so a log line says a token is there.
        let token = crate::callback::CallbackToken::from(TOKEN);
        assert_eq!(
            [format!("{token:?}"), format!("{token}")],
            ["CallbackToken(***)", "***"]
        );
    }

    proptest! {
        #[test]
        fn built_requests_round_trip_for_any_timestamp_and_nonce(
            timestamp in "\\PC{0,12}",
            nonce in "\\PC{0,12}",
            random16 in any::<[u8; 16]>(),
            job in "[a-zA-Z0-9_]{1,64}",
        ) {
            let config = handler().config().clone();
            let xml = crate::callback::event_xml_upload_media_job_finish(RID, 7, &JobId::new(job.clone()));
            let request = build_event_request(
                &config, &"http://h/cb".parse().unwrap(), &timestamp, &nonce, random16, &xml).unwrap();
            let reply = handler().handle_request(&request).unwrap();
            let event = reply.event.unwrap();
            prop_assert_eq!(event.job_id().unwrap().as_str(), job.as_str());
        }

        #[test]
        fn handle_never_panics(
            get in any::<bool>(),
            query in "[a-z_=&%0-9A-F+/]{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let method = if get { Method::GET } else { Method::POST };
            let _ = handler().handle(&method, &query, &body);
        }
    }
}
