//! Your own HTTP stack in one page: every operation runs through the core's tasks
//! (`CallTask` for uploads, `DownloadTask` for downloads) over reqwest's blocking client.
//! The core decides everything (token, retries, 830002 → Range chunks, resuming a dropped
//! body, flushing); this file only moves bytes and sleeps, with the safe defaults: no
//! redirects, JSON bodies capped, tokens masked in logs, timeouts.
//!
//! ```text
//! cargo run -p wecom-material --example reqwest_transport -- BASE_URL CORP_ID SECRET [MEDIA_ID]
//! ```
//!
//! Uploads 1,000,000 random bytes as `样例.bin` (type `file`, streamed from a temporary file),
//! downloads them back and compares; with MEDIA_ID also downloads that media to a temporary
//! file and prints its size and MD5. The last line is `ok`, or the error (exit status 1).
//!
//! TLS: the emulator speaks plain HTTP. For WeCom itself (https) add one of reqwest's TLS
//! features to the dependency, e.g. `features = ["blocking", "rustls-tls"]`; no code changes.

use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read, Seek, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::{Body as WireBody, Client, Response};
use wecom_material_core::client_settings::DEFAULT_JSON_TIMEOUT as JSON;
use wecom_material_core::client_settings::DEFAULT_MEDIA_IDLE_TIMEOUT as IDLE;
use wecom_material_core::task::{UploadReader, blocking, response_head};
use wecom_material_core::*;

/// A client: one connection pool, the state its tasks share, and the upload source.
struct Stack {
    http: Client,
    state: ClientState,
    file: Arc<File>,
}

impl Stack {
    /// The loop of the core's `task` module: poll, act, report. One task at a time here, so
    /// `WakeOthers` wakes nobody and a wakeable wait is a plain sleep.
    fn run<T: Task>(&mut self, task: &mut T, sink: &mut dyn Write) -> Result<T::Output, Error> {
        let (mut response, mut buf) = (None::<Response>, vec![0; blocking::STREAM_BUFFER]);
        let head = |r: &Response| response_head(r.status(), r.headers().clone());
        loop {
            let event = match task.poll(Instant::now(), &mut self.state) {
                Action::Send { request, lane } => match self.send(request, lane) {
                    Ok(r) => Event::Head(head(response.insert(r))),
                    Err(e) => Event::TransportFailed(e),
                },
                Action::ReadBody { limit } => {
                    let r = response.take().expect("a response");
                    let status = r.status().as_u16();
                    blocking::read_body(r, status, limit)
                }
                Action::Stream { max } => {
                    let body = response.as_mut().expect("a response");
                    blocking::stream_once(body, &mut buf, max, sink)
                }
                Action::Write(bytes) => blocking::write_all(Some(sink), &bytes),
                Action::FlushSink => Event::Flushed(sink.flush().err()),
                Action::Wait { until, .. } => {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    continue;
                }
                Action::WakeOthers => continue,
                Action::Store(command) => Event::from_store(None, command), // no token store here
                Action::Done(result) => return result,
            };
            task.on_event(Instant::now(), &mut self.state, event);
        }
    }

    /// Sends a request; an upload's external payload is the temporary file.
    fn send(&self, request: http::Request<Body>, lane: Lane) -> Result<Response, TransportError> {
        let (parts, body) = request.into_parts();
        let not_sent = |e: &dyn ToString| TransportError::not_sent(e.to_string());
        eprintln!("-> {} {}", parts.method, RedactedUri(&parts.uri)); // never the token
        // JSON: one overall timeout. Media: reqwest's blocking timeout bounds each body read
        // (idle) but a whole send, so an upload also gets time for its size (at 100 kB/s).
        let len = body.content_length();
        let media = IDLE + Duration::from_secs(len / 100_000);
        let timeout = if lane == Lane::Json { JSON } else { media };
        let wire = match body {
            Body::Empty => WireBody::from(Vec::new()),
            Body::Bytes(bytes) => WireBody::from(bytes),
            Body::Upload(upload) => {
                // Streams `head ‖ file ‖ tail`, the file read through the core's meter.
                (&*self.file).rewind().map_err(|e| not_sent(&e))?;
                let file: Box<dyn Read + Send> = Box::new(self.file.clone());
                let reader = UploadReader::new(upload, Some(file), Transfer::default());
                WireBody::sized(reader.map_err(|e| not_sent(&e))?, len)
            }
        };
        let builder = self.http.request(parts.method, parts.uri.to_string());
        let builder = builder.headers(parts.headers).timeout(timeout);
        builder.body(wire).send().map_err(|e| {
            let e = e.without_url(); // its message would quote the URI, token included
            match e.is_connect() || e.is_builder() {
                true => TransportError::not_sent(e.to_string()),
                false => TransportError::maybe_sent(e.to_string()),
            }
        })
    }
}

fn main() -> std::process::ExitCode {
    let error = run(&std::env::args().skip(1).collect::<Vec<_>>()).err();
    let line = error.as_ref().map_or("ok".into(), ToString::to_string);
    println!("{line}");
    u8::from(error.is_some()).into()
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [base, corp_id, secret, media_id @ ..] = args else {
        return Err("usage: reqwest_transport BASE_URL CORP_ID SECRET [MEDIA_ID]".into());
    };
    let (base, policy) = (BaseUrl::parse(base)?, RetryPolicy::default());
    let seed = || RandomState::new().build_hasher().finish(); // randomness from std alone
    let state = ClientState::new(GetToken::new(corp_id, CorpSecret::new(secret)));
    let never = reqwest::redirect::Policy::none(); // the token is in the query string
    let http = Client::builder().redirect(never).connect_timeout(JSON);
    let (http, file) = (http.build()?, Arc::new(tempfile::tempfile()?)); // gone at exit
    let mut stack = Stack { http, state, file };
    let data: Vec<u8> = (0..1_000_000).map(|_| seed() as u8).collect();
    stack.file.as_ref().write_all(&data)?;
    let prefix = data[..UploadInput::SNIFF_LEN].to_vec();
    let input = UploadInput::file("样例.bin".as_ref(), None, data.len() as u64, prefix)?;
    let boundary =
        Boundary::from_entropy((u128::from(seed()) << 64 | u128::from(seed())).to_le_bytes());
    let op = input.upload_media(MediaType::File, boundary, &Limits::default())?;
    let mut upload = CallTask::new(op, base.clone(), policy, seed(), Lane::Media);
    let uploaded = stack.run(&mut upload, &mut io::sink())?;
    println!("uploaded {} as {}", input.filename, uploaded.media_id);

    let download =
        |id, options| DownloadTask::new(id, options, MAX_CHUNK_SIZE, base.clone(), policy, seed());
    let (mut back, in_memory) = (Vec::new(), DownloadOptions::default().max_len(2_000_000));
    stack.run(&mut download(uploaded.media_id, in_memory)?, &mut back)?;
    if back != data {
        return Err("the bytes downloaded back differ from the upload".into());
    }
    println!("downloaded {} bytes back, identical", back.len());
    if let [id, ..] = media_id {
        let file = tempfile::NamedTempFile::new()?;
        let mut task = download(MediaId::new(id.as_str()), DownloadOptions::default())?;
        let done = stack.run(&mut task, &mut file.as_file())?;
        let md5 = md5sum::Md5Hex::of(&std::fs::read(file.path())?);
        println!("media {id}: {} bytes, md5 {md5}", done.total);
    }
    Ok(())
}
