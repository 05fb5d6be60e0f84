//! Emulator configuration: apps, lifetimes, size limits, quotas and the job-finished seam.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;

/// One WeCom app the emulator knows: a corp id and the app's secret.
///
/// `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The corp id (`corpid` query parameter of gettoken).
    pub corp_id: String,
    /// The app secret (`corpsecret`). Never printed.
    pub secret: String,
}

impl App {
    /// An app with this corp id and secret.
    pub fn new(corp_id: impl Into<String>, secret: impl Into<String>) -> Self {
        App {
            corp_id: corp_id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("corp_id", &self.corp_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The four media types of `media/upload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `image`: JPG/PNG.
    Image,
    /// `voice`: AMR.
    Voice,
    /// `video`: MP4.
    Video,
    /// `file`: anything.
    File,
}

impl MediaKind {
    /// Parses the lower-case wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        match s {
            "image" => Some(MediaKind::Image),
            "voice" => Some(MediaKind::Voice),
            "video" => Some(MediaKind::Video),
            "file" => Some(MediaKind::File),
            _ => None,
        }
    }

    /// The lower-case wire name.
    pub fn as_wire(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Voice => "voice",
            MediaKind::Video => "video",
            MediaKind::File => "file",
        }
    }

    /// Whether a file name's extension fits this type (case-insensitive). `file` takes anything.
    pub fn accepts_file_name(self, name: &str) -> bool {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match self {
            MediaKind::Image => matches!(ext.as_str(), "jpg" | "jpeg" | "png"),
            MediaKind::Voice => ext == "amr",
            MediaKind::Video => ext == "mp4",
            MediaKind::File => true,
        }
    }
}

/// A size limit and the errcode answered when a file is over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    /// The largest accepted size in bytes (inclusive).
    pub max_bytes: u64,
    /// The errcode for a larger file.
    pub over_code: i64,
}

/// The size table (SPEC §2, §3, §6). One table, so a caller can relax or tighten it.
///
/// Defaults: every file must be **more than 5 bytes** (`min_exclusive_bytes`, else 40006);
/// image ≤ 10 MiB (else 40009), voice ≤ 2 MiB (else 40006), video ≤ 10 MiB (else 40011),
/// file ≤ 20 MiB (else 45001); uploadimg ≤ 2 MiB (else 40009); upload_by_url ≤ 200 MiB
/// (else the job fails with 45001).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A file must be larger than this many bytes (SPEC: "> 5 bytes"), else 40006.
    pub min_exclusive_bytes: u64,
    /// `media/upload` with `type=image`.
    pub image: SizeLimit,
    /// `media/upload` with `type=voice`.
    pub voice: SizeLimit,
    /// `media/upload` with `type=video`.
    pub video: SizeLimit,
    /// `media/upload` with `type=file`.
    pub file: SizeLimit,
    /// `media/uploadimg`.
    pub upload_img: SizeLimit,
    /// The largest file `upload_by_url` accepts (bytes); over it the job fails with 45001.
    pub upload_by_url_max_bytes: u64,
    /// `media/get` without Range, of media larger than this, answers 830002; so does a Range
    /// chunk larger than this. Default 20,000,000.
    pub max_download_chunk: u64,
}

const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_exclusive_bytes: 5,
            image: SizeLimit {
                max_bytes: 10 * MIB,
                over_code: 40009,
            },
            voice: SizeLimit {
                max_bytes: 2 * MIB,
                over_code: 40006,
            },
            video: SizeLimit {
                max_bytes: 10 * MIB,
                over_code: 40011,
            },
            file: SizeLimit {
                max_bytes: 20 * MIB,
                over_code: 45001,
            },
            upload_img: SizeLimit {
                max_bytes: 2 * MIB,
                over_code: 40009,
            },
            upload_by_url_max_bytes: 200 * MIB,
            max_download_chunk: 20_000_000,
        }
    }
}

impl Limits {
    /// The limit for one `media/upload` type.
    pub fn for_kind(&self, kind: MediaKind) -> SizeLimit {
        match kind {
            MediaKind::Image => self.image,
            MediaKind::Voice => self.voice,
            MediaKind::Video => self.video,
            MediaKind::File => self.file,
        }
    }
}

/// The `Content-Type` of JSON error bodies (WeCom sends either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorContentType {
    /// `application/json; charset=UTF-8`.
    #[default]
    Json,
    /// `text/plain`.
    TextPlain,
}

impl ErrorContentType {
    pub(crate) fn header_value(self) -> &'static str {
        match self {
            ErrorContentType::Json => "application/json; charset=UTF-8",
            ErrorContentType::TextPlain => "text/plain",
        }
    }
}

/// How an `upload_by_url` job ended, handed to [`MockConfig::on_job_finished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFinished {
    /// The job id returned by `upload_by_url`.
    pub job_id: String,
    /// The corp id of the app whose token started the job.
    pub corp_id: String,
    /// `detail.errcode`: 0 on success.
    pub errcode: i64,
    /// The new media id on success.
    pub media_id: Option<String>,
}

/// Called once per job when it ends (success or failure), on the emulator's runtime. Must not
/// block for long.
///
/// The encrypted `upload_media_job_finish` callback (SPEC §8) is delivered separately when
/// [`MockConfig::callback`] is set; this hook sees every job end either way.
pub type JobFinishedHook = Arc<dyn Fn(&JobFinished) + Send + Sync>;

/// Where and how the emulator delivers the encrypted `upload_media_job_finish` callback
/// (SPEC §8) when an `upload_by_url` job ends, as WeCom does: a signed POST of the encrypted
/// event to the app's callback URL, retried when no 200 comes back within `timeout`.
///
/// `Debug` redacts the token and the AES key.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    /// The callback URL: `http://` on a loopback host only (`127.0.0.0/8`, `::1`,
    /// `localhost`); any other URL is refused and nothing is sent.
    pub url: String,
    /// The app's callback `Token`. Never printed.
    pub token: String,
    /// The app's 43-character `EncodingAESKey`. Never printed.
    pub encoding_aes_key: String,
    /// The receive id the message ends with: the corp id of a self-built app.
    pub receive_id: String,
    /// How long an attempt may take before it counts as failed (real time); default 5 s.
    pub timeout: Duration,
    /// Attempts after the first one that got no 200; default 3.
    pub retries: u32,
}

impl CallbackTarget {
    /// A target with WeCom's delivery rules (5 s per attempt, 3 retries).
    pub fn new(
        url: impl Into<String>,
        token: impl Into<String>,
        encoding_aes_key: impl Into<String>,
        receive_id: impl Into<String>,
    ) -> Self {
        CallbackTarget {
            url: url.into(),
            token: token.into(),
            encoding_aes_key: encoding_aes_key.into(),
            receive_id: receive_id.into(),
            timeout: Duration::from_secs(5),
            retries: 3,
        }
    }
}

impl fmt::Debug for CallbackTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackTarget")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("encoding_aes_key", &"<redacted>")
            .field("receive_id", &self.receive_id)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

/// Called with every request the emulator answered (not the admin API's), right after it was
/// recorded, on the emulator's runtime; must not block. The `mock -v` log line comes from
/// [`RecordedRequest::summary`](crate::RecordedRequest::summary).
pub type RequestHook = Arc<dyn Fn(&crate::RecordedRequest) + Send + Sync>;

/// Called with a one-line note (see [`MockConfig::on_note`]), on the emulator's runtime; must
/// not block.
pub type NoteHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything the emulator can be configured with. Start from [`MockConfig::default`] (one app,
/// corp id `ww-mock-corp`, secret `mock-secret`, an adjustable system clock) and change fields.
///
/// `limits`, `upload_img_daily_quota`, `callback`, `strict_ids`, `request_log_capacity` and
/// `max_media_bytes` are start values of the run-time [`Rules`](crate::Rules) (changed with
/// [`MockHandle::set_rules`](crate::MockHandle::set_rules) or `POST /__mock/settings`);
/// `latency`, `bandwidth` and `max_concurrent_per_media` of the [`Settings`](crate::Settings).
/// A reset goes back to them.
#[derive(Clone)]
pub struct MockConfig {
    /// The apps gettoken knows.
    pub apps: Vec<App>,
    /// Access token lifetime (`expires_in`); default 7200 s.
    pub token_lifetime: Duration,
    /// Media lifetime; default 3 days. Older media answers 40007.
    pub media_lifetime: Duration,
    /// The size table.
    pub limits: Limits,
    /// Successful `uploadimg` calls per corp per emulator-clock day (UTC) before 45009;
    /// default 1000.
    pub upload_img_daily_quota: u32,
    /// Content type of JSON error bodies on every endpoint.
    pub error_content_type: ErrorContentType,
    /// The clock for every expiry.
    pub clock: Clock,
    /// The chunk size `upload_by_url` uses to fetch a URL with Range; default 4 MiB.
    pub fetch_chunk_bytes: u64,
    /// Time allowed for each chunk fetched by `upload_by_url` (real time); default 30 s.
    pub fetch_timeout: Duration,
    /// How long an `upload_by_url` job waits in the queue before its first fetch, on the
    /// emulator's clock (moving the clock forward ends the wait early); default zero. With a
    /// presigned URL that expires sooner, the job fails as WeCom's does (830003).
    pub fetch_delay: Duration,
    /// Refuse uploads sent without `Content-Length` (chunked transfer encoding) with 44001.
    /// Off by default: SPEC only infers that WeCom needs an exact length (every working client
    /// sends one); turn it on to check that a client does.
    pub require_content_length: bool,
    /// Called when an `upload_by_url` job ends (the callback seam).
    pub on_job_finished: Option<JobFinishedHook>,
    /// Delivers the encrypted job-finished callback when a job ends; default none.
    pub callback: Option<CallbackTarget>,
    /// Hand out media ids with `+`, `/` and `=` (every second id carries all three), so that a
    /// client that puts an id into a URL without percent-encoding it gets 40007. Off by
    /// default: ids are then drawn from WeCom's documented alphabet `[A-Za-z0-9_-]` (SPEC §1),
    /// which clients in wide use splice into URLs unencoded. `mock --strict-ids` turns it on;
    /// also settable at run time (`POST /__mock/settings`, `strict_ids`).
    pub strict_ids: bool,
    /// How many requests the log keeps ([`MockHandle::requests`](crate::MockHandle::requests),
    /// `GET /__mock/requests`): a ring buffer, the oldest entry goes first. Default 10,000.
    pub request_log_capacity: usize,
    /// The most bytes all stored media and `uploadimg` images may hold together; past it the
    /// oldest go (a note is given to [`MockConfig::on_note`] for each). Default 2 GiB. Media also
    /// go when they expire (`media_lifetime` on the emulator's clock) and on
    /// `DELETE /__mock/media/{id}`.
    pub max_media_bytes: u64,
    /// Called with a one-line note when the emulator drops something on its own (a media
    /// evicted for the byte budget); `mock` prints it on stderr. Default none.
    pub on_note: Option<NoteHook>,
    /// Added (real time) before every answer; default zero. Also settable at run time with
    /// `POST /__mock/settings` (`latency_ms`).
    pub latency: Duration,
    /// Bytes per second of each download body (media/get, the emulator's file URLs), per
    /// connection; `None` (default) is unlimited. Also settable with `POST /__mock/settings`.
    pub bandwidth: Option<u64>,
    /// Answer 45033 ("too many concurrent calls", SPEC §4, §9) to a `media/get` of a media id
    /// that already has this many answers in flight (head sent, body not finished); `None`
    /// (default) never does. [`MockHandle::throttled`](crate::MockHandle::throttled) counts
    /// those answers. Also settable with `POST /__mock/settings`.
    pub max_concurrent_per_media: Option<usize>,
    /// Called with every answered request (see [`RequestHook`]); default none.
    pub on_request: Option<RequestHook>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            apps: vec![App::new("ww-mock-corp", "mock-secret")],
            token_lifetime: Duration::from_secs(7200),
            media_lifetime: Duration::from_secs(3 * 24 * 3600),
            limits: Limits::default(),
            upload_img_daily_quota: 1000,
            error_content_type: ErrorContentType::Json,
            clock: Clock::adjustable(),
            fetch_chunk_bytes: 4 * MIB,
            fetch_timeout: Duration::from_secs(30),
            fetch_delay: Duration::ZERO,
            require_content_length: false,
            on_job_finished: None,
            callback: None,
            strict_ids: false,
            request_log_capacity: 10_000,
            max_media_bytes: 2 * 1024 * MIB,
            on_note: None,
            latency: Duration::ZERO,
            bandwidth: None,
            max_concurrent_per_media: None,
            on_request: None,
        }
    }
}

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("apps", &self.apps)
            .field("token_lifetime", &self.token_lifetime)
            .field("media_lifetime", &self.media_lifetime)
            .field("limits", &self.limits)
            .field("upload_img_daily_quota", &self.upload_img_daily_quota)
            .field("error_content_type", &self.error_content_type)
            .field("clock", &self.clock)
            .field("fetch_chunk_bytes", &self.fetch_chunk_bytes)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("fetch_delay", &self.fetch_delay)
            .field("require_content_length", &self.require_content_length)
            .field(
                "on_job_finished",
                &self.on_job_finished.as_ref().map(|_| "<hook>"),
            )
            .field("callback", &self.callback)
            .field("strict_ids", &self.strict_ids)
            .field("request_log_capacity", &self.request_log_capacity)
            .field("max_media_bytes", &self.max_media_bytes)
            .field("on_note", &self.on_note.as_ref().map(|_| "<hook>"))
            .field("latency", &self.latency)
            .field("bandwidth", &self.bandwidth)
            .field("max_concurrent_per_media", &self.max_concurrent_per_media)
            .field("on_request", &self.on_request.as_ref().map(|_| "<hook>"))
            .finish()
    }
}
