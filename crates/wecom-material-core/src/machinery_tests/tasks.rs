//! The policy scenarios of whole operations, run once, in the core, at virtual time: each
//! task is driven by the in-memory transport of `support` against a scripted server, and
//! each test checks the exact requests sent, the bytes on the wire and in the sink, and the
//! typed result.

use crate::error::OperationKind;
use std::path::Path;
use std::time::{Duration, Instant};

use super::names::{
    Action, BaseUrl, Boundary, CallTask, DownloadOptions, DownloadTask, ErrCode, Error, Event,
    Exchange, GetUploadByUrlResult, Invalid, JobId, JobStatus, JobWaitTask, LaneId, Limits,
    MAX_CHUNK_SIZE, MAX_JSON_RESPONSE, MediaId, MediaType, PollPolicy, RetryPolicy, Sent, Task,
    Timeouts, TransportError, UploadInput, UploadMedia,
};
use super::support::{
    Cut, Note, Reply, Server, Transport, client, errcode, json, media_range, media_whole, token,
    uploaded,
};

const UPLOAD: &str = "POST /cgi-bin/media/upload token=";
const GET: &str = "GET /cgi-bin/media/get token=";

fn base() -> BaseUrl {
    BaseUrl::parse("http://127.0.0.1:1").unwrap()
}

/// Deterministic bytes that are not a pattern a bug could reproduce by accident.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An upload of `payload` as type `file` named `样例.bin`, streamed by the transport.
fn upload_of(input: &UploadInput) -> (CallTask<UploadMedia>, Vec<u8>) {
    let op = input
        .upload_media(
            MediaType::File,
            Boundary::new("tasks-test-boundary").unwrap(),
            &Limits::default(),
        )
        .unwrap();
    let framing = op.body().clone();
    let task = CallTask::new(op, base(), RetryPolicy::default(), 7, Timeouts::Media);
    (task, framing.head.to_vec())
}

fn file_upload(payload: &[u8]) -> (CallTask<UploadMedia>, Vec<u8>) {
    let input = UploadInput::file(
        Path::new("/data/样例.bin"),
        None,
        payload.len() as u64,
        payload[..16].to_vec(),
    )
    .unwrap();
    wire_of(&input, payload)
}

/// The task and the exact body it must put on the wire.
fn wire_of(input: &UploadInput, payload: &[u8]) -> (CallTask<UploadMedia>, Vec<u8>) {
    let (task, mut wire) = upload_of(input);
    wire.extend_from_slice(payload);
    wire.extend_from_slice(&task.operation().body().tail);
    (task, wire)
}

fn download(media_id: &str, options: DownloadOptions) -> DownloadTask {
    DownloadTask::from_parts(
        MediaId::new(media_id),
        options,
        MAX_CHUNK_SIZE,
        base(),
        RetryPolicy::default(),
        11,
    )
    .unwrap()
}

fn api_code(error: &Error) -> Option<i64> {
    error.errcode().map(ErrCode::code)
}

// ---- JSON calls: busy, token, throttling, replay ----

#[test]
fn busy_minus_one_is_retried_after_a_backoff_then_succeeds() {
    let payload = noise(1000, 1);
    let server = Server::scripted([token("T1")], [errcode(-1), uploaded("M1")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, wire) = file_upload(&payload);

    let uploaded = t.run(&mut task, &mut state).unwrap();

    assert_eq!(uploaded.media_id, MediaId::new("M1"));
    assert_eq!(uploaded.media_type, MediaType::File);
    assert_eq!(
        t.server.lines(),
        ["gettoken", &format!("{UPLOAD}T1"), &format!("{UPLOAD}T1")]
    );
    assert_eq!(t.server.bodies(UPLOAD), [&wire[..], &wire[..]]);
    assert_eq!(t.server.seen[1].lane, Timeouts::Media);
    // One backoff of base (200 ms) plus a jitter below base; not wakeable.
    let waits = t.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(!waits[0].1);
    assert!(
        waits[0].0 >= Duration::from_millis(200) && waits[0].0 < Duration::from_millis(400),
        "{waits:?}"
    );
    assert_eq!(t.server.seen[2].at, waits[0].0);
}

#[test]
fn busy_forever_ends_after_four_attempts_with_the_api_error() {
    let payload = noise(1000, 2);
    let server = Server::scripted([token("T1")], (0..4).map(|_| errcode(-1)));
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, wire) = file_upload(&payload);

    let error = t.run(&mut task, &mut state).unwrap_err();

    assert!(
        matches!(&error, Error::Api(e) if e.code == ErrCode::SystemBusy),
        "{error:?}"
    );
    assert_eq!(t.server.bodies(UPLOAD), [&wire[..]; 4]);
    assert_eq!(t.server.lines().len(), 5);
    // Three backoffs, each at least twice the one before (200, 400, 800 ms + jitter < 200).
    let waits: Vec<Duration> = t.waits().into_iter().map(|(d, _)| d).collect();
    assert_eq!(waits.len(), 3);
    for (wait, floor) in waits.iter().zip([200u64, 400, 800]) {
        let floor = Duration::from_millis(floor);
        assert!(
            *wait >= floor && *wait < floor + Duration::from_millis(200),
            "{waits:?}"
        );
    }
}

