//! Your own HTTP stack, full-featured, in one page: an async transport over reqwest 0.12
//! (tokio) that runs the core's one loop (`wecom_material_core::task`, stated in the core
//! README's "Writing a transport"). Every lane of a task runs at once (parallel Range
//! downloads), progress is reported, a cancel is honoured, and waits are wakeable (concurrent
//! calls share one token refresh; a callback event ends a job wait). The core decides
//! everything — token, retries, 830002 → Range chunks, resuming, 45033, flushing; this file
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
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::{cell::RefCell, collections::HashMap, fs::File, pin::pin, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesUnordered};
use http_body_util::channel::Channel;
use tokio::{sync::Notify, time::Instant, time::timeout};
use wecom_material_core::task::{Exchange, NextFrame, Seeds, UploadInput, response_head};
use wecom_material_core::{body::Body, callback::CallbackEvent, md5sum::Md5Hex, *};

/// Where a download's bytes go: a file, or a stream that "seeks" only to where it is.
pub(crate) trait Sink: Write + Seek {}
impl<S: Write + Seek> Sink for S {}
/// A task's upload file and download sink: a lane's step uses them between two awaits only.
type Io<'a> = (
    RefCell<Option<File>>,
    RefCell<&'a mut dyn Sink>,
    &'a Transfer<'a>,
);
/// A lane's response, and the rest of its last chunk.
type Lane = (Option<reqwest::Response>, Bytes);
/// A shared token store, for a client of a fleet.
type Store = Option<Arc<dyn shared_token::AsyncTokenStore>>;

/// A client: reqwest's pool, the state its tasks share, the wake-ups of its waiting tasks.
pub(crate) struct Stack {
    http: reqwest::Client,
    state: Mutex<ClientState>,
    woken: Notify,
    store: Store,
    settings: ClientSettings,
}

