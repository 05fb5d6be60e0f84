//! The object-storage relay as a task, at virtual time against a scripted server (the
//! transport loop of `tests/support`): which requests go out in which order, what they
//! carry, and what happens after every kind of failure. The same task against a real S3
//! server and the emulator: `wecom-material-ureq/tests/relay.rs`.
#![cfg(feature = "s3-relay")]

use std::time::{Duration, SystemTime};

use super::support::{Reply, Server, Transport, answer, json, token};
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::relay::{
    AddressingStyle, BucketRelay, ObjectFate, RelayOptions, RelayUploadTask, S3Credentials,
    parse_s3_url,
};
use wecom_material_core::task::{Action, Event, Exchange, UploadInput};
use wecom_material_core::{
    ClientSettings, ErrCode, Error, Invalid, MediaType, RetryPolicy, Task, Timeouts,
};

const SECRET_KEY: &str = "wJalrXUtnFEMI-SECRET-bPxRfiCY";
const KEY: &str = "/media/in/00000000000000ff-clip.mp4";
/// 2026-12-06 06:00:00 UTC.
const WALL: u64 = 1_796_536_800;

fn relay() -> BucketRelay {
    let credentials = S3Credentials::new("AKIDEXAMPLE", SECRET_KEY);
    BucketRelay::from_s3_url(
        "s3://media/in/",
        Some("http://127.0.0.1:9000"),
        "us-east-1",
        AddressingStyle::Auto,
        credentials,
    )
    .unwrap()
}

fn settings() -> ClientSettings {
    let mut settings = ClientSettings::new("ww1", "secret-xyz");
    settings.base = wecom_material_core::BaseUrl::parse("http://wecom.test").unwrap();
    settings.retry_policy = RetryPolicy {
        base_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    settings
}

fn file() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn task(t: &Transport, kind: MediaType, options: RelayOptions) -> RelayUploadTask {
    let input = UploadInput::file("clip.mp4".as_ref(), None, 10_000, Vec::new()).unwrap();
    task_of(t, kind, options, input)
}

fn task_of(
    t: &Transport,
    kind: MediaType,
    options: RelayOptions,
    input: UploadInput,
) -> RelayUploadTask {
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(WALL);
    let (settings, relay) = (settings(), relay());
    RelayUploadTask::new(
        kind,
        &input,
        &relay,
        options,
        &settings,
        (t.now, wall),
        0xff,
        1,
    )
    .unwrap()
}

/// The answers of a relayed upload that goes well: access check, PUT, gettoken,
/// `upload_by_url` (job J1), the job finished (M1), DELETE.
fn relayed_whole() -> Server {
    Server::scripted(
        [token("T")],
        [
            empty(204),
            empty(200),
            job("J1"),
            finished("M1"),
            empty(204),
        ],
    )
}

fn empty(status: u16) -> Reply {
    answer(status, &[], Vec::new())
}

fn s3_error(status: u16, code: &str) -> Reply {
    let xml = format!("<Error><Code>{code}</Code><Message>refused</Message></Error>");
    answer(status, &[], xml)
}

fn job(id: &str) -> Reply {
    json(&format!(r#"{{"errcode":0,"errmsg":"ok","jobid":"{id}"}}"#))
}

fn finished(media_id: &str) -> Reply {
    json(&format!(
        r#"{{"errcode":0,"errmsg":"ok","status":2,"detail":{{"errcode":0,"errmsg":"",
            "media_id":"{media_id}","created_at":"1796536860"}}}}"#
    ))
}

fn job_failed(code: i64) -> Reply {
    json(&format!(
        r#"{{"errcode":0,"errmsg":"ok","status":3,"detail":{{"errcode":{code},"errmsg":"fetch failed"}}}}"#
    ))
}

const UPLOAD_BY_URL: &str = "POST /cgi-bin/media/upload_by_url token=T";
const JOB_RESULT: &str = "POST /cgi-bin/media/get_upload_by_url_result token=T";