/// `RetryPolicy::no_retries`: a busy answer and a transport failure each end the call at
/// once (one attempt, no backoff).
#[test]
fn without_retries_busy_and_transport_failures_end_the_call_at_once() {
    let payload = noise(1000, 2);
    let input =
        UploadInput::file(Path::new("/d/x.bin"), None, 1000, payload[..16].to_vec()).unwrap();
    let op = |input: &UploadInput| {
        input
            .upload_media(
                MediaType::File,
                Boundary::new("b-no-retries").unwrap(),
                &Limits::default(),
            )
            .unwrap()
    };
    let call = |op| CallTask::new(op, base(), RetryPolicy::no_retries(), 7, Timeouts::Media);

    let server = Server::scripted([token("T1")], [errcode(-1), uploaded("M1")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let error = t.run(&mut call(op(&input)), &mut client()).unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code == ErrCode::SystemBusy),
        "{error:?}"
    );
    assert_eq!(t.server.bodies(UPLOAD).len(), 1);
    assert!(t.waits().is_empty(), "no backoff");

    let failed = Reply::Fail(TransportError::not_sent("refused"));
    let server = Server::scripted([token("T1")], [failed, uploaded("M1")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let error = t.run(&mut call(op(&input)), &mut client()).unwrap_err();
    assert!(matches!(&error, Error::Transport(_)), "{error:?}");
    assert!(t.waits().is_empty(), "no backoff");

    // A busy gettoken too: one request, the busy error.
    let server = Server::scripted([errcode(-1), token("T1")], [uploaded("M1")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let error = t.run(&mut call(op(&input)), &mut client()).unwrap_err();
    assert!(
        matches!(&error, Error::Api(e) if e.code == ErrCode::SystemBusy),
        "{error:?}"
    );
    assert_eq!(t.server.lines(), ["gettoken"]);
}

/// An upload task reports its payload progress (what the frames of the current attempt
/// sent, of the whole payload) for `media/upload` and `media/uploadimg` alike; a JSON call
/// has none.
#[test]
fn an_upload_task_reports_its_payload_progress() {
    let payload = noise(1000, 2);
    let input = UploadInput::bytes("a.png", bytes::Bytes::from(payload.clone()));
    let image = input
        .upload_image(
            Boundary::new("b-progress").unwrap(),
            &super::names::Limits::relaxed(),
        )
        .unwrap();
    let image = CallTask::new(image, base(), RetryPolicy::default(), 7, Timeouts::Media);
    let expected = Some(super::names::Progress {
        done: 0,
        total: Some(1000),
    });
    assert_eq!(image.progress(), expected);
    let (upload, _) = file_upload(&payload);
    assert_eq!(upload.progress(), expected);
    let job = GetUploadByUrlResult::new(JobId::new("J1")).unwrap();
    let job = CallTask::new(job, base(), RetryPolicy::default(), 7, Timeouts::Json);
    assert_eq!(job.progress(), None);
}

#[test]
fn expired_token_42001_refreshes_once_and_resends_the_upload_byte_identical() {
    let payload = noise(5000, 3);
    let server = Server::scripted([token("T1"), token("T2")], [errcode(42001), uploaded("M2")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, wire) = file_upload(&payload);

    let uploaded = t.run(&mut task, &mut state).unwrap();

    assert_eq!(uploaded.media_id, MediaId::new("M2"));
    assert_eq!(
        t.server.lines(),
        [
            "gettoken",
            &format!("{UPLOAD}T1"),
            "gettoken",
            &format!("{UPLOAD}T2")
        ]
    );
    let bodies = t.server.bodies(UPLOAD);
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], &wire[..]);
    assert_eq!(t.source.as_ref().unwrap().reads, 2);
    assert!(t.waits().is_empty(), "a refresh does not back off");
    assert_eq!(state.tokens.generation(), 2);
}

#[test]
fn a_second_token_rejection_ends_the_call_after_one_refresh() {
    let payload = noise(1000, 4);
    let server = Server::scripted([token("T1"), token("T2")], [errcode(42001), errcode(40014)]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, _) = file_upload(&payload);

    let error = t.run(&mut task, &mut state).unwrap_err();

    assert_eq!(api_code(&error), Some(40014));
    assert_eq!(t.server.lines().len(), 4);
}

#[test]
fn throttled_45009_is_rate_limited_at_once_without_retry() {
    let payload = noise(1000, 5);
    let server = Server::scripted([token("T1")], [errcode(45009)]);
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, _) = file_upload(&payload);

    let error = t.run(&mut task, &mut state).unwrap_err();

    assert!(
        matches!(&error, Error::RateLimited(e) if e.code == ErrCode::RateLimited),
        "{error:?}"
    );
    assert_eq!(t.server.lines(), ["gettoken", &format!("{UPLOAD}T1")]);
    assert!(t.waits().is_empty());
    assert_eq!(t.elapsed(), Duration::ZERO);
}

#[test]
fn a_one_shot_payload_is_never_resent() {
    let payload = noise(1000, 6);
    for (reply, cause) in [
        (errcode(-1), Some(-1)),
        (errcode(42001), Some(42001)),
        (Reply::Fail(TransportError::maybe_sent("reset")), None),
    ] {
        let server = Server::scripted([token("T1")], [reply]);
        // The transport's source panics when read twice: the assertion is in `support`.
        let mut t = Transport::new(server).with_source(payload.clone());
        let mut state = client();
        let input = UploadInput::reader("样例.bin", payload.len() as u64);
        let (mut task, wire) = wire_of(&input, &payload);

        let error = t.run(&mut task, &mut state).unwrap_err();

        let Error::NotReplayable(inner) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(api_code(inner), cause, "{inner:?}");
        if cause.is_none() {
            assert!(matches!(**inner, Error::Transport(_)), "{inner:?}");
        }
        assert_eq!(t.server.bodies(UPLOAD), [&wire[..]]);
        assert_eq!(t.source.as_ref().unwrap().reads, 1);
        assert!(t.waits().is_empty());
    }
}

#[test]
fn a_transport_failure_on_send_is_retried_with_the_same_body() {
    let payload = noise(2000, 7);
    let server = Server::scripted(
        [token("T1")],
        [
            Reply::Fail(TransportError::not_sent("connection refused")),
            uploaded("M3"),
        ],
    );
    let mut t = Transport::new(server).with_source(payload.clone());
    let mut state = client();
    let (mut task, wire) = file_upload(&payload);

    assert_eq!(
        t.run(&mut task, &mut state).unwrap().media_id,
        MediaId::new("M3")
    );
    assert_eq!(t.server.bodies(UPLOAD), [&wire[..], &wire[..]]);
}

#[test]
fn validation_errors_are_typed_and_no_task_exists_to_send_anything() {
    let limits = Limits::default();
    let boundary = || Boundary::new("b").unwrap();
    // Voice must be .amr and start with #!AMR.
    let input = UploadInput::file(Path::new("/x/a.mp3"), None, 100, b"ID3xxxxx".to_vec()).unwrap();
    assert!(matches!(
        input.upload_media(MediaType::Voice, boundary(), &limits),
        Err(Error::Invalid(Invalid::ExtensionMismatch { .. }))
    ));
    // Files must be larger than 5 bytes.
    let input = UploadInput::file(Path::new("/x/a.bin"), None, 5, b"12345".to_vec()).unwrap();
    assert!(matches!(
        input.upload_media(MediaType::File, boundary(), &limits),
        Err(Error::Invalid(Invalid::TooSmall { size: 5, .. }))
    ));
    // A name that cannot go into a header.
    let input = UploadInput::reader("a\r\n.bin", 100);
    assert!(matches!(
        input.upload_media(MediaType::File, boundary(), &limits),
        Err(Error::Invalid(Invalid::FilenameControlChar { .. }))
    ));
    // Downloads: an empty id, a chunk size over WeCom's maximum.
    let options = DownloadOptions::default();
    for (id, chunk) in [("", MAX_CHUNK_SIZE), ("m", MAX_CHUNK_SIZE + 1), ("m", 0)] {
        let error = DownloadTask::from_parts(
            MediaId::new(id),
            options.clone(),
            chunk,
            base(),
            RetryPolicy::default(),
            1,
        )
        .unwrap_err();
        assert!(error.is_invalid(), "{error:?}");
    }
    let error = JobWaitTask::from_parts(
        JobId::new(""),
        Instant::now(),
        PollPolicy::default(),
        base(),
        RetryPolicy::default(),
        1,
    )
    .unwrap_err();
    assert!(matches!(
        error,
        Error::Invalid(Invalid::EmptyField { field: "jobid" })
    ));
}

// ---- downloads ----

#[test]
fn a_small_media_downloads_whole_into_the_sink() {
    let media = noise(300_000, 8);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.buffer = 64 * 1024;
    let mut state = client();
    let mut task = download("m1", DownloadOptions::default());

    let done = t.run(&mut task, &mut state).unwrap();

    assert_eq!(t.sink, media);
    assert_eq!((done.bytes_written, done.total), (300_000, 300_000));
    assert_eq!(done.info.filename, "a.bin");
    assert_eq!(t.server.lines(), ["gettoken", &format!("{GET}T1")]);
    assert_eq!(t.server.seen[1].lane, Timeouts::Media);
    assert_eq!(t.count(Note::Flush), 1);
    assert_eq!(task.progress().unwrap().done, 300_000);
}

/// Each request of a download draws its own backoff jitter: chunks refused once each with
/// -1 wait different times (a fleet's retries do not line up).
#[test]
fn each_request_of_a_download_draws_its_own_jitter() {
    let media = noise(300, 5);
    let mut refused = std::collections::HashSet::new();
    let served = media.clone();
    let server = Server::with([token("T1")], move |seen| {
        if refused.insert(seen.line.clone()) {
            return errcode(-1);
        }
        match seen.line.split_once(" range=") {
            None => errcode(830002),
            Some((_, range)) => {
                let (first, last) = super::support::parse_range(range);
                media_range(&served, first, last.min(served.len() - 1))
            }
        }
    });
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = DownloadTask::from_parts(
        MediaId::new("m"),
        DownloadOptions::default(),
        100,
        base(),
        RetryPolicy::default(),
        11,
    )
    .unwrap();
    t.run(&mut task, &mut state).unwrap();
    assert_eq!(t.sink, media);
    // The whole request and three chunks, each refused once.
    let waits: std::collections::BTreeSet<_> = t.waits().into_iter().map(|w| w.0).collect();
    assert_eq!(t.waits().len(), 4, "{:?}", t.waits());
    assert_eq!(waits.len(), 4, "{waits:?}");
}

/// The gettoken answer is the call's, never media, whatever content type it came with (a
/// proxy may label it anything): only the media's bytes reach the sink.
#[test]
fn a_gettoken_answer_labelled_as_media_is_still_the_calls() {
    let media = noise(1000, 3);
    let body = r#"{"errcode":0,"errmsg":"ok","access_token":"T1","expires_in":7200}"#;
    let labelled = super::support::answer(
        200,
        &[("content-type", "image/jpeg".into())],
        body.as_bytes(),
    );
    let server = Server::scripted([labelled], [media_whole(&media)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let done = t
        .run(&mut download("m1", DownloadOptions::default()), &mut state)
        .unwrap();
    assert_eq!((t.sink.as_slice(), done.total), (&media[..], 1000));
    assert_eq!(t.server.lines(), ["gettoken", &format!("{GET}T1")]);
}

/// A client state holding a valid token `T` (imported, as from a shared store), at `now`.
fn client_with_token(now: Instant) -> super::names::ClientState {
    let wall = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_536_800);
    let mut state = client();
    let stored = crate::StoredToken {
        access_token: "T".into(),
        expires_at_unix: 1_796_536_800 + 7200,
        generation: 1,
    };
    assert!(state.import_token(stored, now, wall));
    state
}

/// A call task's business request that fails on the network is retried after a backoff;
/// it refreshed nothing, so it wakes nobody. A head where the body was due is a misuse
/// naming what was due, and a poll after the end names the end.
#[test]
fn a_call_task_wakes_only_for_a_refresh_and_names_what_was_due() {
    let now = Instant::now();
    let mut state = client_with_token(now);
    let job = || GetUploadByUrlResult::new(JobId::new("J2")).unwrap();
    let mut call = CallTask::new(job(), base(), RetryPolicy::default(), 1, Timeouts::Json);
    assert!(call.poll(now, &mut state).into_send().is_some());
    let failed = Event::TransportFailed(TransportError::maybe_sent("reset"));
    call.on_event(now, &mut state, LaneId::MAIN, failed);
    assert!(
        call.poll(now, &mut state).into_wait().is_some(),
        "a backoff, no wake-up"
    );

    let mut call = CallTask::new(job(), base(), RetryPolicy::default(), 1, Timeouts::Json);
    assert!(call.poll(now, &mut state).into_send().is_some());
    let head = || http::Response::new(()).into_parts().0;
    call.on_event(now, &mut state, LaneId::MAIN, Event::Head(head()));
    assert!(matches!(
        call.poll(now, &mut state),
        Action::Exchange(_, Exchange::ReadBody { .. })
    ));
    call.on_event(now, &mut state, LaneId::MAIN, Event::Head(head()));
    let Action::Done(Err(error)) = call.poll(now, &mut state) else {
        panic!("a misuse");
    };
    assert!(
        error.to_string().contains("Body, TransportFailed or Local"),
        "{error}"
    );
    let Action::Done(Err(error)) = call.poll(now, &mut state) else {
        panic!("still over");
    };
    assert!(error.to_string().contains("the task had ended"), "{error}");

    // The same after a call that ended by itself (here: no retries, the network failed).
    let policy = RetryPolicy::no_retries();
    let mut call = CallTask::new(job(), base(), policy, 1, Timeouts::Json);
    assert!(call.poll(now, &mut state).into_send().is_some());
    let failed = Event::TransportFailed(TransportError::maybe_sent("reset"));
    call.on_event(now, &mut state, LaneId::MAIN, failed);
    let Action::Done(Err(Error::Transport(_))) = call.poll(now, &mut state) else {
        panic!("the network's failure");
    };
    let Action::Done(Err(error)) = call.poll(now, &mut state) else {
        panic!("still over");
    };
    assert!(error.to_string().contains("the task had ended"), "{error}");
}

#[test]
fn media_too_large_830002_switches_to_ranges_of_at_most_20_mb() {
    let len = 45_000_001;
    let media = noise(len, 9);
    let mut t = Transport::new(Server::media([token("T1")], media.clone(), 20_000_000));
    t.buffer = 4 << 20;
    let mut state = client();
    let mut task = download("big", DownloadOptions::default());

    let done = t.run(&mut task, &mut state).unwrap();

    assert!(t.sink == media, "the sink differs from the media");
    assert_eq!((done.bytes_written, done.total), (len as u64, len as u64));
    assert_eq!(
        t.server.lines(),
        [
            "gettoken",
            &format!("{GET}T1"),
            &format!("{GET}T1 range=bytes=0-19999999"),
            &format!("{GET}T1 range=bytes=20000000-39999999"),
            &format!("{GET}T1 range=bytes=40000000-45000000"),
        ]
    );
    assert_eq!(t.count(Note::Flush), 1);
}

#[test]
fn a_body_that_ends_early_resumes_from_the_byte_reached() {
    let media = noise(10_000, 10);
    let server = Server::scripted(
        [token("T1")],
        [
            media_whole(&media).cut(Cut::EndAfter(4_000)),
            media_range(&media, 4_000, 9_999).cut(Cut::FailAfter(2_500)),
            media_range(&media, 6_500, 9_999),
        ],
    );
    let mut t = Transport::new(server);
    t.buffer = 1_000;
    let mut state = client();
    let mut task = download("m2", DownloadOptions::default());

    let done = t.run(&mut task, &mut state).unwrap();

    assert_eq!(t.sink, media);
    assert_eq!(done.bytes_written, 10_000);
    assert_eq!(
        t.server.lines(),
        [
            "gettoken",
            &format!("{GET}T1"),
            &format!("{GET}T1 range=bytes=4000-9999"),
            &format!("{GET}T1 range=bytes=6500-9999"),
        ]
    );
}

#[test]
fn five_attempts_without_progress_end_the_download_with_a_typed_stall() {
    let media = noise(1_000, 11);
    let server = Server::scripted(
        [token("T1")],
        [
            media_whole(&media).cut(Cut::EndAfter(0)),
            media_range(&media, 0, 999).cut(Cut::FailAfter(0)),
            media_range(&media, 0, 999).cut(Cut::EndAfter(0)),
            media_range(&media, 0, 999).cut(Cut::FailAfter(0)),
            media_range(&media, 0, 999).cut(Cut::EndAfter(0)),
            media_range(&media, 0, 999),
        ],
    );
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m3", DownloadOptions::default());

    let error = t.run(&mut task, &mut state).unwrap_err();

    let Error::Stalled(stall) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(stall.offset, 0);
    let Some(Error::Transport(cause)) = stall.last.as_deref() else {
        panic!("{stall:?}");
    };
    assert_eq!(cause.sent, Sent::Maybe);
    assert!(cause.message.contains("1000 bytes early"), "{cause:?}");
    assert_eq!(t.server.lines().len(), 6, "{:?}", t.server.lines());
    assert!(t.sink.is_empty());
    assert_eq!(t.count(Note::Flush), 1, "flushed before the error");
}

#[test]
fn an_error_head_on_http_200_is_never_written_to_the_sink() {
    let media = noise(2_000, 12);
    let server = Server::scripted(
        [token("T1"), token("T2")],
        [errcode(42001), errcode(-1), media_whole(&media)],
    );
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m4", DownloadOptions::default());

    t.run(&mut task, &mut state).unwrap();

    assert_eq!(t.sink, media, "only the media reached the sink");
    assert_eq!(
        t.server.lines(),
        [
            "gettoken",
            &format!("{GET}T1"),
            "gettoken",
            &format!("{GET}T2"),
            &format!("{GET}T2"),
        ]
    );

    // A fatal error answer: nothing in the sink, the typed error, one flush.
    let server = Server::scripted([token("T1")], [errcode(40007)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("gone", DownloadOptions::default());
    let error = t.run(&mut task, &mut state).unwrap_err();
    assert_eq!(api_code(&error), Some(40007));
    assert!(t.sink.is_empty());
    assert_eq!(t.count(Note::Flush), 1);
}

#[test]
fn an_error_answer_is_read_only_up_to_the_json_limit() {
    let huge = format!(
        r#"{{"errcode":-1,"errmsg":"{}"}}"#,
        "x".repeat(MAX_JSON_RESPONSE)
    );
    let server = Server::scripted([token("T1")], [json(&huge)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m5", DownloadOptions::default());

    let error = t.run(&mut task, &mut state).unwrap_err();

    assert!(matches!(error, Error::Decode(_)), "{error:?}");
    assert!(t.sink.is_empty());
    assert_eq!(t.server.lines().len(), 2, "a local failure is not retried");
}

#[test]
fn the_in_memory_limit_refuses_a_larger_media_before_its_body() {
    let media = noise(5_000, 13);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m6", DownloadOptions::default().max_len(4_999));

    let error = t.run(&mut task, &mut state).unwrap_err();

    let Error::Decode(decode) = &error else {
        panic!("{error:?}");
    };
    assert!(decode.reason.contains("5000 bytes"), "{decode:?}");
    assert!(t.sink.is_empty(), "no body byte was streamed");
    assert_eq!(t.server.lines().len(), 2);

    // At the limit exactly, it downloads.
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m6", DownloadOptions::default().max_len(5_000));
    assert_eq!(t.run(&mut task, &mut state).unwrap().bytes_written, 5_000);
    assert_eq!(t.sink, media);
}

#[test]
fn a_resumed_download_asks_for_the_rest_only() {
    let media = noise(3_000, 14);
    let server = Server::scripted([token("T1")], [media_range(&media, 1_200, 2_999)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("m7", DownloadOptions::default().resume_from(1_200));

    let done = t.run(&mut task, &mut state).unwrap();

    assert_eq!(t.sink, &media[1_200..]);
    assert_eq!((done.bytes_written, done.total), (1_800, 3_000));
    assert_eq!(
        t.server.lines(),
        // The size is not known yet: the first range is a whole chunk from the offset.
        ["gettoken", &format!("{GET}T1 range=bytes=1200-20001199")]
    );
}

#[test]
fn hd_voice_uses_the_jssdk_endpoint() {
    let media = noise(100, 15);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = download("v1", DownloadOptions::default().hd_voice());
    t.run(&mut task, &mut state).unwrap();
    assert_eq!(t.server.lines()[1], "GET /cgi-bin/media/get/jssdk token=T1");
}

#[test]
fn cancel_mid_download_flushes_and_counts_the_bytes_in_the_sink() {
    let media = noise(50_000, 16);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.buffer = 4_096;
    t.cancel_at = Some(20_000);
    let mut state = client();
    let mut task = download("m8", DownloadOptions::default());

    let error = t.run(&mut task, &mut state).unwrap_err();

    let Error::Cancelled {
        bytes: bytes_written,
        operation: OperationKind::Download,
        ..
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(bytes_written, t.sink.len() as u64);
    assert_eq!(
        bytes_written, 20_480,
        "five buffers of 4096 reached the sink"
    );
    assert_eq!(t.sink, &media[..20_480]);
    assert_eq!(t.count(Note::Flush), 1);
    assert_eq!(t.server.lines().len(), 2);
}

#[test]
fn cancel_while_waiting_for_the_token_hands_the_refresh_back() {
    let mut state = client();
    let now = Instant::now();
    let mut task = download("m9", DownloadOptions::default());
    assert!(matches!(
        task.poll(now, &mut state),
        Action::Exchange(_, Exchange::Send { .. })
    ));
    assert!(state.tokens.is_refreshing(now));
    task.cancel(&mut state);
    assert!(
        !state.tokens.is_refreshing(now),
        "the ticket was handed back"
    );
    assert!(
        matches!(task.poll(now, &mut state), Action::Wait { until: None, .. }),
        "the outstanding step is still to be reported"
    );
    let late = Event::TransportFailed(TransportError::maybe_sent("cancelled"));
    task.on_event(now, &mut state, LaneId::MAIN, late);
    assert!(matches!(task.poll(now, &mut state), Action::WakeOthers));
    assert!(matches!(
        task.poll(now, &mut state),
        Action::Exchange(_, Exchange::FlushSink)
    ));
    task.on_event(now, &mut state, LaneId::MAIN, Event::Flushed(None));
    let Action::Done(Err(Error::Cancelled { bytes: 0, .. })) = task.poll(now, &mut state) else {
        panic!("cancelled");
    };
}

#[test]
fn a_failed_flush_is_the_result_of_a_complete_download_but_not_of_a_cancelled_one() {
    let media = noise(100, 17);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.fail_flush = true;
    let mut state = client();
    let mut task = download("m10", DownloadOptions::default());
    let error = t.run(&mut task, &mut state).unwrap_err();
    assert!(matches!(&error, Error::Io { .. }), "{error:?}");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("disk full")), "{error}");

    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.fail_flush = true;
    t.buffer = 10;
    t.cancel_at = Some(30);
    let mut state = client();
    let mut task = download("m10", DownloadOptions::default());
    let error = t.run(&mut task, &mut state).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Cancelled {
                bytes: 30,
                operation: OperationKind::Download,
                ..
            }
        ),
        "{error:?}"
    );
}

// ---- misuse ----

fn misuse_message(error: &Error) -> &str {
    match error {
        Error::Transport(e) if e.message.contains("misuse") || e.message.contains("without") => {
            &e.message
        }
        other => panic!("not a misuse error: {other:?}"),
    }
}

#[test]
fn an_event_that_does_not_answer_the_action_ends_with_a_typed_error() {
    let now = Instant::now();
    let bad_events: Vec<fn() -> Event> = vec![
        || Event::Written(5),
        || Event::BodyEnd,
        || Event::Flushed(None),
        || Event::Body(bytes::Bytes::from_static(b"{}")),
    ];
    for bad in bad_events {
        // A download waiting for the gettoken head.
        let mut state = client();
        let mut task = download("m", DownloadOptions::default());
        assert!(matches!(
            task.poll(now, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        task.on_event(now, &mut state, LaneId::MAIN, bad());
        let result = finish(&mut task, &mut state, now);
        misuse_message(&result.unwrap_err());
        assert!(
            !state.tokens.is_refreshing(now),
            "the refresh was handed back"
        );

        // A JSON call waiting for its head.
        let mut state = client();
        let (mut call, _) = file_upload(&noise(100, 1));
        assert!(matches!(
            call.poll(now, &mut state),
            Action::Exchange(_, Exchange::Send { .. })
        ));
        call.on_event(now, &mut state, LaneId::MAIN, bad());
        misuse_message(&finish(&mut call, &mut state, now).unwrap_err());
    }
}

#[test]
fn streaming_more_than_asked_is_a_misuse_not_a_panic() {
    let media = noise(100, 18);
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.tamper = Some(Box::new(|event| match event {
        Event::Written(n) => Event::Written(n + 1),
        other => other,
    }));
    let mut state = client();
    let mut task = download("m", DownloadOptions::default());
    misuse_message(&t.run(&mut task, &mut state).unwrap_err());
    assert_eq!(t.count(Note::Flush), 1);

    // Written(0) is no progress report either.
    let server = Server::scripted([token("T1")], [media_whole(&media)]);
    let mut t = Transport::new(server);
    t.tamper = Some(Box::new(|event| match event {
        Event::Written(_) => Event::Written(0),
        other => other,
    }));
    let mut state = client();
    let mut task = download("m", DownloadOptions::default());
    misuse_message(&t.run(&mut task, &mut state).unwrap_err());
}

#[test]
fn polling_twice_without_reporting_and_polling_after_done_are_typed_errors() {
    let now = Instant::now();
    let mut state = client();
    let (mut call, _) = file_upload(&noise(100, 1));
    assert!(matches!(
        call.poll(now, &mut state),
        Action::Exchange(_, Exchange::Send { .. })
    ));
    // A second poll before the report: nothing to do but wait for it.
    assert!(matches!(
        call.poll(now, &mut state),
        Action::Wait {
            until: None,
            wakeable: false
        }
    ));
    // A report of the wrong kind: the call hands the refresh back, wakes the others, ends.
    call.on_event(now, &mut state, LaneId::MAIN, Event::Flushed(None));
    assert!(matches!(call.poll(now, &mut state), Action::WakeOthers));
    assert!(!state.tokens.is_refreshing(now));
    let Action::Done(Err(error)) = call.poll(now, &mut state) else {
        panic!("a report of the wrong kind ends the call");
    };
    misuse_message(&error);
    let Action::Done(Err(error)) = call.poll(now, &mut state) else {
        panic!("polled after done");
    };
    misuse_message(&error);
    // An event after the end changes nothing.
    call.on_event(now, &mut state, LaneId::MAIN, Event::BodyEnd);

    let mut task = download("m", DownloadOptions::default());
    assert!(matches!(
        task.poll(now, &mut state),
        Action::Exchange(_, Exchange::Send { .. })
    ));
    task.on_event(now, &mut state, LaneId::MAIN, Event::Written(5));
    let result = finish(&mut task, &mut state, now);
    misuse_message(&result.unwrap_err());
    let Action::Done(Err(error)) = task.poll(now, &mut state) else {
        panic!("polled after done");
    };
    misuse_message(&error);
    task.on_event(now, &mut state, LaneId::MAIN, Event::Written(1));
}

/// Polls until done, answering only `FlushSink` (what is left after a misuse).
fn finish<T: Task<Output: std::fmt::Debug>>(
    task: &mut T,
    state: &mut super::names::ClientState,
    now: Instant,
) -> Result<T::Output, Error> {
    for _ in 0..10 {
        match task.poll(now, state) {
            Action::Done(result) => return result,
            Action::Exchange(_, Exchange::FlushSink) => {
                task.on_event(now, state, LaneId::MAIN, Event::Flushed(None))
            }
            Action::WakeOthers => {}
            other => panic!("after a misuse the task only flushes and ends, got {other:?}"),
        }
    }
    panic!("the task did not end");
}

// ---- job waits ----

const POLL: &str = "POST /cgi-bin/media/get_upload_by_url_result token=T1";
const PROCESSING: &str = r#"{"errcode":0,"errmsg":"ok","status":1}"#;
const FINISHED: &str = r#"{"errcode":0,"errmsg":"ok","status":2,"detail":{"errcode":0,"errmsg":"ok","media_id":"M9","created_at":"1380000000"}}"#;

fn job_wait(t: &Transport, job: &str) -> JobWaitTask {
    JobWaitTask::from_parts(
        JobId::new(job),
        t.now + Duration::from_secs(60),
        PollPolicy::default(),
        base(),
        RetryPolicy::default(),
        3,
    )
    .unwrap()
}

fn assert_finished_m9(status: &JobStatus) {
    assert!(
        matches!(status, JobStatus::Finished { media_id, created_at: 1_380_000_000, .. } if *media_id == MediaId::new("M9")),
        "{status:?}"
    );
}

#[test]
fn a_job_wait_polls_on_its_schedule_without_events() {
    let server = Server::scripted(
        [token("T1")],
        [json(PROCESSING), json(PROCESSING), json(FINISHED)],
    );
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = job_wait(&t, "J1");

    assert_finished_m9(&t.run(&mut task, &mut state).unwrap());

    assert_eq!(t.server.lines(), ["gettoken", POLL, POLL, POLL]);
    assert_eq!(t.server.seen[1].body, br#"{"jobid":"J1"}"#);
    assert_eq!(t.server.seen[1].lane, Timeouts::Json);
    assert_eq!(
        t.waits(),
        [
            (Duration::from_secs(1), true),
            (Duration::from_secs(2), true)
        ]
    );
    assert_eq!(state.waiting_jobs(), 0, "the mailbox is closed after Done");
}

#[test]
fn a_job_finished_event_ends_the_wait_early_and_the_next_poll_fetches_the_result() {
    let server = Server::scripted([token("T1")], [json(PROCESSING), json(FINISHED)]);
    let mut t = Transport::new(server);
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = log.clone();
    t.on_wakeable_wait = Some(Box::new(move |state| {
        // Another job's event does not wake this wait; its own does.
        let other = state.deliver_job_finished(&JobId::new("J-other"));
        let mine = state.deliver_job_finished(&JobId::new("J1"));
        seen.borrow_mut().push((other, mine, state.waiting_jobs()));
        mine
    }));
    let mut state = client();
    let mut task = job_wait(&t, "J1");

    assert_finished_m9(&t.run(&mut task, &mut state).unwrap());

    // deliver returns whether any wait is open (the transport then wakes its waiters).
    assert_eq!(*log.borrow(), [(true, true, 1)]);
    assert_eq!(t.server.lines(), ["gettoken", POLL, POLL]);
    assert_eq!(
        t.waits(),
        [(Duration::ZERO, true)],
        "woken at once, no sleep"
    );
    assert_eq!(t.elapsed(), Duration::ZERO);
    assert_eq!(task.counts().0, 2);
    assert_eq!(task.counts().1, 1);
    assert_eq!(state.waiting_jobs(), 0, "the mailbox is closed after Done");
    assert!(
        !state.deliver_job_finished(&JobId::new("J1")),
        "nobody waits any more"
    );
}

/// A job wait cancelled between its polls closes its mailbox and ends cancelled, also when
/// a stray event comes after the cancel (no step out: the transport's misuse, which the lane
/// hands the wait as a local error).
#[test]
fn a_cancelled_job_wait_closes_its_mailbox() {
    let server = Server::scripted([token("T1")], [json(PROCESSING)]);
    let mut t = Transport::new(server);
    let mut state = client();
    let mut task = job_wait(&t, "J1");
    while t.waits().is_empty() {
        assert!(t.step(&mut task, &mut state).is_none());
    }
    assert_eq!(state.waiting_jobs(), 1);

    task.cancel(&mut state);

    assert_eq!(state.waiting_jobs(), 0);
    task.on_event(t.now, &mut state, LaneId::MAIN, Event::BodyEnd);
    let result = task.poll(t.now, &mut state);
    assert!(
        matches!(result, Action::Done(Err(Error::Cancelled { bytes: 0, .. }))),
        "{result:?}"
    );
    assert!(!state.deliver_job_finished(&JobId::new("J1")));
}

/// The transport hands every received callback event to `deliver_event`: only a
/// job-finished event reaches the waits (and asks for a wake-up); any other message does not.
#[cfg(feature = "callback")]
#[test]
fn only_a_job_finished_callback_event_wakes_a_job_wait() {
    use crate::callback::{event_xml_upload_media_job_finish, parse_event};
    let server = Server::scripted([token("T1")], [json(PROCESSING), json(FINISHED)]);
    let mut t = Transport::new(server);
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = log.clone();
    t.on_wakeable_wait = Some(Box::new(move |state| {
        let text = parse_event(b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>");
        let finished = event_xml_upload_media_job_finish("corp", 1, &JobId::new("J1"));
        let finished = parse_event(finished.as_bytes());
        let (text, finished) = (text.unwrap(), finished.unwrap());
        let woke = (state.deliver_event(&text), state.deliver_event(&finished));
        seen.borrow_mut().push(woke);
        woke.1
    }));
    let mut state = client();
    let mut task = job_wait(&t, "J1");

    assert_finished_m9(&t.run(&mut task, &mut state).unwrap());

    assert_eq!(*log.borrow(), [(false, true)]);
    assert_eq!(t.waits(), [(Duration::ZERO, true)], "woken at once");
    assert_eq!(t.server.lines(), ["gettoken", POLL, POLL]);
}

/// What a client exports for a store shared between processes is the token it holds, with
/// its remaining lifetime on the wall clock; nothing before it holds one.
#[test]
fn the_token_held_is_exported_with_its_remaining_lifetime() {
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut state = client();
    let start = Instant::now();
    assert_eq!(state.export_token(start, wall), None);

    let payload = noise(100, 2);
    let server = Server::scripted([token("T1")], [uploaded("M1")]);
    let mut t = Transport::new(server).with_source(payload.clone());
    t.now = start;
    let (mut call, _) = file_upload(&payload);
    t.run(&mut call, &mut state).unwrap();

    let later = start + Duration::from_secs(200);
    let exported = state.export_token(later, wall).expect("a token is held");
    assert_eq!(exported.access_token, "T1");
    assert_eq!(exported.expires_at_unix, 1_700_000_000 + 7200 - 200);
    assert_eq!(exported.generation, 1);
    assert_eq!(
        state.export_token(start + Duration::from_secs(7200), wall),
        None,
        "an expired token is not exported"
    );
}

// ---- several tasks, one client ----

fn parts(reply: Reply) -> (http::response::Parts, bytes::Bytes) {
    match reply {
        Reply::Answer { head, body, .. } => (head, body.into()),
        Reply::Fail(e) => panic!("{e}"),
    }
}

#[test]
fn several_tasks_of_one_client_share_one_gettoken() {
    let now = Instant::now();
    let mut state = client();
    let job = |id: &str| GetUploadByUrlResult::new(JobId::new(id)).unwrap();
    let mut first = CallTask::new(job("J1"), base(), RetryPolicy::default(), 1, Timeouts::Json);
    let mut second = CallTask::new(job("J2"), base(), RetryPolicy::default(), 2, Timeouts::Json);
    let mut third = download("m", DownloadOptions::default());

    let Action::Exchange(_, Exchange::Send { request, timeouts }) = first.poll(now, &mut state)
    else {
        panic!("the first task fetches the token");
    };
    assert_eq!(request.uri().path(), "/cgi-bin/gettoken");
    assert_eq!(timeouts, Timeouts::Json);
    for action in [
        second.poll(now, &mut state).into_wait(),
        third.poll(now, &mut state).into_wait(),
    ] {
        let Some((until, true)) = action else {
            panic!("the others wait, wakeable: {action:?}");
        };
        assert!(until > now, "until the refresher's lease ends");
    }

    let (head, body) = parts(token("T1"));
    first.on_event(now, &mut state, LaneId::MAIN, Event::Head(head));
    let Action::Exchange(_, Exchange::ReadBody { limit }) = first.poll(now, &mut state) else {
        panic!("the token answer is read whole");
    };
    assert_eq!(limit, MAX_JSON_RESPONSE);
    first.on_event(now, &mut state, LaneId::MAIN, Event::Body(body));
    assert!(matches!(first.poll(now, &mut state), Action::WakeOthers));

    // Woken, every task sends its business request with the one token.
    for action in [
        first.poll(now, &mut state).into_send(),
        second.poll(now, &mut state).into_send(),
        third.poll(now, &mut state).into_send(),
    ] {
        let uri = action.expect("a business request");
        assert!(uri.contains("access_token=T1"), "{uri}");
        assert!(!uri.contains("gettoken"), "{uri}");
    }
    assert_eq!(state.tokens.generation(), 1);
}

#[test]
fn a_failed_refresh_wakes_the_waiters_too() {
    let now = Instant::now();
    let mut state = client();
    let job = |id: &str| GetUploadByUrlResult::new(JobId::new(id)).unwrap();
    let mut first = CallTask::new(
        job("J1"),
        base(),
        RetryPolicy::no_retries(),
        1,
        Timeouts::Json,
    );
    let mut second = CallTask::new(job("J2"), base(), RetryPolicy::default(), 2, Timeouts::Json);
    assert!(first.poll(now, &mut state).into_send().is_some());
    assert!(matches!(
        second.poll(now, &mut state).into_wait(),
        Some((_, true))
    ));
    first.on_event(
        now,
        &mut state,
        LaneId::MAIN,
        Event::TransportFailed(TransportError::not_sent("refused")),
    );
    assert!(matches!(first.poll(now, &mut state), Action::WakeOthers));
    assert!(matches!(
        first.poll(now, &mut state),
        Action::Done(Err(Error::Transport(_)))
    ));
    // The second task takes the refresh over at once.
    let uri = second.poll(now, &mut state).into_send().unwrap();
    assert!(uri.contains("/cgi-bin/gettoken"), "{uri}");
}

/// Test shorthands for actions.
trait ActionExt {
    /// `Some((until, wakeable))` for a `Wait`.
    fn into_wait(self) -> Option<(Instant, bool)>;
    /// `Some(uri)` for a `Send`.
    fn into_send(self) -> Option<String>;
}

impl<T: std::fmt::Debug> ActionExt for Action<T> {
    fn into_wait(self) -> Option<(Instant, bool)> {
        match self {
            Action::Wait {
                until: Some(until),
                wakeable,
            } => Some((until, wakeable)),
            _ => None,
        }
    }
    fn into_send(self) -> Option<String> {
        match self {
            Action::Exchange(_, Exchange::Send { request, .. }) => Some(request.uri().to_string()),
            _ => None,
        }
    }
}

/// Polls a cancelled task to its end (flushing when asked); returns whether it woke the
/// others on the way.
fn wakes_on_the_way_out<T: Task<Output: std::fmt::Debug>>(
    task: &mut T,
    state: &mut super::names::ClientState,
    now: Instant,
) -> bool {
    let mut woke = false;
    for _ in 0..10 {
        match task.poll(now, state) {
            Action::Done(result) => {
                assert!(matches!(result, Err(Error::Cancelled { .. })), "{result:?}");
                return woke;
            }
            Action::Exchange(_, Exchange::FlushSink) => {
                task.on_event(now, state, LaneId::MAIN, Event::Flushed(None))
            }
            Action::WakeOthers => woke = true,
            // The step outstanding at the cancel ends (its event is not the task's any more).
            Action::Wait { until: None, .. } => {
                let late = Event::TransportFailed(TransportError::maybe_sent("dropped"));
                task.on_event(now, state, LaneId::MAIN, late);
            }
            other => panic!("a cancelled task only flushes, wakes and ends: {other:?}"),
        }
    }
    panic!("the task did not end");
}

#[test]
fn a_task_cancelled_during_its_token_refresh_wakes_the_waiters() {
    let now = Instant::now();
    let job = || GetUploadByUrlResult::new(JobId::new("J2")).unwrap();

    // A download, a job wait and a JSON call, each cancelled while it fetches the token.
    let mut state = client();
    let mut download = download("m", DownloadOptions::default());
    let mut waiter = CallTask::new(job(), base(), RetryPolicy::default(), 2, Timeouts::Json);
    assert!(download.poll(now, &mut state).into_send().is_some());
    assert!(matches!(
        waiter.poll(now, &mut state).into_wait(),
        Some((_, true))
    ));
    download.cancel(&mut state);
    assert!(wakes_on_the_way_out(&mut download, &mut state, now));
    assert!(
        waiter
            .poll(now, &mut state)
            .into_send()
            .unwrap()
            .contains("gettoken")
    );

    let mut state = client();
    let t = Transport::new(Server::scripted([], []));
    let mut wait = job_wait(&t, "J1");
    let mut waiter = CallTask::new(job(), base(), RetryPolicy::default(), 2, Timeouts::Json);
    assert!(wait.poll(now, &mut state).into_send().is_some());
    assert!(matches!(
        waiter.poll(now, &mut state).into_wait(),
        Some((_, true))
    ));
    wait.cancel(&mut state);
    assert!(wakes_on_the_way_out(&mut wait, &mut state, now));
    assert_eq!(state.waiting_jobs(), 0);

    let mut state = client();
    let mut call = CallTask::new(job(), base(), RetryPolicy::default(), 1, Timeouts::Json);
    assert!(call.poll(now, &mut state).into_send().is_some());
    call.cancel(&mut state);
    assert!(wakes_on_the_way_out(&mut call, &mut state, now));
}

/// A task cancelled during a business request (its token was at hand, it refreshed nothing)
/// owes nobody a wake-up: a download and a job wait end without one.
#[test]
fn a_task_cancelled_during_a_business_request_wakes_nobody() {
    let now = Instant::now();
    let with_token = || client_with_token(now);
    let mut state = with_token();
    let mut download = download("m", DownloadOptions::default());
    let sent = download.poll(now, &mut state).into_send().unwrap();
    assert!(sent.contains("media/get"), "{sent}");
    download.cancel(&mut state);
    assert!(!wakes_on_the_way_out(&mut download, &mut state, now));

    let mut state = with_token();
    let t = Transport::new(Server::scripted([], []));
    let mut wait = job_wait(&t, "J1");
    let sent = wait.poll(now, &mut state).into_send().unwrap();
    assert!(sent.contains("get_upload_by_url_result"), "{sent}");
    wait.cancel(&mut state);
    assert!(!wakes_on_the_way_out(&mut wait, &mut state, now));

    // The step outstanding at the cancel ends late: the wait's result stays the cancel.
    let mut state = with_token();
    let mut wait = job_wait(&t, "J1");
    assert!(wait.poll(now, &mut state).into_send().is_some());
    wait.cancel(&mut state);
    let late = Event::TransportFailed(TransportError::maybe_sent("dropped"));
    wait.on_event(now, &mut state, LaneId::MAIN, late);
    let result = wait.poll(now, &mut state);
    assert!(
        matches!(result, Action::Done(Err(Error::Cancelled { .. }))),
        "{result:?}"
    );
}
