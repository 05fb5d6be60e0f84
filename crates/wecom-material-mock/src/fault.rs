//! Scripted faults: per endpoint, a queue of misbehaviours consumed by the next requests.

use std::time::Duration;

/// The emulator's endpoints, for faults, recording and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /cgi-bin/gettoken`.
    GetToken,
    /// `POST /cgi-bin/media/upload`.
    Upload,
    /// `POST /cgi-bin/media/uploadimg`.
    UploadImg,
    /// `GET /cgi-bin/media/get`.
    Get,
    /// `GET /cgi-bin/media/get/jssdk`.
    GetJssdk,
    /// `POST /cgi-bin/media/upload_by_url`.
    UploadByUrl,
    /// `POST /cgi-bin/media/get_upload_by_url_result`.
    GetUploadByUrlResult,
    /// `GET /mock-images/...`: the URLs `uploadimg` returns.
    Image,
    /// `GET /mock-files/...`: files registered with `serve_file` (for `upload_by_url`).
    ServedFile,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::GetToken,
        Endpoint::Upload,
        Endpoint::UploadImg,
        Endpoint::Get,
        Endpoint::GetJssdk,
        Endpoint::UploadByUrl,
        Endpoint::GetUploadByUrlResult,
        Endpoint::Image,
        Endpoint::ServedFile,
    ];

    /// Which endpoint a request path names, if any.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/cgi-bin/gettoken" => Endpoint::GetToken,
            "/cgi-bin/media/upload" => Endpoint::Upload,
            "/cgi-bin/media/uploadimg" => Endpoint::UploadImg,
            "/cgi-bin/media/get" => Endpoint::Get,
            "/cgi-bin/media/get/jssdk" => Endpoint::GetJssdk,
            "/cgi-bin/media/upload_by_url" => Endpoint::UploadByUrl,
            "/cgi-bin/media/get_upload_by_url_result" => Endpoint::GetUploadByUrlResult,
            p if p.starts_with(crate::IMAGE_PREFIX) => Endpoint::Image,
            p if p.starts_with(crate::FILE_PREFIX) => Endpoint::ServedFile,
            _ => return None,
        })
    }

    /// The name the admin API and `/__mock/stats` use: the path after `/cgi-bin/`
    /// (`gettoken`, `media/upload`, `media/get`, …), or `mock-images` / `mock-files` for the
    /// emulator's own file URLs.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::GetToken => "gettoken",
            Endpoint::Upload => "media/upload",
            Endpoint::UploadImg => "media/uploadimg",
            Endpoint::Get => "media/get",
            Endpoint::GetJssdk => "media/get/jssdk",
            Endpoint::UploadByUrl => "media/upload_by_url",
            Endpoint::GetUploadByUrlResult => "media/get_upload_by_url_result",
            Endpoint::Image => "mock-images",
            Endpoint::ServedFile => "mock-files",
        }
    }

    /// The endpoint of a [`Endpoint::name`] (a leading `/cgi-bin/` or `/` is accepted too).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        let name = name.trim_start_matches('/');
        let name = name.strip_prefix("cgi-bin/").unwrap_or(name);
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether this endpoint answers with a file body (where the download faults apply).
    pub fn is_download(self) -> bool {
        matches!(
            self,
            Endpoint::Get | Endpoint::GetJssdk | Endpoint::Image | Endpoint::ServedFile
        )
    }
}