#[test]
fn check_put_upload_by_url_wait_delete_in_that_order_with_the_md5_of_the_bytes_sent() {
    let server = relayed_whole();
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let done = t
        .run(&mut relay_task, &mut super::support::client())
        .unwrap();
    assert_eq!(relay_task.job_id().map(|j| j.as_str()), Some("J1"));
    let shown = format!("{relay_task:?}");
    assert!(
        shown.contains("s3://media/in/00000000000000ff-clip.mp4") && shown.contains("10000"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET_KEY), "{shown}");
    let (delete, put) = (format!("DELETE {KEY}"), format!("PUT {KEY}"));
    assert_eq!(
        t.server.lines(),
        [
            delete.as_str(),
            put.as_str(),
            "gettoken",
            UPLOAD_BY_URL,
            JOB_RESULT,
            delete.as_str()
        ]
    );
    let put_sent = &t.server.seen[1];
    assert_eq!(
        (put_sent.lane, put_sent.body.as_slice()),
        (Timeouts::Media, &file()[..])
    );
    // The PUT's signature holds 15 minutes: S3 checks it when the request starts.
    assert!(
        put_sent.uri.contains("X-Amz-Expires=900&"),
        "{}",
        put_sent.uri
    );
    assert_eq!(
        relay_task.object(),
        "s3://media/in/00000000000000ff-clip.mp4"
    );
    assert_eq!(t.source.as_ref().unwrap().reads, 1, "the file is read once");
    let md5 = Md5Hex::of(&file());
    assert_eq!(done.md5, md5);
    assert_eq!(done.media_id.as_str(), "M1");
    assert_eq!(done.job_id.as_str(), "J1");
    assert_eq!(done.fate, ObjectFate::Deleted);
    assert_eq!(done.object, "s3://media/in/00000000000000ff-clip.mp4");
    // The URL WeCom gets: presigned GET of the object, signed at the virtual wall clock.
    let request: serde_json::Value =
        serde_json::from_slice(t.server.bodies(UPLOAD_BY_URL)[0]).unwrap();
    assert_eq!(request["md5"], md5.as_str());
    assert_eq!(request["type"], "video");
    assert_eq!(request["filename"], "clip.mp4");
    let url = request["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://127.0.0.1:9000{KEY}?")),
        "{url}"
    );
    assert!(url.contains("X-Amz-Date=20261206T060000Z"), "{url}");
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(!url.contains(SECRET_KEY));
}

#[test]
fn a_put_answered_503_is_sent_again_after_a_backoff_and_the_digest_starts_over() {
    let server = Server::scripted(
        [token("T")],
        [
            empty(204),
            s3_error(503, "SlowDown"),
            empty(200),
            job("J1"),
            finished("M1"),
            empty(204),
        ],
    );
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::File, RelayOptions::default());
    let done = t
        .run(&mut relay_task, &mut super::support::client())
        .unwrap();
    assert_eq!(
        done.md5,
        Md5Hex::of(&file()),
        "the digest of one whole attempt"
    );
    assert_eq!(t.source.as_ref().unwrap().reads, 2);
    let (slept, wakeable) = t.waits()[0];
    let backoff = Duration::from_millis(100)..Duration::from_millis(200);
    assert!(
        backoff.contains(&slept) && !wakeable,
        "the backoff: {slept:?}"
    );
}

