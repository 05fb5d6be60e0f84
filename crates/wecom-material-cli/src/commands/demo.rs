//! `demo`: the whole lifecycle against an embedded emulator, with a table of what happened.
//!
//! gettoken; upload an image, a voice, a video and a file (with a Chinese name); get each
//! back and compare bytes; upload-image; upload-by-url of a 45,000,000-byte file that the
//! emulator serves on loopback, wait for the job — the emulator delivers the encrypted
//! job-finished callback to a [`CallbackReceiver`] that feeds the client's `JobEvents`, with
//! polling as the fallback — and fetch the result in Range chunks. Nothing leaves 127.0.0.1.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::{JobId, JobStatus, MediaId, MediaType, PollPolicy};
use wecom_material_mock::{
    CallbackReceiver, Endpoint, MockConfig, MockHandle, MockServer, samples,
};
use wecom_material_ureq::{Client, DownloadOptions, JobEvents, Transfer, Upload};

use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::TransferBar;

/// Size of the file fetched by the async upload.
pub(crate) const BIG_FILE_BYTES: usize = 45_000_000;

/// The demo app's callback `Token` and `EncodingAESKey` (loopback only; never printed).
const CALLBACK_TOKEN: &str = "wecom-material-demo";
const CALLBACK_AES_KEY: &str = "d2Vjb20tbWF0ZXJpYWwgZGVtbyBjYWxsYmFjayBrZXk";

/// The fallback: poll at once, then every 10 s. The job ends well within that, so the poll
/// that ends the wait is the one its callback triggers.
const FALLBACK_POLLS: PollPolicy = PollPolicy {
    first_interval: Duration::from_secs(10),
    max_interval: Duration::from_secs(10),
    max_consecutive_errors: 3,
};

/// What the callback receiver hands events to, once the client exists.
struct Feed {
    events: JobEvents,
    mock: MockHandle,
    /// Each job-finished event: its job and how many job-result queries the emulator had
    /// answered when it arrived.
    arrivals: Mutex<Vec<(JobId, usize)>>,
}

impl Feed {
    fn on_event(&self, event: &CallbackEvent) {
        if let Some(job) = event.job_id() {
            let queries = self.mock.count(Endpoint::GetUploadByUrlResult);
            self.arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((job.clone(), queries));
        }
        self.events.notify(event);
    }

    /// Job-result queries answered when the first event for `job` arrived.
    fn arrival(&self, job: &JobId) -> Option<usize> {
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(j, _)| j == job)
            .map(|(_, queries)| *queries)
    }
}

/// One line of the table.
struct Row {
    step: &'static str,
    detail: String,
    result: String,
    elapsed: Duration,
}