impl Stack {
    /// A client with `settings`, sharing its token through `store` if given.
    pub(crate) fn new(settings: ClientSettings, store: Store) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder().connect_timeout(settings.json_timeout);
        let http = http.redirect(reqwest::redirect::Policy::none()).build()?; // token in URI
        let state = Mutex::new(ClientState::for_client(&settings));
        Ok(Stack {
            http,
            state,
            woken: Notify::new(),
            store,
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a received callback event to the job waits, and wakes them.
    #[allow(dead_code)] // for a callback receiver (the kit's test uses it)
    pub(crate) fn job_finished(&self, event: &CallbackEvent) {
        if self.lock().deliver_event(event) {
            self.woken.notify_waiters();
        }
    }

    /// The loop: poll; start each exchange step as a future (lanes run at once); wait for a
    /// step, a wake-up or the time given; report; repeat.
    pub(crate) async fn run<T: Task>(&self, task: &mut T, io: &Io<'_>) -> Result<T::Output, Error> {
        let (mut lanes, mut running) = (HashMap::new(), FuturesUnordered::new());
        let mut run = Running(self, task, false);
        loop {
            let mut woken = pin!(self.woken.notified());
            let action = {
                let mut state = self.lock();
                if io.2.is_cancelled() {
                    run.1.cancel(&mut state);
                }
                let action = run.1.poll(std::time::Instant::now(), &mut state);
                if action.is_wakeable() {
                    woken.as_mut().enable(); // before the lock is released: no wake-up is lost
                }
                action
            };
            let far = || Instant::now() + Duration::from_secs(86_400);
            let (id, lane, event) = match action {
                Action::Exchange(id, step) => {
                    let sent = matches!(step, Exchange::Send { .. }); // a new response
                    let lane = lanes.remove(&id).filter(|_| !sent).unwrap_or_default();
                    running.push(self.step(id, lane, step, io));
                    continue;
                }
                Action::Wait { until, wakeable } => tokio::select! {
                    Some(done) = running.next() => done,
                    () = &mut woken, if wakeable => continue,
                    () = tokio::time::sleep_until(until.map_or_else(far, Into::into)) => continue,
                },
                Action::WakeOthers => {
                    self.woken.notify_waiters();
                    continue;
                }
                Action::Done(result) => {
                    run.2 = true;
                    return result;
                }
            };
            lanes.insert(id, lane);
            let written = matches!(event, Event::Written(_));
            run.1
                .on_event(std::time::Instant::now(), &mut self.lock(), id, event);
            if let (true, Some(p)) = (written, run.1.progress()) {
                io.2.report(p.done, p.total);
            }
        }
    }

    /// Runs one exchange step of a lane.
    async fn step(&self, id: LaneId, mut lane: Lane, step: Exchange, io: &Io<'_>) -> Stepped {
        let write = |at, bytes: &[u8]| {
            let mut sink = io.1.borrow_mut();
            let sought = sink.seek(SeekFrom::Start(at));
            let written = sought.and_then(|_| sink.write_all(bytes));
            Event::written(written, bytes.len())
        };
        let event = match step {
            Exchange::Send { request, timeouts } => match self.send(request, timeouts, io).await {
                Ok(r) => Event::Head(response_head(
                    r.status(),
                    lane.0.insert(r).headers().clone(),
                )),
                Err(event) => event,
            },
            Exchange::ReadBody { limit: max } => loop {
                let body = std::mem::take(&mut lane.1);
                match self.next(&mut lane).await {
                    Ok(Some(b)) if body.len() + b.len() <= max => {
                        lane.1 = [body, b].concat().into()
                    }
                    Ok(Some(_)) => break Event::Local(DecodeError::new(0, "long", b"").into()),
                    Ok(None) => break Event::Body(body),
                    Err(event) => break event,
                }
            },
            Exchange::Stream { max, at } => match self.next(&mut lane).await {
                Ok(Some(mut b)) => {
                    lane.1 = b.split_off(b.len().min(usize::try_from(max).unwrap_or(usize::MAX)));
                    write(at, &b)
                }
                Ok(None) => Event::BodyEnd,
                Err(event) => event,
            },
            Exchange::Write { at, bytes } => write(at, &bytes),
            Exchange::FlushSink => Event::Flushed(io.1.borrow_mut().flush().err()),
            Exchange::Store(cmd) => Event::from_async_store(self.store.as_deref(), cmd).await,
        };
        (id, lane, event)
    }

    /// The lane's next bytes (`None`: the body ended), waiting at most the idle timeout.
    async fn next(&self, (response, rest): &mut Lane) -> Result<Option<Bytes>, Event> {
        let Some(response) = response.as_mut().filter(|_| rest.is_empty()) else {
            return Ok(Some(std::mem::take(rest)).filter(|b| !b.is_empty()));
        };
        let chunk = timeout(self.settings.media_idle_timeout, response.chunk()).await;
        chunk.map_err(|_| late())?.map_err(failed)
    }

    /// Sends one request; an upload's body is the core's frames, fed through a channel.
    async fn send(&self, request: http::Request<Body>, timeouts: Timeouts, io: &Io<'_>) -> Answer {
        let ((parts, body), http) = (request.into_parts(), &self.http);
        let request = http.request(parts.method, parts.uri.to_string());
        let request = request.headers(parts.headers);
        let (json, idle) = (self.settings.json_timeout, self.settings.media_idle_timeout);
        let (request, limit) = match timeouts {
            Timeouts::Json => (request.timeout(json), json), // head and body: one overall timeout
            Timeouts::Media => (request, idle),              // an idle timeout for every wait
        };
        let (request, upload) = match body {
            Body::Empty => (request, None),
            Body::Bytes(bytes) => (request.body(bytes), None),
            Body::Upload(upload) => (request, Some(upload)),
        };
        let Some(upload) = upload else {
            let response = timeout(limit, request.send()).await;
            return response.map_err(|_| late())?.map_err(failed);
        };
        let ((mut tx, rx), mut frames) =
            (Channel::<Bytes>::new(4), UploadFrames::new(upload, *io.2));
        let mut response = pin!(request.body(reqwest::Body::wrap(rx)).send());
        let local = |e| Event::Local(Error::io("reading the upload payload", e));
        let rewound = io.0.borrow_mut().as_mut().map(|f| f.rewind());
        rewound.transpose().map_err(local)?;
        loop {
            let frame = match frames.next_frame().map_err(Event::Local)? {
                NextFrame::End => break,
                NextFrame::Bytes(bytes) => bytes,
                NextFrame::Read { max } => {
                    let mut buf = vec![0; max];
                    let read = io.0.borrow_mut().as_mut().map(|f| f.read(&mut buf));
                    buf.truncate(read.unwrap_or(Ok(0)).map_err(local)?);
                    frames.on_read(&buf).map_err(Event::Local)?;
                    Bytes::from(buf)
                }
            };
            tokio::select! { // the answer may come before the whole body went out
                response = &mut response => return response.map_err(failed),
                sent = timeout(limit, tx.send_data(frame)) => if sent.map_err(|_| late())?.is_err() {
                    break; // reqwest dropped the body: the answer tells why
                },
            };
        }
        drop(tx); // the body's end
        let response = timeout(limit, response).await;
        response.map_err(|_| late())?.map_err(failed)
    }
}

/// A task being run: cancelled if its future is dropped before it ended, so that a token
/// refresh it holds is handed back at once.
struct Running<'a, T: Task>(&'a Stack, &'a mut T, bool);

impl<T: Task> Drop for Running<'_, T> {
    fn drop(&mut self) {
        if !self.2 {
            self.1.cancel(&mut self.0.lock());
            self.0.woken.notify_waiters();
        }
    }
}

/// A lane's step done.
type Stepped = (LaneId, Lane, Event);
/// A response, or what to report instead.
type Answer = Result<reqwest::Response, Event>;

/// A task's upload file, download sink and transfer.
pub(crate) fn io<'a>(file: Option<File>, sink: &'a mut dyn Sink, t: &'a Transfer<'a>) -> Io<'a> {
    (file.into(), sink.into(), t)
}

