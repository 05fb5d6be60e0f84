//! Your own HTTP stack, full-featured, in one page: an async transport over reqwest 0.12
//! (tokio) that runs the core's one loop (`wecom_material::proto::task`, stated in the core
//! README's "Writing a transport"). Every lane of a task runs at once (parallel Range
//! downloads), progress is reported, a cancel or deadline is honoured, and waits are wakeable
//! (concurrent calls share one token refresh; a callback event ends a job wait). The core
//! decides everything — token, retries, 830002 → Range chunks, resuming, 45033, flushing;
//! what every client shares comes from the kit, `wecom_material::host` (the client's state
//! and its wake-ups, the task of each operation, a task run by an async loop); this file
//! moves bytes, sleeps and wakes, with the safe defaults: no redirects, JSON bodies capped,
//! a JSON timeout and an idle timeout for media, no URI (token) in its errors. It passes the
//! conformance kit (`crates/wecom-material/tests/reqwest_transport.rs`).
//!
//! ```text
//! cargo run -p wecom-material --example reqwest_transport -- BASE_URL CORP_ID SECRET [MEDIA_ID]
//! ```
//!
//! Uploads 1,000,000 random bytes as `样例.bin` (type `file`, streamed from a temporary file)
//! and downloads them back; with MEDIA_ID also downloads that media into a temporary file
//! with 4 connections (ranges in flight at once) and prints its size and MD5. The last line
//! is `ok`, or the error (exit status 1). TLS: the emulator speaks plain HTTP; for WeCom
//! itself add a reqwest TLS feature (e.g. `rustls-tls`), no code changes.

use std::hash::{BuildHasher, RandomState};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::{cell::RefCell, fs::File, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::time::{sleep_until, timeout};
use wecom_material::host::{FileAttempt, Shared, UploadBody, md5_file, open_file};
use wecom_material::proto::task::chunked::{ChunkedBody, Chunks};
use wecom_material::proto::task::{Exchange, Seeds};
use wecom_material::proto::{body::Body, shared_token::AsyncTokenStore, *};

/// Where a download's bytes go: a file, or a stream that "seeks" only to where it is.
pub(crate) trait Sink: Write + Seek {}
impl<S: Write + Seek> Sink for S {}
/// A task's upload file (rewound for each attempt), its download sink (used by a step
/// between two awaits only) and the caller's transfer (progress, cancel, deadline).
pub(crate) struct Io<'a>(Option<File>, RefCell<Box<dyn Sink + 'a>>, &'a Transfer);
/// A lane's response body, read as its steps ask.
type Lane = ChunkedBody<Reply>;
/// A shared token store, for a client of a fleet.
type Store = Option<Arc<dyn AsyncTokenStore>>;

/// A client: reqwest's connection pool, and what every client shares (the core's state
/// behind a lock, the wake-ups of its waiting tasks, job events, settings, token store).
pub(crate) struct Stack {
    http: reqwest::Client,
    pub(crate) shared: Shared<dyn AsyncTokenStore>,
}

impl Stack {
    /// A client with `settings`, sharing its token through `store` if given.
    pub(crate) fn new(settings: ClientSettings, store: Store) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder().connect_timeout(settings.json_timeout);
        let http = http.redirect(reqwest::redirect::Policy::none()).build()?; // token in URI
        let shared = Shared::new(settings, store);
        Ok(Stack { http, shared })
    }

    /// The loop, the host's (poll; start each step as a future, lanes at once; wait for a
    /// step, a wake-up or the time given; report; repeat), over this file's `step`.
    pub(crate) async fn run<T: Task>(&self, task: &mut T, io: &Io<'_>) -> Result<T::Output, Error> {
        let task = self.shared.start(task, io.2.clone()); // cancelled if this future is dropped
        let step = |_, lane, step| self.step(lane, step, io);
        task.run(step, |at| sleep_until(at.into())).await
    }

    /// Runs one exchange step of a lane.
    async fn step(&self, mut lane: Lane, step: Exchange, io: &Io<'_>) -> (Lane, Event) {
        let write_at = |at, bytes: &[u8]| {
            let mut sink = io.1.borrow_mut();
            sink.seek(SeekFrom::Start(at))?;
            sink.write_all(bytes)
        };
        let (idle, store) = (self.shared.settings.media_idle_timeout, &self.shared.store);
        let event = match step {
            Exchange::Send { request, timeouts } => {
                let sent = self.send(request, timeouts, io).await;
                lane.receive(sent.map(|r| http::Response::from(r).map(|b| Reply(b, idle))))
            }
            Exchange::ReadBody { limit } => lane.read_whole(limit).await,
            Exchange::Stream { max, at } => lane.stream(max, async |b| write_at(at, &b)).await,
            Exchange::Write { at, bytes } => Event::written(write_at(at, &bytes), bytes.len()),
            Exchange::FlushSink => Event::Flushed(io.1.borrow_mut().flush().err()),
            Exchange::Store(cmd) => Event::from_async_store(store.as_deref(), cmd).await,
        };
        (lane, event)
    }

    /// Sends one request; an upload's body is the host's `UploadBody` (the core's frames),
    /// which reqwest polls itself; the exchange is idle when neither it nor the answer moves.
    async fn send(&self, request: http::Request<Body>, timeouts: Timeouts, io: &Io<'_>) -> Answer {
        let ((parts, body), settings) = (request.into_parts(), &self.shared.settings);
        let request = self.http.request(parts.method, parts.uri.to_string());
        let request = request.headers(parts.headers);
        let (json, idle) = (settings.json_timeout, settings.media_idle_timeout);
        let (request, limit) = match timeouts {
            Timeouts::Json => (request.timeout(json), json), // head and body: one overall timeout
            Timeouts::Media => (request, idle),              // an idle timeout for every wait
        };
        let upload = match body {
            Body::Empty => return within(limit, request.send()).await,
            Body::Bytes(bytes) => return within(limit, request.body(bytes).send()).await,
            Body::Upload(upload) => upload,
        };
        let local = |e| Event::Local(Error::io("reading the upload payload", e));
        let file = io.0.as_ref().map(FileAttempt::of).transpose(); // read from its first byte
        let file = file.map_err(local)?;
        let (body, watch) = UploadBody::new(upload, file, io.2.clone()).map_err(Event::Local)?;
        let sent = request.body(reqwest::Body::wrap(body)).send();
        let sent = watch.idle_bounded(limit, sent, tokio::time::sleep).await;
        match watch.take_failure() {
            Some(failure) => Err(Event::Local(failure)), // cancelled, or the file changed
            None => Ok(sent.ok_or_else(|| late(()))?.map_err(failed)?),
        }
    }
}

