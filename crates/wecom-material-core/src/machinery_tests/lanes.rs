//! A download in ranges as one task: lanes run "at once" (steps of several lanes are handed
//! out before any is answered, and answered out of order), writes land at their offsets, the
//! record names what arrived, and 45033 halves the lanes in flight.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::names::{
    Action, ClientSettings, ClientState, DownloadOptions, DownloadTask, Error, Event, Exchange,
    LaneId, MediaId, ResumeRecord, Task,
};
use super::support::{Reply, client, errcode, media_range, parse_range, token};

/// Media of `len` bytes that no bug reproduces by accident.
pub(super) fn media(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

pub(super) fn settings() -> ClientSettings {
    let mut settings = ClientSettings::new("ww1", "secret-xyz");
    settings.base = super::names::BaseUrl::parse("http://127.0.0.1:1").unwrap();
    settings.retry_policy.base_backoff = Duration::from_millis(10);
    settings
}

/// A download of media `m` in ranges with up to `connections` at once; `seed` draws its jitter.
fn ranges(connections: usize, seed: u64) -> DownloadTask {
    let options = DownloadOptions::default().connections(connections);
    DownloadTask::in_ranges(MediaId::new("m"), options, &settings(), seed, None).unwrap()
}

/// A transport that keeps every lane's step pending until it has taken all the steps the
/// task hands out, then answers them newest first: the task sees its lanes finish out of
/// order. `answer` serves each business request; gettoken answers `T1`.
pub(super) struct Lanes {
    pub(super) now: Instant,
    pub(super) sink: Vec<u8>,
    bodies: std::collections::HashMap<LaneId, VecDeque<u8>>,
    pub(super) most_in_flight: usize,
    requests: usize,
    /// Every business request's range (first and last byte) and when it was sent.
    pub(super) asked: Vec<(Instant, (usize, usize))>,
    /// A wait's timer fires before the steps out are answered (a slow network): the clock
    /// moves to its end and the task is polled again.
    pub(super) timer_first: bool,
}

impl Lanes {
    /// When each request for the range starting at byte `first` was sent.
    pub(super) fn asked_from(&self, first: usize) -> Vec<Instant> {
        let asked = self.asked.iter().filter(|(_, range)| range.0 == first);
        asked.map(|(at, _)| *at).collect()
    }

    pub(super) fn new() -> Self {
        Self {
            now: Instant::now(),
            sink: Vec::new(),
            bodies: Default::default(),
            most_in_flight: 0,
            requests: 0,
            asked: Vec::new(),
            timer_first: false,
        }
    }

    pub(super) fn run<T: Task>(
        &mut self,
        task: &mut T,
        state: &mut ClientState,
        mut answer: impl FnMut(usize, (usize, usize)) -> Reply,
    ) -> Result<T::Output, Error> {
        for _ in 0..100_000 {
            let mut pending = Vec::new();
            loop {
                match task.poll(self.now, state) {
                    Action::Exchange(lane, step) => {
                        assert!(
                            pending.iter().all(|(l, _)| *l != lane),
                            "two steps on one lane at once"
                        );
                        pending.push((lane, step));
                    }
                    Action::Wait { until, .. } if pending.is_empty() => {
                        self.now = until.expect("a wait with nothing in flight has an end");
                        break;
                    }
                    Action::Wait {
                        until: Some(until), ..
                    } if self.timer_first => {
                        // A wait already over while steps are out would have a transport
                        // poll again and again until one is answered: a busy loop.
                        assert!(until > self.now, "a wait that is already over: {until:?}");
                        self.now = until;
                    }
                    Action::Wait { .. } => break,
                    Action::WakeOthers => {}
                    Action::Done(result) => {
                        assert!(pending.is_empty(), "done with steps in flight");
                        return result;
                    }
                }
            }
            let sends = pending
                .iter()
                .filter(|(_, s)| matches!(s, Exchange::Send { .. }))
                .count();
            self.most_in_flight = self.most_in_flight.max(sends);
            while let Some((lane, step)) = pending.pop() {
                let event = self.step(lane, step, &mut answer);
                task.on_event(self.now, state, lane, event);
            }
        }
        panic!("the task did not end");
    }

    pub(super) fn step(
        &mut self,
        lane: LaneId,
        step: Exchange,
        answer: &mut impl FnMut(usize, (usize, usize)) -> Reply,
    ) -> Event {
        match step {
            Exchange::Send { request, .. } => {
                let reply = if request.uri().path() == "/cgi-bin/gettoken" {
                    token("T1")
                } else {
                    self.requests += 1;
                    let range = request.headers()[http::header::RANGE].to_str().unwrap();
                    self.asked.push((self.now, parse_range(range)));
                    answer(self.requests, parse_range(range))
                };
                let Reply::Answer { head, body, .. } = reply else {
                    panic!("no failures here")
                };
                self.bodies.insert(lane, body.into());
                Event::Head(head)
            }
            Exchange::ReadBody { .. } => {
                let body = self.bodies.remove(&lane).unwrap_or_default();
                Event::Body(Vec::from(body).into())
            }
            Exchange::Stream { max, at } => {
                let body = self.bodies.get_mut(&lane).unwrap();
                let n = body.len().min(max as usize).min(300_000);
                if n == 0 {
                    return Event::BodyEnd;
                }
                let bytes: Vec<u8> = body.drain(..n).collect();
                let at = at as usize;
                if self.sink.len() < at + n {
                    self.sink.resize(at + n, 0);
                }
                self.sink[at..at + n].copy_from_slice(&bytes);
                Event::Written(n as u64)
            }
            Exchange::Write { .. } => panic!("a 206 is never probed"),
            Exchange::FlushSink => Event::Flushed(None),
            Exchange::Store(_) => panic!("no token store here"),
        }
    }
}

#[test]
fn ranges_run_at_once_out_of_order_and_land_at_their_offsets() {
    let bytes = media(9_000_000);
    for connections in [1, 4, 8] {
        let mut state = client();
        let mut task = ranges(connections, 3);
        let mut t = Lanes::new();
        let done = t
            .run(&mut task, &mut state, |_, (a, b)| {
                media_range(&bytes, a, b.min(bytes.len() - 1))
            })
            .unwrap();
        assert_eq!(t.sink, bytes, "{connections} connections");
        assert_eq!(done.bytes_written, bytes.len() as u64);
        assert!(
            t.most_in_flight <= connections,
            "{} > {connections}",
            t.most_in_flight
        );
        if connections > 1 {
            assert!(t.most_in_flight > 1, "lanes ran one after the other");
        }
        let record = task.resume_record().unwrap();
        assert!(record.is_complete(), "{record:?}");
    }
}

#[test]
fn a_throttled_range_halves_the_lanes_and_waits_its_backoff_without_being_lost() {
    let bytes = media(9_000_000);
    let mut state = client();
    let mut task = ranges(8, 3);
    let mut t = Lanes::new();
    // The second and third range requests are refused with 45033: both go back to the queue
    // with a backoff (not yet due when the others end) and the limit halves twice.
    let done = t
        .run(&mut task, &mut state, |n, (a, b)| match n {
            2 | 3 => errcode(45033),
            _ => media_range(&bytes, a, b.min(bytes.len() - 1)),
        })
        .unwrap();
    assert_eq!(t.sink, bytes);
    assert_eq!(done.total, bytes.len() as u64);
    assert_eq!(task.throttled(), 2);
    assert_eq!(task.limit(), 2, "8 → 4 → 2");
}

#[test]
fn a_record_names_the_bytes_of_running_ranges_and_a_resume_fetches_only_the_rest() {
    let bytes = media(6_000_000);
    let mut state = client();
    let options = DownloadOptions::default().connections(2);
    let mut task =
        DownloadTask::in_ranges(MediaId::new("m"), options.clone(), &settings(), 3, None).unwrap();
    let mut t = Lanes::new();
    // The fourth range request fails for good: the download ends, and the record says what
    // reached the sink, the ranges that were running included.
    let error = t
        .run(&mut task, &mut state, |n, (a, b)| match n {
            4 => errcode(40001 + 6),
            _ => media_range(&bytes, a, b.min(bytes.len() - 1)),
        })
        .unwrap_err();
    assert!(error.errcode().is_some(), "{error}");
    let record = task.resume_record().unwrap();
    assert_eq!(record.total, bytes.len() as u64);
    assert!(
        record.bytes_done() > 0 && !record.is_complete(),
        "{record:?}"
    );
    for &(s, e) in &record.done {
        assert_eq!(
            t.sink[s as usize..e as usize],
            bytes[s as usize..e as usize]
        );
    }
    let missing = bytes.len() as u64 - record.bytes_done();

    let mut resumed =
        DownloadTask::in_ranges(MediaId::new("m"), options, &settings(), 4, Some(record)).unwrap();
    let mut fetched = 0;
    let done = t
        .run(&mut resumed, &mut state, |_, (a, b)| {
            fetched += (b - a + 1) as u64;
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap();
    assert_eq!(t.sink, bytes);
    assert_eq!(fetched, missing, "only the missing bytes are fetched again");
    assert_eq!(done.bytes_written, missing);
}

#[test]
fn a_crafted_record_is_refused_before_anything_is_planned() {
    let huge = ResumeRecord {
        total: 10,
        done: vec![(9_223_372_036_854_775_808, 0)],
    };
    let options = DownloadOptions::default().connections(4);
    let error = DownloadTask::in_ranges(MediaId::new("m"), options, &settings(), 1, Some(huge))
        .unwrap_err();
    assert!(matches!(error, Error::Invalid(_)), "{error:?}");
}

#[test]
fn an_event_on_a_lane_that_is_not_running_ends_the_download_as_a_misuse() {
    let mut state = client();
    let mut task = ranges(2, 3);
    let now = Instant::now();
    assert!(matches!(
        task.poll(now, &mut state),
        Action::Exchange(LaneId(1), _)
    ));
    task.on_event(now, &mut state, LaneId(7), Event::BodyEnd);
    task.on_event(now, &mut state, LaneId(1), Event::BodyEnd);
    let mut result = None;
    for _ in 0..20 {
        match task.poll(now, &mut state) {
            Action::Exchange(lane, Exchange::FlushSink) => {
                task.on_event(now, &mut state, lane, Event::Flushed(None));
            }
            Action::Exchange(lane, _) => {
                let failed = Event::TransportFailed(super::names::TransportError::not_sent("x"));
                task.on_event(now, &mut state, lane, failed);
            }
            Action::Done(done) => {
                result = Some(done);
                break;
            }
            _ => {}
        }
    }
    let error = result.expect("the task ended").unwrap_err();
    assert!(error.to_string().contains("misuse"), "{error}");
}

/// A `Written` reported on a lane whose step was already answered (a transport that reports
/// twice) is a misuse, and its bytes never enter the record: the record names only bytes a
/// step of the range asked for and the sink took.
#[test]
fn a_written_reported_twice_is_not_counted_in_the_record() {
    // Larger than one streamed chunk: the range has room for the bogus bytes.
    let bytes = media(2_000_000);
    let mut state = client();
    let record = ResumeRecord {
        total: bytes.len() as u64,
        done: Vec::new(),
    };
    let options = DownloadOptions::default().connections(1);
    let mut task =
        DownloadTask::in_ranges(MediaId::new("m"), options, &settings(), 3, Some(record)).unwrap();
    let mut t = Lanes::new();
    let mut serve = |_, (a, b): (usize, usize)| media_range(&bytes, a, b.min(bytes.len() - 1));
    let mut streamed = 0;
    while streamed == 0 {
        let (lane, step) = match task.poll(t.now, &mut state) {
            Action::Exchange(lane, step) => (lane, step),
            Action::WakeOthers => continue,
            other => panic!("a step is due, not {other:?}"),
        };
        let is_stream = matches!(step, Exchange::Stream { .. });
        let event = t.step(lane, step, &mut serve);
        if let (true, Event::Written(n)) = (is_stream, &event) {
            streamed = *n;
        }
        task.on_event(t.now, &mut state, lane, event);
        if streamed > 0 {
            // Reported again, with no step out on the lane.
            task.on_event(t.now, &mut state, lane, Event::Written(100));
        }
    }
    let error = t.run(&mut task, &mut state, serve).unwrap_err();
    assert!(error.to_string().contains("misuse"), "{error}");
    let record = task.resume_record().unwrap();
    assert_eq!(record.bytes_done(), streamed, "{record:?}");
    assert_eq!(record.done, [(0, streamed)]);
}

/// The first range is 1 MiB (its answer tells the size); the rest is cut into four ranges
/// per connection, so that the connections finish together, but none under 1 MiB.
#[test]
fn after_a_one_mib_first_range_the_rest_is_cut_into_four_ranges_per_connection() {
    const FIRST: usize = 1 << 20;
    let bytes = media(9_000_000);
    for connections in [1usize, 2, 8] {
        let mut state = client();
        let mut task = ranges(connections, 3);
        let mut t = Lanes::new();
        t.run(&mut task, &mut state, |_, (a, b)| {
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap();
        assert_eq!(t.asked[0].1, (0, FIRST - 1), "{connections} connections");
        let missing = bytes.len() - FIRST;
        let per_range = missing.div_ceil(4 * connections).max(FIRST);
        let mut rest: Vec<(usize, usize)> = t.asked[1..].iter().map(|(_, r)| *r).collect();
        rest.sort_unstable();
        assert_eq!(rest.len(), missing.div_ceil(per_range), "{rest:?}");
        for (i, (a, b)) in rest.iter().enumerate() {
            assert_eq!(*a, FIRST + i * per_range, "{rest:?}");
            assert!(b - a < per_range, "{rest:?}");
        }
    }
}

/// A range answered -1 (system busy) goes back to the queue and is asked again after a
/// backoff, at most three times; one answered 45033 (too many at once), at most eight. One
/// refusal more ends the download with that error.
#[test]
fn a_refused_range_is_asked_again_after_a_backoff_a_bounded_number_of_times() {
    const REFUSED: usize = 1 << 20;
    let bytes = media(3_000_000);
    for (code, retries) in [(-1, 3), (45033, 8)] {
        for refusals in [retries, retries + 1] {
            let mut state = client();
            let mut task = ranges(1, 3);
            let mut t = Lanes::new();
            let mut refused = 0;
            let result = t.run(&mut task, &mut state, |_, (a, b)| {
                if a == REFUSED && refused < refusals {
                    refused += 1;
                    return errcode(code);
                }
                media_range(&bytes, a, b.min(bytes.len() - 1))
            });
            let times = t.asked_from(REFUSED);
            assert!(
                times.windows(2).all(|w| w[1] > w[0]),
                "{code}: asked again at once: {times:?}"
            );
            assert_eq!(times.len(), retries + 1, "{code}: {refusals} refusals");
            if refusals == retries {
                assert_eq!(t.sink, bytes);
                result.unwrap();
            } else {
                let error = result.unwrap_err();
                assert_eq!(error.errcode().map(|c| c.code()), Some(code), "{error}");
            }
        }
    }
}

/// A range's retries back off as the retry policy's: each wait grows (the third at least
/// twice the first), and downloads with other seeds draw other jitter.
#[test]
fn a_refused_ranges_backoff_grows_and_its_jitter_is_the_downloads_own() {
    const REFUSED: usize = 1 << 20;
    let bytes = media(3_000_000);
    let gaps = |seed: u64, refusals: usize| {
        let mut state = client();
        let mut task = ranges(1, seed);
        let mut t = Lanes::new();
        let mut refused = 0;
        t.run(&mut task, &mut state, |_, (a, b)| {
            if a == REFUSED && refused < refusals {
                refused += 1;
                return errcode(-1);
            }
            media_range(&bytes, a, b.min(bytes.len() - 1))
        })
        .unwrap();
        let times = t.asked_from(REFUSED);
        times.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    };
    let three = gaps(3, 3);
    assert!(three[2] >= three[0] * 2, "{three:?}");
    assert_ne!(gaps(3, 1), gaps(5, 1));
}

/// While every lane it may run is busy, a download does not wait for the backoff of a queued
/// range: at its end nothing could start, and a wait already over would have the transport
/// poll in a busy loop until a lane is free. (Here: 2 lanes, the second range refused with
/// 45033, so one lane may run and one runs; the clock passes the backoff before the running
/// range's steps are answered.)
#[test]
fn a_queued_range_does_not_wake_a_download_whose_lanes_are_all_busy() {
    let bytes = media(3_000_000);
    let mut state = client();
    let mut task = ranges(2, 3);
    let mut t = Lanes::new();
    t.timer_first = true;
    t.run(&mut task, &mut state, |n, (a, b)| match n {
        2 => errcode(45033),
        _ => media_range(&bytes, a, b.min(bytes.len() - 1)),
    })
    .unwrap();
    assert_eq!(t.sink, bytes);
    assert_eq!(task.limit(), 1);
}

/// A range that fails for good stops the other ranges in flight at their next step: the
/// download ends with that failure, not after the others ran to their end.
#[test]
fn a_range_that_fails_for_good_stops_the_ranges_in_flight() {
    const FIRST: u64 = 1 << 20;
    let bytes = media(9_000_000);
    let mut state = client();
    let mut task = ranges(2, 3);
    let mut t = Lanes::new();
    let error = t
        .run(&mut task, &mut state, |n, (a, b)| match n {
            2 => errcode(40001 + 6),
            _ => media_range(&bytes, a, b.min(bytes.len() - 1)),
        })
        .unwrap_err();
    assert_eq!(error.errcode().map(|c| c.code()), Some(40007), "{error}");
    assert_eq!(t.asked.len(), 3, "no range starts after the failure");
    let record = task.resume_record().unwrap();
    assert!(
        record.bytes_done() < 2 * FIRST,
        "the range in flight ran on: {record:?}"
    );
}