/// reqwest's error, without the URI (its message would quote the token), as sent or not.
fn failed(e: reqwest::Error) -> Event {
    let not_sent = e.is_connect() || e.is_builder();
    let mut error = TransportError::maybe_sent(e.without_url().to_string());
    if not_sent {
        error.sent = error::Sent::No;
    }
    Event::TransportFailed(error)
}

fn late() -> Event {
    Event::TransportFailed(TransportError::maybe_sent("nothing moved in time"))
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
    let (stack, none) = (Stack::new(settings.clone(), None)?, Transfer::default());
    let seeds = Seeds::new(RandomState::new().hash_one(0)); // randomness from std alone
    let data: Vec<u8> = (0..1_000_000).map(|_| seeds.next() as u8).collect();
    let mut file = tempfile::tempfile()?; // gone at exit
    file.write_all(&data)?;
    let prefix = data[..UploadInput::SNIFF_LEN].to_vec();
    let input = UploadInput::file("样例.bin".as_ref(), None, data.len() as u64, prefix)?;
    let op = input.upload_media(MediaType::File, seeds.boundary(), &settings.limits)?;
    let mut upload = CallTask::for_client(op, &settings, Timeouts::Media, seeds.next());
    let (mut nowhere, mut back) = (io::empty(), Cursor::new(Vec::new()));
    let up = io(Some(file), &mut nowhere, &none);
    let uploaded = stack.run(&mut upload, &up).await?;
    println!("uploaded {} as {}", input.filename, uploaded.media_id);
    let options = DownloadOptions::default().max_len(2_000_000);
    let mut task = DownloadTask::new(uploaded.media_id, options, &settings, seeds.next())?;
    stack.run(&mut task, &io(None, &mut back, &none)).await?;
    if back.into_inner() != data {
        return Err("the bytes downloaded back differ from the upload".into());
    }
    println!("downloaded {} bytes back, identical", data.len());
    if let [id, ..] = media_id {
        let (id, options) = (MediaId::new(id), DownloadOptions::default().connections(4));
        let mut task = DownloadTask::in_ranges(id.clone(), options, &settings, seeds.next(), None)?;
        let file = tempfile::NamedTempFile::new()?;
        let done = stack
            .run(&mut task, &io(None, &mut file.as_file(), &none))
            .await?;
        let md5 = Md5Hex::of(&std::fs::read(file.path())?);
        println!("media {id}: {} bytes, md5 {md5}", done.total);
    }
    Ok(())
}