/// One scripted misbehaviour, applied to the next `times` requests of an endpoint
/// (see `MockHandle::fault`). A request consumes at most one fault: the oldest one queued for
/// its endpoint. `times` = [`Fault::FOREVER`] applies it to every request until the faults are
/// cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `{"errcode":code,"errmsg":"injected fault"}` with HTTP 200 instead of serving,
    /// before any other check (the request body is still read and recorded).
    Errcode {
        /// The errcode to answer.
        code: i64,
        /// How many requests.
        times: u32,
    },
    /// Answer with this HTTP status and body (e.g. a proxy's 502 HTML page).
    HttpStatus {
        /// The status code.
        status: u16,
        /// The body, sent as `text/html`.
        body: String,
        /// How many requests.
        times: u32,
    },
    /// Sleep (real time) before handling the request, then handle it normally.
    Delay {
        /// How long.
        delay: Duration,
        /// How many requests.
        times: u32,
    },
    /// Close the connection without answering, before reading the request body.
    DropBeforeBody {
        /// How many requests.
        times: u32,
    },
    /// Read `after_bytes` bytes of the request body (or all of it if shorter), then close the
    /// connection without answering.
    DropMidRequest {
        /// Body bytes read first.
        after_bytes: u64,
        /// How many requests.
        times: u32,
    },
    /// Download endpoints: send the head (with the full `Content-Length`) and `after_bytes`
    /// bytes of the body, then abort the connection with an error. Other endpoints ignore it.
    DropMidBody {
        /// Body bytes sent first.
        after_bytes: u64,
        /// How many requests.
        times: u32,
    },
    /// Download endpoints: send the head (with the full `Content-Length`) and `after_bytes`
    /// bytes of the body, then end the body early (the connection is closed since the
    /// promised length was not met). Other endpoints ignore it.
    TruncateBody {
        /// Body bytes sent first.
        after_bytes: u64,
        /// How many requests.
        times: u32,
    },
    /// Answer the error object `{"errcode":code,"errmsg":…}` with HTTP 200 as a hostile or
    /// relabelling server does: with `content_type` as the `Content-Type` (`None`: no
    /// `Content-Type` header at all), and with an `Error-Code: N` header when
    /// `error_code_header` is set (also `Error-Msg`). A client must still see an error, never
    /// a file (SPEC §4).
    ErrorBody {
        /// The errcode in the body.
        code: i64,
        /// The `Content-Type` header, or none.
        content_type: Option<String>,
        /// The `Error-Code` header value, or none.
        error_code_header: Option<i64>,
        /// How many requests.
        times: u32,
    },
    /// `gettoken` only: issue a fresh token that really lives `secs` seconds and answer
    /// `expires_in: secs` (0 or 1 make a client that trusts it fetch tokens in a loop).
    /// Other endpoints ignore it.
    ExpiresIn {
        /// The `expires_in` answered and the token's lifetime.
        secs: u64,
        /// How many requests.
        times: u32,
    },
    /// Download endpoints: send the head and `after_bytes` bytes of the body, then send
    /// nothing for `pause` (real time) without closing, then the rest. Other endpoints
    /// ignore it.
    Stall {
        /// Body bytes sent before the pause.
        after_bytes: u64,
        /// How long the body stops.
        pause: Duration,
        /// How many requests.
        times: u32,
    },
    /// Answer with this HTTP status and an HTML page that quotes the request's URL (path and
    /// query, `access_token` included), as a badly behaved proxy does: a client must not
    /// repeat that page in its errors or logs unmasked.
    EchoUrl {
        /// The status code (e.g. 502).
        status: u16,
        /// How many requests.
        times: u32,
    },
}

impl Fault {
    /// `times` for a fault that applies to every request until cleared.
    pub const FOREVER: u32 = u32::MAX;

    pub(crate) fn times_mut(&mut self) -> &mut u32 {
        match self {
            Fault::Errcode { times, .. }
            | Fault::HttpStatus { times, .. }
            | Fault::Delay { times, .. }
            | Fault::DropBeforeBody { times }
            | Fault::DropMidRequest { times, .. }
            | Fault::DropMidBody { times, .. }
            | Fault::TruncateBody { times, .. }
            | Fault::ErrorBody { times, .. }
            | Fault::ExpiresIn { times, .. }
            | Fault::Stall { times, .. }
            | Fault::EchoUrl { times, .. } => times,
        }
    }
}

/// The fault queue of every endpoint.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    queued: Vec<(Endpoint, Fault)>,
}

impl FaultTable {
    pub(crate) fn push(&mut self, endpoint: Endpoint, fault: Fault) {
        let mut fault = fault;
        if *fault.times_mut() > 0 {
            self.queued.push((endpoint, fault));
        }
    }

    /// Removes every queued fault; how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.queued.len();
        self.queued.clear();
        n
    }

    /// Takes one use of the oldest fault for `endpoint`.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<Fault> {
        let idx = self.queued.iter().position(|(e, _)| *e == endpoint)?;
        let fault = &mut self.queued[idx].1;
        let out = fault.clone();
        let times = fault.times_mut();
        if *times == Fault::FOREVER {
            return Some(out);
        }
        *times -= 1;
        if *times == 0 {
            self.queued.remove(idx);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order_per_endpoint() {
        let mut t = FaultTable::default();
        t.push(Endpoint::Upload, Fault::Errcode { code: -1, times: 2 });
        t.push(Endpoint::Upload, Fault::DropBeforeBody { times: 1 });
        t.push(Endpoint::Get, Fault::Errcode { code: 1, times: 0 });
        assert!(matches!(
            t.take(Endpoint::Upload),
            Some(Fault::Errcode { code: -1, .. })
        ));
        assert!(matches!(
            t.take(Endpoint::Upload),
            Some(Fault::Errcode { code: -1, .. })
        ));
        assert!(matches!(
            t.take(Endpoint::Upload),
            Some(Fault::DropBeforeBody { .. })
        ));
        assert_eq!(t.take(Endpoint::Upload), None);
        assert_eq!(t.take(Endpoint::Get), None);
    }

    #[test]
    fn a_forever_fault_stays_until_cleared() {
        let mut t = FaultTable::default();
        t.push(
            Endpoint::Get,
            Fault::Errcode {
                code: -1,
                times: Fault::FOREVER,
            },
        );
        for _ in 0..5 {
            assert!(matches!(
                t.take(Endpoint::Get),
                Some(Fault::Errcode { code: -1, .. })
            ));
        }
        t.clear();
        assert_eq!(t.take(Endpoint::Get), None);
    }

    #[test]
    fn endpoint_names_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(e.name()), Some(e));
        }
        assert_eq!(
            Endpoint::from_name("/cgi-bin/media/get"),
            Some(Endpoint::Get)
        );
        assert_eq!(Endpoint::from_name("media/nope"), None);
    }
}
