//! A save's decisions at virtual time: the first range runs alone and names the file before
//! its body is read, the record is due every 8 MiB or every second, a resumed save fetches
//! only the missing bytes, and a media whose size changed is caught by the first range.

use std::time::{Duration, Instant};

use super::lanes::{Lanes, media, settings};
use super::names::{
    Action, ClientState, DownloadOptions, DownloadTask, Error, Event, Exchange, LaneId, MediaId,
    ResumeRecord, Task,
};
use super::support::{client, media_range};
use crate::save::{RECORD_EVERY, RECORD_EVERY_BYTES};
use crate::task::PROBE_LEN;

/// A range that waits for the token another task is fetching waits to be woken: the
/// download's wait is wakeable (the lanes' waits are combined, not dropped).
#[test]
fn ranges_waiting_for_a_token_wait_to_be_woken() {
    use super::names::{BaseUrl, CallTask, GetUploadByUrlResult, JobId, RetryPolicy, Timeouts};
    let now = Instant::now();
    let mut state = client();
    let job = GetUploadByUrlResult::new(JobId::new("J")).unwrap();
    let base = BaseUrl::parse("http://127.0.0.1:1").unwrap();
    let mut refresher = CallTask::new(job, base, RetryPolicy::default(), 1, Timeouts::Json);
    assert!(matches!(
        refresher.poll(now, &mut state),
        Action::Exchange(_, Exchange::Send { .. })
    ));
    let mut task = save_task(2, None);
    let step = task.poll(now, &mut state);
    assert!(
        matches!(step, Action::Wait { wakeable: true, .. }),
        "{step:?}"
    );
}