/// Runs the demo and prints the table.
pub(crate) fn run(out: Output) -> Result<(), Failure> {
    let started = Instant::now();
    // The app's callback endpoint starts first (the emulator delivers to its URL); it gets the
    // client's event handle once the client exists.
    let feed: Arc<OnceLock<Feed>> = Arc::default();
    let corp_id = MockConfig::default().apps[0].corp_id.clone();
    let receiver = {
        let feed = feed.clone();
        CallbackReceiver::start(CALLBACK_TOKEN, CALLBACK_AES_KEY, corp_id, move |event| {
            if let Some(feed) = feed.get() {
                feed.on_event(event);
            }
        })
        .map_err(|e| Failure::other(format!("starting the callback receiver: {e}")))?
    };
    let mock = MockServer::try_start(MockConfig {
        callback: Some(receiver.target()),
        ..MockConfig::default()
    })
    .map_err(|e| Failure::other(format!("starting the emulator: {e}")))?;
    let config = &mock.config().apps[0];
    let client = Client::builder(config.corp_id.clone(), config.secret.clone())
        .base_url(&mock.base_url())
        .map_err(|e| Failure::Wecom(e.into()))?
        .job_poll_policy(FALLBACK_POLLS)
        .build();
    let feed = feed.get_or_init(|| Feed {
        events: client.job_events(),
        mock: mock.handle().clone(),
        arrivals: Mutex::new(Vec::new()),
    });
    out.note(&format!("emulator at {}", mock.base_url()));
    out.note(&format!("callback receiver at {}", receiver.url()));
    let mut rows = Vec::new();
    let fail = |step: &str, what: String| Failure::other(format!("demo step {step}: {what}"));

    // Temporary media: one of each type, back and compared.
    let samples: [(MediaType, &str, Bytes); 4] = [
        (
            MediaType::Image,
            "photo.jpg",
            Bytes::from(samples::jpeg(2_070)),
        ),
        (
            MediaType::Voice,
            "hello.amr",
            Bytes::from(samples::amr(1_606)),
        ),
        (
            MediaType::Video,
            "clip.mp4",
            Bytes::from(samples::mp4(4_128)),
        ),
        (
            MediaType::File,
            "季度报告.txt",
            Bytes::from("第一季度：素材上传、下载与异步任务。\n".repeat(20)),
        ),
    ];
    let mut first = true;
    for (media_type, name, bytes) in samples {
        let t = Instant::now();
        let uploaded = client.upload(
            media_type,
            Upload::bytes(name, bytes.clone()),
            Transfer::default(),
        )?;
        if first {
            first = false;
            let tokens = mock.count(Endpoint::GetToken);
            rows.push(Row {
                step: "gettoken",
                detail: "on the first call".into(),
                result: format!("{tokens} request"),
                elapsed: t.elapsed(),
            });
        }
        rows.push(Row {
            step: "upload",
            detail: format!("{media_type} {name} ({})", output::size(bytes.len() as u64)),
            result: short(uploaded.media_id.as_str()),
            elapsed: t.elapsed(),
        });
        let t = Instant::now();
        let media = client.get(&uploaded.media_id, DownloadOptions::default())?;
        if media.bytes != bytes {
            return Err(fail("get", format!("{name}: the bytes differ")));
        }
        rows.push(Row {
            step: "get",
            detail: format!("{} ({})", media.info.filename, media.info.content_type),
            result: "same bytes".into(),
            elapsed: t.elapsed(),
        });
    }

    let t = Instant::now();
    let image = client.upload_image(
        Upload::bytes("logo.png", Bytes::from(samples::png(1_057))),
        Transfer::default(),
    )?;
    rows.push(Row {
        step: "upload-image",
        detail: "logo.png".into(),
        result: image.url.replace(&mock.base_url(), ""),
        elapsed: t.elapsed(),
    });

    // The async upload of a big file served by the emulator itself.
    let t = Instant::now();
    let big = Bytes::from(samples::mp4(BIG_FILE_BYTES));
    let md5 = Md5Hex::of(&big);
    let url = mock.serve_file("demo/welcome.mp4", big.clone(), true);
    let job = client.upload_by_url(MediaType::Video, "welcome.mp4", &url, &md5)?;
    rows.push(Row {
        step: "upload-by-url",
        detail: format!(
            "welcome.mp4 ({}) from {}",
            output::size(big.len() as u64),
            url.replace(&mock.base_url(), "")
        ),
        result: short(job.jobid.as_str()),
        elapsed: t.elapsed(),
    });
    let t = Instant::now();
    let before = mock.count(Endpoint::GetUploadByUrlResult);
    let status = client.wait_job(&job.jobid, Instant::now() + Duration::from_secs(120))?;
    let polls = mock.count(Endpoint::GetUploadByUrlResult) - before;
    let media_id = match status {
        JobStatus::Finished { media_id, .. } => media_id,
        other => return Err(fail("job", format!("ended as {other:?}"))),
    };
    let detail = match feed.arrival(&job.jobid).map(|q| q.saturating_sub(before)) {
        // The event came in after `n` polls, and the wait ended with the one poll after it.
        Some(n) if n + 1 == polls => format!("callback after {n} {}", plural(n, "poll")),
        Some(_) => format!(
            "{polls} {} (the callback came later)",
            plural(polls, "poll")
        ),
        None => format!("{polls} {}, no callback", plural(polls, "poll")),
    };
    rows.push(Row {
        step: "job",
        detail,
        result: format!("finished: {}", short(media_id.as_str())),
        elapsed: t.elapsed(),
    });
    let t = Instant::now();
    let before = mock.count(Endpoint::Get);
    let (bytes, digest) = fetch_hashing(&client, &media_id, out)?;
    let requests = mock.count(Endpoint::Get) - before;
    if bytes != big.len() as u64 || digest != md5 {
        return Err(fail("get", "the big file differs".into()));
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    rows.push(Row {
        step: "get (ranges)",
        detail: format!(
            "{} in {requests} requests ({:.0} MB/s)",
            output::size(bytes),
            bytes as f64 / 1e6 / secs
        ),
        result: "same MD5".into(),
        elapsed: t.elapsed(),
    });
    let tokens = mock.count(Endpoint::GetToken);
    let total = started.elapsed();

    if out.json {
        let steps: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "step": r.step,
                    "detail": r.detail,
                    "result": r.result,
                    "ms": r.elapsed.as_millis() as u64,
                })
            })
            .collect();
        out.emit(
            json!({ "steps": steps, "gettoken_calls": tokens, "ms": total.as_millis() as u64 }),
            String::new,
        );
    } else {
        out.emit(json!(null), || table(&rows, tokens, total));
    }
    Ok(())
}