#[test]
fn a_refused_access_check_ends_before_a_byte_of_the_file_is_read_or_wecom_is_asked() {
    let server = Server::scripted([], [s3_error(403, "InvalidAccessKeyId")]);
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    let Err(Error::ObjectStorage(e)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!(
        (e.bucket.as_str(), e.status, e.code.as_deref()),
        ("media", 403, Some("InvalidAccessKeyId"))
    );
    assert!(
        e.to_string()
            .contains("s3://media/in/00000000000000ff-clip.mp4"),
        "{e}"
    );
    assert_eq!(t.server.lines().len(), 1);
    assert_eq!(t.source.as_ref().unwrap().reads, 0);

    // A 404 for the bucket is a refusal too (a 404 for the key is the check passing), and
    // an error document of several KiB is read whole.
    let long = format!(
        "<Error><Code>NoSuchBucket</Code><Message>{}</Message></Error>",
        "the bucket does not exist. ".repeat(200)
    );
    assert!(long.len() > 4096);
    let server = Server::scripted([], [answer(404, &[], long)]);
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    let Err(Error::ObjectStorage(e)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!((e.status, e.code.as_deref()), (404, Some("NoSuchBucket")));
    assert_eq!(t.server.lines().len(), 1);
}

/// A local failure during the PUT (the file could not be read) may leave a partial object:
/// it is deleted; the failure is the error.
#[test]
fn a_local_failure_during_the_put_still_deletes_the_object() {
    let server = Server::scripted([], [empty(204), empty(200), empty(204)]);
    let mut t = Transport::new(server).with_source(file());
    let mut put_answered = false;
    t.tamper = Some(Box::new(move |event| match event {
        Event::Head(head) if head.status == 200 && !put_answered => {
            put_answered = true;
            Event::Local(Error::io("reading the file", std::io::Error::other("gone")))
        }
        other => other,
    }));
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    let (delete, put) = (format!("DELETE {KEY}"), format!("PUT {KEY}"));
    assert_eq!(t.server.lines(), [delete.as_str(), &put, &delete]);
}

#[test]
fn a_refused_put_stored_nothing_so_nothing_is_deleted() {
    let server = Server::scripted([], [empty(204), s3_error(400, "EntityTooLarge")]);
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    assert!(
        matches!(&result, Err(Error::ObjectStorage(e)) if e.operation == "PUT"),
        "{result:?}"
    );
    assert_eq!(t.server.lines().len(), 2, "no DELETE, no WeCom request");
}

/// A one-shot reader cannot be read again: its failed PUT is not retried (the error is the
/// PUT's), while the requests without a body are (the access check answered 503 here).
#[test]
fn a_one_shot_source_is_put_once_but_its_bodyless_requests_are_retried() {
    let server = Server::scripted(
        [],
        [
            s3_error(503, "SlowDown"),
            empty(204),
            s3_error(503, "SlowDown"),
        ],
    );
    let mut t = Transport::new(server).with_source(file());
    let input = UploadInput::reader("clip.mp4", 10_000);
    let mut relay_task = task_of(&t, MediaType::File, RelayOptions::default(), input);
    assert_eq!(
        Some(relay_task.key()),
        KEY.strip_prefix("/media/"),
        "the key in the bucket"
    );
    let result = t.run(&mut relay_task, &mut super::support::client());
    assert!(
        matches!(&result, Err(Error::ObjectStorage(e)) if e.operation == "PUT" && e.status == 503),
        "{result:?}"
    );
    let (delete, put) = (format!("DELETE {KEY}"), format!("PUT {KEY}"));
    assert_eq!(t.server.lines(), [delete.as_str(), &delete, &put]);
    assert_eq!(t.source.as_ref().unwrap().reads, 1, "read once");
}

#[test]
fn a_failed_job_and_a_cancel_during_the_wait_still_delete_the_object() {
    let server = Server::scripted(
        [token("T")],
        [
            empty(204),
            empty(200),
            job("J1"),
            job_failed(830003),
            empty(204),
        ],
    );
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    let Err(Error::Api(api)) = &result else {
        panic!("{result:?}");
    };
    assert_eq!(api.code, ErrCode::from(830003));
    assert_eq!(api.errmsg, "upload job J1 failed: fetch failed");
    assert_eq!(
        t.server.lines().last(),
        Some(&format!("DELETE {KEY}").as_str())
    );

    let processing = r#"{"errcode":0,"errmsg":"ok","status":1}"#;
    let server = Server::scripted(
        [token("T")],
        [
            empty(204),
            empty(200),
            job("J2"),
            json(processing),
            s3_error(503, "SlowDown"),
            empty(204),
        ],
    );
    let mut t = Transport::new(server).with_source(file());
    let mut state = super::support::client();
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    // Up to the first job poll (check, PUT, gettoken, upload_by_url, job result).
    while t.server.seen.len() < 5 {
        assert!(t.step(&mut relay_task, &mut state).is_none());
    }
    relay_task.cancel(&mut state);
    relay_task.cancel(&mut state); // a transport cancels at every turn once the flag is set
    let result = t.run(&mut relay_task, &mut state);
    // The PUT had sent the whole file: the error says so.
    let len = file().len() as u64;
    assert!(
        matches!(
            result,
            Err(Error::Cancelled {
                operation: crate::error::OperationKind::RelayedUpload,
                bytes,
                total: Some(total),
            }) if bytes == len && total == len
        ),
        "{result:?}"
    );
    // The clean-up is retried after a cancel (the DELETE answered 503 first).
    let delete = format!("DELETE {KEY}");
    assert_eq!(t.server.lines()[5..], [delete.as_str(), &delete]);
    assert_eq!(state.waiting_jobs(), 0, "the job wait's mailbox is closed");
}

/// The options' job timeout and poll policy govern the wait: a job still processing is
/// asked every `first_interval` up to `max_interval`, and given up when the job timeout
/// passes (the object is deleted all the same).
#[test]
fn the_job_is_polled_by_the_options_policy_until_the_options_timeout() {
    let processing = || json(r#"{"errcode":0,"errmsg":"ok","status":1}"#);
    let mut replies = vec![empty(204), empty(200), job("J1")];
    replies.extend(std::iter::repeat_with(processing).take(6));
    replies.push(empty(204));
    let mut t = Transport::new(Server::scripted([token("T")], replies)).with_source(file());
    let poll = crate::PollPolicy {
        first_interval: Duration::from_secs(2),
        max_interval: Duration::from_secs(2),
        ..crate::PollPolicy::default()
    };
    let options = RelayOptions::default()
        .job_timeout(Duration::from_secs(10))
        .poll_policy(poll);
    let mut relay_task = task(&t, MediaType::Video, options);
    let result = t.run(&mut relay_task, &mut super::support::client());
    assert!(
        matches!(&result, Err(Error::JobUnfinished { job_id }) if job_id.as_str() == "J1"),
        "{result:?}"
    );
    let polls = t
        .server
        .lines()
        .iter()
        .filter(|l| **l == JOB_RESULT)
        .count();
    assert_eq!(polls, 6, "at 0, 2, 4, 6, 8 and 10 s");
    assert_eq!(t.elapsed(), Duration::from_secs(10));
    // Each S3 request is signed at the wall time it is made: the clock given, moved on by
    // the time since.
    let signed_at = |i: usize| {
        let uri = &t.server.seen[i].uri;
        let date = uri.split("X-Amz-Date=").nth(1).unwrap_or_default();
        date.get(..16).unwrap_or(date).to_owned()
    };
    assert_eq!(signed_at(0), "20261206T060000Z");
    assert_eq!(signed_at(t.server.seen.len() - 1), "20261206T060010Z");
    assert_eq!(
        t.server.lines().last(),
        Some(&format!("DELETE {KEY}").as_str())
    );
}

#[test]
fn keep_object_skips_the_delete_and_a_failed_delete_is_reported_not_fatal() {
    let server = Server::scripted(
        [token("T")],
        [empty(204), empty(200), job("J1"), finished("M1")],
    );
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(
        &t,
        MediaType::Video,
        RelayOptions::default().keep_object(true),
    );
    let done = t
        .run(&mut relay_task, &mut super::support::client())
        .unwrap();
    assert_eq!(done.fate, ObjectFate::Kept);

    let server = Server::scripted(
        [token("T")],
        [
            empty(204),
            empty(200),
            job("J1"),
            finished("M1"),
            s3_error(403, "AccessDenied"),
        ],
    );
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let done = t
        .run(&mut relay_task, &mut super::support::client())
        .unwrap();
    let ObjectFate::NotDeleted(why) = &done.fate else {
        panic!("{:?}", done.fate);
    };
    assert!(why.contains("HTTP 403 AccessDenied"), "{why}");
}

/// A presigned URL may be valid for up to 7 days (S3's limit for SigV4), not a second more,
/// and for one second at least.
#[test]
fn a_presigned_url_is_valid_for_one_second_to_seven_days() {
    let input = UploadInput::file("clip.mp4".as_ref(), None, 10_000, Vec::new()).unwrap();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(WALL);
    let now = std::time::Instant::now();
    const WEEK: u64 = 7 * 24 * 3600;
    for (secs, ok) in [(0, false), (1, true), (WEEK, true), (WEEK + 1, false)] {
        let options = RelayOptions::default().url_expiry(Duration::from_secs(secs));
        let kind = MediaType::Video;
        let made = RelayUploadTask::new(
            kind,
            &input,
            &relay(),
            options,
            &settings(),
            (now, wall),
            1,
            1,
        );
        assert_eq!(made.is_ok(), ok, "{secs} s");
        if let Err(error) = made {
            assert!(matches!(error, Error::Invalid(_)), "{error:?}");
        }
    }
}

#[test]
fn what_wecom_would_refuse_is_refused_before_anything_is_sent() {
    let input = UploadInput::file("photo.jpg".as_ref(), None, 11_000_000, Vec::new()).unwrap();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(WALL);
    let now = std::time::Instant::now();
    let new = |kind, input: &UploadInput, relay: &BucketRelay| {
        let options = RelayOptions::default();
        RelayUploadTask::new(kind, input, relay, options, &settings(), (now, wall), 1, 1)
    };
    assert!(matches!(
        new(MediaType::Image, &input, &relay()),
        Err(Error::Invalid(Invalid::UnsupportedMediaType { .. }))
    ));
    let video = UploadInput::file("a.mov".as_ref(), None, 11_000_000, Vec::new()).unwrap();
    assert!(matches!(
        new(MediaType::Video, &video, &relay()),
        Err(Error::Invalid(Invalid::ExtensionMismatch { .. }))
    ));
    let huge = UploadInput::file("a.mp4".as_ref(), None, 210 * 1024 * 1024, Vec::new()).unwrap();
    assert!(matches!(
        new(MediaType::Video, &huge, &relay()),
        Err(Error::Invalid(Invalid::TooLarge { .. }))
    ));
    // A prefix so long (spaces are sent as %20) that the presigned URL would pass WeCom's
    // 1024 bytes.
    let long = relay().with_prefix(&"x y/".repeat(120)).unwrap();
    let ok = UploadInput::file("a.mp4".as_ref(), None, 11_000_000, Vec::new()).unwrap();
    assert!(matches!(
        new(MediaType::Video, &ok, &long),
        Err(Error::Invalid(Invalid::FieldTooLong { field: "url", .. }))
    ));
}

#[test]
fn relays_parse_their_url_pick_the_addressing_style_and_never_show_a_secret() {
    assert_eq!(parse_s3_url("s3://b/p/q/").unwrap(), ("b", "p/q/"));
    assert_eq!(parse_s3_url("s3://b").unwrap(), ("b", ""));
    assert!(parse_s3_url("https://b/").is_err() && parse_s3_url("s3:///p").is_err());
    let credentials = || S3Credentials::new("AKID", SECRET_KEY).with_session_token("TOKEN-abc");
    let style = |endpoint: &str| {
        let relay = BucketRelay::new(endpoint, "b", "r", AddressingStyle::Auto, credentials());
        relay.unwrap().is_path_style()
    };
    assert!(style("http://127.0.0.1:9000") && style("http://localhost:9000"));
    assert!(!style("https://cos.ap-guangzhou.myqcloud.com"));
    let aws = BucketRelay::from_s3_url(
        "s3://b/",
        None,
        "eu-west-1",
        AddressingStyle::Auto,
        credentials(),
    );
    assert_eq!(
        aws.unwrap().endpoint(),
        "https://s3.eu-west-1.amazonaws.com"
    );
    // Each shows what names it and masks what is secret.
    let with_token = BucketRelay::new("http://h", "b", "r", AddressingStyle::Auto, credentials());
    for shown in [
        format!("{:?}", with_token.unwrap()),
        format!("{:?}", relay()),
        format!("{:?}", credentials()),
    ] {
        assert!(shown.contains("AKID") && shown.contains("***"), "{shown}");
        assert!(
            !shown.contains(SECRET_KEY) && !shown.contains("TOKEN-abc"),
            "{shown}"
        );
    }
    let shown = format!("{:?}", relay());
    assert!(
        shown.contains("\"media\"") && shown.contains("us-east-1"),
        "{shown}"
    );
    assert_eq!(
        relay().object_key("季度 report (final).mp4", 0xab),
        "in/00000000000000ab-___report__final_.mp4"
    );
}

/// A transport's misuse during the clean-up DELETE (an answer of the wrong kind) leaves the
/// object not deleted, said in the fate: the upload itself succeeded, so it is not turned
/// into a failure.
#[test]
fn a_misuse_during_the_delete_leaves_the_object_not_deleted_and_the_upload_done() {
    let server = relayed_whole();
    let mut t = Transport::new(server).with_source(file());
    let mut state = super::support::client();
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = loop {
        match relay_task.poll(t.now, &mut state) {
            Action::Exchange(lane, Exchange::Send { request, timeouts })
                if request.method() == http::Method::DELETE && t.server.seen.len() == 5 =>
            {
                let step = Exchange::Send { request, timeouts };
                let head = t.exchange(lane, step);
                relay_task.on_event(t.now, &mut state, lane, head);
                assert!(matches!(
                    relay_task.poll(t.now, &mut state),
                    Action::Exchange(_, Exchange::ReadBody { .. })
                ));
                relay_task.on_event(t.now, &mut state, lane, Event::Flushed(None));
                break t.run(&mut relay_task, &mut state);
            }
            Action::Exchange(lane, step) => {
                let event = t.exchange(lane, step);
                relay_task.on_event(t.now, &mut state, lane, event);
            }
            Action::Done(result) => break result,
            _ => {}
        }
    };
    let done = result.unwrap();
    let ObjectFate::NotDeleted(why) = &done.fate else {
        panic!("{:?}", done.fate);
    };
    assert!(why.contains("misuse"), "{why}");
}

/// A PUT that fails on the network is sent again within the retry policy (2 retries here);
/// its last failure is the upload's error, as it happened, and the object it may have
/// stored is deleted.
#[test]
fn a_put_failing_on_the_network_is_retried_and_its_failure_is_the_error() {
    let reset = || {
        Reply::Fail(wecom_material_core::TransportError::maybe_sent(
            "connection reset",
        ))
    };
    let answers = [empty(204), reset(), reset(), reset(), empty(204)];
    let server = Server::scripted([], answers);
    let mut t = Transport::new(server).with_source(file());
    let mut relay_task = task(&t, MediaType::Video, RelayOptions::default());
    let result = t.run(&mut relay_task, &mut super::support::client());
    assert!(
        matches!(&result, Err(Error::Transport(e)) if e.message.contains("connection reset")),
        "{result:?}"
    );
    let put = format!("PUT {KEY}");
    let puts = t.server.lines().iter().filter(|l| **l == put).count();
    assert_eq!(puts, 3, "the PUT and its two retries");
    assert_eq!(
        t.server.lines().last(),
        Some(&format!("DELETE {KEY}").as_str())
    );
}