/// A resumed save probes with the first missing bytes: a gap longer than [`PROBE_LEN`] is
/// asked [`PROBE_LEN`] bytes first, a shorter one whole; and the task's `Debug` says what
/// runs.
#[test]
fn a_resumed_save_probes_with_its_first_gap() {
    let mib = 1024 * 1024;
    for (done_to, total, first) in [
        (mib, 5 * mib, (mib, 2 * mib - 1)),
        (5 * mib, 5 * mib + mib / 2, (5 * mib, 5 * mib + mib / 2 - 1)),
    ] {
        let bytes = media(total);
        let record = ResumeRecord {
            total: total as u64,
            done: vec![(0, done_to as u64)],
        };
        let mut task = save_task(4, Some(record));
        let shown = format!("{task:?}");
        assert!(
            shown.contains("media_id") && shown.contains("queued"),
            "{shown}"
        );
        let mut state = client();
        let mut t = Lanes::new();
        t.sink = bytes[..done_to].to_vec();
        t.sink.resize(total, 0);
        let mut asked = Vec::new();
        t.run(&mut task, &mut state, |_, (a, b)| {
            asked.push((a, b));
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap();
        assert_eq!(asked[0], first, "resumed from {done_to} of {total}");
        assert_eq!(t.sink, bytes);
    }
}

fn save_task(connections: usize, record: Option<ResumeRecord>) -> DownloadTask {
    let options = DownloadOptions::default().connections(connections);
    DownloadTask::for_save(MediaId::new("m"), options, &settings(), 5, record).unwrap()
}

/// A task that brings its record up to date whenever the core says it is due, as a save's
/// host does, keeping every record and the bytes written when it was taken.
struct Recording {
    task: DownloadTask,
    records: Vec<(ResumeRecord, u64)>,
}

impl Task for Recording {
    type Output = <DownloadTask as Task>::Output;

    fn poll(&mut self, now: Instant, state: &mut ClientState) -> Action<Self::Output> {
        self.task.poll(now, state)
    }

    fn on_event(&mut self, now: Instant, state: &mut ClientState, lane: LaneId, event: Event) {
        self.task.on_event(now, state, lane, event);
        if self.task.record_due(now) {
            let done = self.task.progress().map_or(0, |p| p.done);
            self.records
                .push((self.task.resume_record().unwrap(), done));
            self.task.mark_recorded(now);
        }
    }

    fn cancel(&mut self, state: &mut ClientState) {
        self.task.cancel(state);
    }
}

#[test]
fn the_first_range_runs_alone_and_names_the_file_before_its_body_is_read() {
    let bytes = media(5_000_000);
    let mut state = client();
    let mut task = save_task(4, None);
    let mut t = Lanes::new();
    let now = t.now;
    // The token first, then the probe.
    let mut sent = None;
    for _ in 0..10 {
        let (lane, step) = match task.poll(now, &mut state) {
            Action::Exchange(lane, step) => (lane, step),
            Action::WakeOthers => continue,
            other => panic!("unexpected {other:?}"),
        };
        let business = matches!(&step, Exchange::Send { request, .. }
            if request.uri().path() != "/cgi-bin/gettoken");
        let event = t.step(lane, step, &mut |_, (a, b)| {
            media_range(&bytes, a, b.min(bytes.len() - 1))
        });
        if business {
            sent = Some((lane, event));
            break;
        }
        task.on_event(now, &mut state, lane, event);
    }
    let (lane, head) = sent.expect("the probe was sent");
    assert!(
        task.media_info().is_none(),
        "nothing is known before a head"
    );
    task.on_event(now, &mut state, lane, head);
    let info = task.media_info().expect("the head names the file");
    assert_eq!(info.filename, "m", "no Content-Disposition: the media id");
    // Only the probe's body is asked for: no other range starts before it is done.
    match task.poll(now, &mut state) {
        Action::Exchange(l, Exchange::Stream { .. }) if l == lane => {}
        other => panic!("expected the probe's body, got {other:?}"),
    }
    assert!(matches!(task.poll(now, &mut state), Action::Wait { .. }));
}

#[test]
fn a_fresh_save_fetches_a_probe_then_ranges_at_once_and_records_every_8_mib() {
    let bytes = media(40_000_000);
    let mut state = client();
    let mut task = Recording {
        task: save_task(4, None),
        records: Vec::new(),
    };
    let mut t = Lanes::new();
    let mut asked = Vec::new();
    let done = t
        .run(&mut task, &mut state, |_, (a, b)| {
            asked.push((a, b));
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap();
    assert_eq!(t.sink, bytes);
    assert_eq!(done.bytes_written, bytes.len() as u64);
    assert_eq!(
        asked[0],
        (0, PROBE_LEN as usize - 1),
        "the probe comes first"
    );
    assert!(t.most_in_flight > 1 && t.most_in_flight <= 4);
    // Virtual time stands still here: the records come by bytes, at most 8 MiB (and one
    // streamed step of each lane) apart, each naming only bytes that reached the sink.
    let records = &task.records;
    assert!(records.len() >= 4, "{} records", records.len());
    let mut last = 0;
    for (record, done) in records {
        assert!(record.validate().is_ok());
        assert!(
            done - last <= RECORD_EVERY_BYTES + 4 * 300_000,
            "{last} → {done}"
        );
        for &(s, e) in &record.done {
            assert_eq!(
                t.sink[s as usize..e as usize],
                bytes[s as usize..e as usize]
            );
        }
        last = *done;
    }
}

#[test]
fn the_record_is_due_every_second_while_bytes_arrive() {
    let bytes = media(3_000_000);
    let mut state = client();
    let mut task = save_task(2, None);
    let mut t = Lanes::new();
    let mut answer = |_, (a, b): (usize, usize)| media_range(&bytes, a, b.min(bytes.len() - 1));
    // Drive until the probe is done and a range has written bytes.
    let mut now = t.now;
    let mut marked_at: Option<Instant> = None;
    for _ in 0..200 {
        let Action::Exchange(lane, step) = task.poll(now, &mut state) else {
            continue;
        };
        let event = t.step(lane, step, &mut answer);
        task.on_event(now, &mut state, lane, event);
        if task.record_due(now) {
            if let Some(at) = marked_at {
                // Due again: a second passed (far fewer than 8 MiB arrived since).
                assert!(now >= at + RECORD_EVERY, "due again too early");
                return;
            }
            marked_at = Some(now);
            task.mark_recorded(now);
            assert!(!task.record_due(now), "just recorded");
        }
        now += Duration::from_millis(100);
    }
    panic!("the record never came due again");
}

#[test]
fn a_resumed_save_fetches_only_the_missing_bytes() {
    let bytes = media(6_000_000);
    let record = ResumeRecord {
        total: bytes.len() as u64,
        done: vec![(0, 2_500_000), (4_000_000, 5_000_000)],
    };
    for connections in [1, 4] {
        let mut state = client();
        let mut task = save_task(connections, Some(record.clone()));
        let mut t = Lanes::new();
        t.sink = bytes.clone();
        // The bytes the record names are not in the sink twice: zero the rest.
        t.sink[2_500_000..4_000_000].fill(0);
        t.sink[5_000_000..].fill(0);
        let mut fetched = Vec::new();
        let done = t
            .run(&mut task, &mut state, |_, (a, b)| {
                fetched.push((a, b));
                media_range(&bytes, a, b.min(bytes.len() - 1))
            })
            .unwrap();
        assert_eq!(t.sink, bytes, "{connections} connections");
        let total: usize = fetched.iter().map(|(a, b)| b - a + 1).sum();
        assert_eq!(total, 2_500_000, "only the missing bytes: {fetched:?}");
        assert_eq!(
            fetched[0].0, 2_500_000,
            "the probe is the first missing byte"
        );
        assert_eq!(done.bytes_written, 2_500_000);
        assert!(task.total_changed().is_none());
    }
}

#[test]
fn a_media_of_another_size_is_caught_by_the_first_range_alone() {
    let bytes = media(5_000_000);
    let record = ResumeRecord {
        total: 6_000_000,
        done: vec![(0, 1_000_000)],
    };
    let mut state = client();
    let mut task = save_task(4, Some(record));
    let mut t = Lanes::new();
    let mut requests = 0;
    let error = t
        .run(&mut task, &mut state, |_, (a, b)| {
            requests += 1;
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap_err();
    assert!(matches!(error, Error::Decode(_)), "{error}");
    assert_eq!(task.total_changed(), Some(5_000_000));
    assert_eq!(requests, 1, "no other range was asked for");
}

#[test]
fn a_crafted_record_is_refused_by_a_save_too() {
    let crafted = ResumeRecord {
        total: 10,
        done: vec![(9_223_372_036_854_775_808, 0)],
    };
    let options = DownloadOptions::default().connections(4);
    let error = DownloadTask::for_save(MediaId::new("m"), options, &settings(), 1, Some(crafted))
        .unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
}