/// Downloads into an MD5 writer; returns the size and digest.
fn fetch_hashing(
    client: &Client,
    media_id: &MediaId,
    out: Output,
) -> Result<(u64, String), Failure> {
    struct HashWriter(Md5Hex, u64);
    impl Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.update(buf);
            self.1 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Md5Hex::new(), 0);
    let bar = TransferBar::shared("get welcome.mp4", out);
    let result = client.download(
        media_id,
        &mut writer,
        DownloadOptions::default(),
        Transfer::default().with_progress(bar.observer()),
    );
    if let Err(e) = result {
        bar.abandon();
        return Err(e.into());
    }
    bar.finish(writer.1, 0);
    Ok((writer.1, writer.0.finish()))
}

fn table(rows: &[Row], tokens: usize, total: Duration) -> String {
    let width = |f: fn(&Row) -> usize, title: &str| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(title.chars().count())
    };
    let w_step = width(|r| r.step.chars().count(), "step");
    let w_detail = width(|r| display_width(&r.detail), "detail");
    let w_result = width(|r| r.result.chars().count(), "result");
    let mut s = String::new();
    let line = |s: &mut String, a: &str, b: &str, c: &str, d: &str| {
        let pad_b = w_detail.saturating_sub(display_width(b));
        s.push_str(&format!(
            "{a:<w_step$}  {b}{}  {c:<w_result$}  {d:>8}\n",
            " ".repeat(pad_b)
        ));
    };
    line(&mut s, "step", "detail", "result", "ms");
    line(
        &mut s,
        &"-".repeat(w_step),
        &"-".repeat(w_detail),
        &"-".repeat(w_result),
        "--------",
    );
    for r in rows {
        line(
            &mut s,
            r.step,
            &r.detail,
            &r.result,
            &r.elapsed.as_millis().to_string(),
        );
    }
    s.push_str(&format!(
        "\n{tokens} gettoken call for the whole run; total {} ms. Everything above ran against 127.0.0.1.",
        total.as_millis()
    ));
    s
}

/// `word` or `words`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// Terminal columns of a text: CJK characters take two.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if ('\u{1100}'..='\u{ffdc}').contains(&c) && c > '\u{2e7f}' {
                2
            } else {
                1
            }
        })
        .sum()
}

/// The first and last characters of a long id.
fn short(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 24 {
        return id.to_owned();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}