/// A response's body, each chunk within the media idle timeout.
pub(crate) struct Reply(reqwest::Body, Duration);

impl Chunks for Reply {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        let frame = timeout(self.1, self.0.frame()).await.map_err(late)?;
        let frame = frame.transpose().map_err(failed)?;
        Ok(frame.and_then(|frame| frame.into_data().ok())) // trailers end the body
    }
}

/// A response, or what to report instead.
type Answer = Result<reqwest::Response, Event>;

/// A reqwest future's outcome within `limit`.
async fn within<T, E: From<TransportError>>(
    limit: Duration,
    f: impl Future<Output = reqwest::Result<T>>,
) -> Result<T, E> {
    Ok(timeout(limit, f).await.map_err(late)?.map_err(failed)?)
}

/// reqwest's error, without the URI (its message would quote the token), as sent or not.
fn failed(e: reqwest::Error) -> TransportError {
    let not_sent = e.is_connect() || e.is_builder();
    let message = e.without_url().to_string();
    match not_sent {
        true => TransportError::not_sent(message),
        false => TransportError::maybe_sent(message),
    }
}

fn late<E>(_: E) -> TransportError {
    TransportError::maybe_sent("nothing moved in time")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let error = run(&args).await.err();
    let last = error.as_ref().map_or("ok".into(), ToString::to_string);
    println!("{last}");
    u8::from(error.is_some()).into()
}

/// The example's command line (see the top of the file).
pub(crate) async fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [base, corp_id, secret, media_id @ ..] = args else {
        return Err("usage: reqwest_transport BASE_URL CORP_ID SECRET [MEDIA_ID]".into());
    };
    let mut settings = ClientSettings::new(corp_id, secret.as_str());
    settings.base = BaseUrl::parse(base)?;
    let (stack, none) = (Stack::new(settings, None)?, Transfer::default());
    let seeds = Seeds::new(RandomState::new().hash_one(0)); // randomness from std alone
    let data: Vec<u8> = (0..1_000_000).map(|_| seeds.next() as u8).collect();
    let temporary = tempfile::NamedTempFile::new()?; // gone at exit
    temporary.as_file().write_all(&data)?;
    let (input, file) = open_file(temporary.path(), Some("样例.bin"))?;
    let mut upload = stack.shared.upload(MediaType::File, &input)?;
    let from_file = io(Some(file), std::io::empty(), &none);
    let id = stack.run(&mut upload, &from_file).await?.media_id;
    println!("uploaded {} as {id}", input.filename);
    let mut task = stack.shared.get(&id, DownloadOptions::default())?; // into memory
    let mut back = Cursor::new(Vec::new());
    stack.run(&mut task, &io(None, &mut back, &none)).await?;
    if back.into_inner() != data {
        return Err("the bytes downloaded back differ from the upload".into());
    }
    println!("downloaded {} bytes back, identical", data.len());
    if let [id, ..] = media_id {
        let (id, options) = (MediaId::new(id), DownloadOptions::default().connections(4));
        let mut task = stack.shared.download_file(&id, options, None)?;
        let file = tempfile::NamedTempFile::new()?;
        let into_file = io(None, file.as_file(), &none);
        let size = stack.run(&mut task, &into_file).await?.total;
        println!("media {id}: {size} bytes, md5 {}", md5_file(file.path())?);
    }
    Ok(())
}

/// A task's [`Io`].
pub(crate) fn io<'a>(file: Option<File>, sink: impl Sink + 'a, t: &'a Transfer) -> Io<'a> {
    Io(file, RefCell::new(Box::new(sink)), t)
}
