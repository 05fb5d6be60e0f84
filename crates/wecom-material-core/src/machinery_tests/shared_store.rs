//! A client whose token is shared through a store ([`ClientBuilder::token_store`]): the
//! calls' token lookup at virtual time, against an in-memory store that follows the rules of
//! the four scripts (the Redis crate's tests run the same flows on a real redis-server). Each
//! test checks the store commands issued, the requests sent, the wake-ups and the typed result.
//!
//! [`ClientBuilder::token_store`]: crate::ClientBuilder::token_store

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::names::{
    AccessToken, Action, Boundary, CallTask, ClientSettings, ClientState, CommitReply, Error,
    Exchange, Fallback, Limits, LookupReply, MediaType, RetryPolicy, SharedTokenPolicy,
    StoreCommand, StoreError, StoreReply, StoredGrant, Task, Timeouts, TokenStore, UploadMedia,
};
use super::support::{Note, Server, Transport, errcode, uploaded};

const UPLOAD: &str = "POST /cgi-bin/media/upload token=";

/// What the store holds: the token (text, generation, lifetime), the lock's fencing number,
/// the last fencing number handed out.
#[derive(Default)]
struct Held {
    token: Option<(String, u64, Duration)>,
    lock: Option<u64>,
    fence: u64,
    log: Vec<String>,
    warnings: Vec<String>,
    /// The token each INVALIDATE named.
    invalidated: Vec<Option<String>>,
}

/// The scripts' rules without a clock: a token stays valid for what its grant said (no time
/// passes in the store), a lock lasts until COMMIT or FAIL.
#[derive(Default)]
struct MemoryStore {
    held: Mutex<Held>,
    /// Every script fails as if the server were unreachable (a `Warn` still works: it is the
    /// client's own log line).
    down: AtomicBool,
    /// LOOKUP hands out a token that has already expired (a broken store).
    expired_tokens: AtomicBool,
    /// Every script is answered with the reply of another command (a broken store).
    wrong_replies: AtomicBool,
    /// With `wrong_replies`: answer `Failed` (FAIL's reply) instead of `Warned`.
    wrong_reply_failed: AtomicBool,
    /// Every COMMIT is answered "superseded, no token held" (a broken or flapping store).
    supersede: AtomicBool,
    /// Every COMMIT is answered "superseded" by a token that has already expired.
    supersede_expired: AtomicBool,
}

impl MemoryStore {
    fn log(&self) -> Vec<String> {
        self.held.lock().unwrap().log.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.held.lock().unwrap().warnings.clone()
    }

    fn seed(&self, token: &str) {
        let mut held = self.held.lock().unwrap();
        held.fence += 1;
        held.token = Some((token.to_owned(), held.fence, Duration::from_secs(7200)));
    }

    fn stored(&self) -> Option<(String, u64)> {
        let held = self.held.lock().unwrap();
        held.token.as_ref().map(|(t, g, _)| (t.clone(), *g))
    }
}

fn grant((token, generation, expires_in): &(String, u64, Duration)) -> StoredGrant {
    StoredGrant {
        token: AccessToken::new(token.clone()).unwrap(),
        generation: *generation,
        expires_in: *expires_in,
    }
}

impl TokenStore for MemoryStore {
    fn run(&self, command: StoreCommand) -> Result<StoreReply, StoreError> {
        let mut held = self.held.lock().unwrap();
        if let StoreCommand::Warn(error) = command {
            held.warnings.push(error.to_string());
            return Ok(StoreReply::Warned);
        }
        if self.wrong_replies.load(Ordering::SeqCst) {
            held.log.push("wrong".to_owned());
            if self.wrong_reply_failed.load(Ordering::SeqCst) {
                return Ok(StoreReply::Failed);
            }
            return Ok(StoreReply::Warned);
        }
        if self.down.load(Ordering::SeqCst) {
            held.log.push("down".to_owned());
            return Err(StoreError::new("mem://store: connection refused"));
        }
        Ok(match command {
            StoreCommand::Lookup { .. } => {
                held.log.push("LOOKUP".to_owned());
                if self.expired_tokens.load(Ordering::SeqCst) {
                    return Ok(StoreReply::Lookup(LookupReply::Ready(StoredGrant {
                        token: AccessToken::new("EXPIRED").unwrap(),
                        generation: 1,
                        expires_in: Duration::ZERO,
                    })));
                }
                StoreReply::Lookup(match (&held.token, held.lock) {
                    (Some(token), _) => LookupReply::Ready(grant(token)),
                    (None, Some(_)) => LookupReply::Wait {
                        retry_in: Duration::from_millis(500),
                        cooling_down: false,
                    },
                    (None, None) => {
                        held.fence += 1;
                        held.lock = Some(held.fence);
                        LookupReply::Refresh {
                            fence: held.fence,
                            lease: Duration::from_secs(30),
                            current: None,
                        }
                    }
                })
            }
            StoreCommand::Commit { fence, grant, .. } => {
                held.log.push(format!("COMMIT {fence}"));
                if held.lock == Some(fence) {
                    held.lock = None;
                }
                if self.supersede_expired.load(Ordering::SeqCst) {
                    held.lock = None;
                    let expired = ("EXPIRED".to_owned(), 99, Duration::ZERO);
                    return Ok(StoreReply::Commit(CommitReply::Superseded {
                        current: Some(self::grant(&expired)),
                    }));
                }
                let supersede = self.supersede.load(Ordering::SeqCst);
                StoreReply::Commit(if fence == held.fence && !supersede {
                    let token = grant.token.expose().to_owned();
                    held.token = Some((token, fence, grant.expires_in));
                    CommitReply::Stored { generation: fence }
                } else {
                    CommitReply::Superseded {
                        current: held.token.as_ref().filter(|_| !supersede).map(self::grant),
                    }
                })
            }
            StoreCommand::Invalidate { generation, token } => {
                held.log.push(format!("INVALIDATE {generation}"));
                let named = token.as_ref().map(|t| t.expose().to_owned());
                held.invalidated.push(named.clone());
                let is_it = |t: &(String, u64, Duration)| {
                    t.1 == generation && named.as_ref().is_none_or(|n| *n == t.0)
                };
                if held.token.as_ref().is_some_and(is_it) {
                    held.token = None;
                }
                StoreReply::Invalidated
            }
            StoreCommand::Fail { fence, cooldown } => {
                held.log
                    .push(format!("FAIL {fence} {}s", cooldown.as_secs()));
                held.lock = None;
                StoreReply::Failed
            }
            StoreCommand::Warn(_) => unreachable!("answered above"),
        })
    }
}

/// One "process": a client state sharing through `store` under `fallback`.
fn process(fallback: Fallback) -> ClientState {
    let mut settings = ClientSettings::new("ww1", "secret-xyz");
    settings.shared_token = Some(SharedTokenPolicy {
        fallback,
        ..SharedTokenPolicy::default()
    });
    ClientState::for_client(&settings)
}

fn transport(server: Server, store: &Arc<MemoryStore>) -> Transport {
    let mut t = Transport::new(server);
    t.store = Some(store.clone() as Arc<dyn TokenStore>);
    t
}

fn upload(seed: u64) -> CallTask<UploadMedia> {
    let op = UploadMedia::from_bytes(
        MediaType::File,
        "a.bin",
        bytes::Bytes::from_static(b"0123456789"),
        Boundary::new("shared-store-test").unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let base = super::names::BaseUrl::parse("http://127.0.0.1:1").unwrap();
    CallTask::new(op, base, RetryPolicy::default(), seed, Timeouts::Media)
}

#[test]
fn one_process_refreshes_for_the_fleet_and_the_others_read_the_store() {
    let shown = format!("{:?}", upload(1));
    assert!(
        shown.starts_with("CallTask { call: Call { operation: \"media/upload\""),
        "{shown}"
    );
    let store = Arc::new(MemoryStore::default());
    let mut a = process(Fallback::Local);
    let mut ta = transport(
        Server::scripted(
            [super::support::token("T1")],
            [uploaded("M1"), uploaded("M2")],
        ),
        &store,
    );
    ta.run(&mut upload(1), &mut a).unwrap();
    assert_eq!(ta.server.lines(), ["gettoken", &format!("{UPLOAD}T1")]);
    assert_eq!(store.log(), ["LOOKUP", "COMMIT 1"]);
    // The refresh ended when the store answered COMMIT: the process's waiters are woken.
    assert_eq!(ta.count(Note::WakeOthers), 1);
    assert_eq!(store.stored(), Some(("T1".to_owned(), 1)));

    // Another process: one LOOKUP, no gettoken (its server would panic on one).
    let mut b = process(Fallback::Local);
    let mut tb = transport(Server::scripted([], [uploaded("M3")]), &store);
    tb.run(&mut upload(2), &mut b).unwrap();
    assert_eq!(tb.server.lines(), [format!("{UPLOAD}T1")]);
    assert_eq!(store.log(), ["LOOKUP", "COMMIT 1", "LOOKUP"]);

    // The first process's next call uses its own cache: the store is not asked again.
    ta.run(&mut upload(3), &mut a).unwrap();
    assert_eq!(store.log().len(), 3);
}

#[test]
fn a_waiter_in_the_same_process_waits_for_the_store_and_is_woken() {
    let store = Arc::new(MemoryStore::default());
    let mut state = process(Fallback::Local);
    let server = Server::scripted(
        [super::support::token("T1")],
        [uploaded("M1"), uploaded("M2")],
    );
    let mut t = transport(server, &store);
    let (mut first, mut second) = (upload(1), upload(2));
    // The first call's LOOKUP is answered "refresh": it holds the process's refresh.
    assert!(t.step(&mut first, &mut state).is_none());
    assert_eq!(store.log(), ["LOOKUP"]);
    // The second call waits (wakeable) instead of asking the store itself.
    assert!(t.step(&mut second, &mut state).is_none());
    assert_eq!(t.waits().last().map(|w| w.1), Some(true));
    t.run(&mut first, &mut state).unwrap();
    assert_eq!(t.count(Note::WakeOthers), 1);
    t.run(&mut second, &mut state).unwrap();
    assert_eq!(store.log(), ["LOOKUP", "COMMIT 1"]);
    assert_eq!(t.server.lines()[0], "gettoken");
    assert_eq!(t.server.lines().len(), 3);
}

#[test]
fn a_rejected_token_is_invalidated_in_the_store_by_its_generation_only() {
    let store = Arc::new(MemoryStore::default());
    store.seed("T1");
    // Process A reads T1 and keeps it in its cache.
    let mut a = process(Fallback::Local);
    let mut ta = transport(
        Server::scripted([], [uploaded("M1"), errcode(42001), uploaded("M3")]),
        &store,
    );
    ta.run(&mut upload(1), &mut a).unwrap();

    // WeCom revoked T1. Process B is told so first: it invalidates generation 1 in the
    // store, becomes the refresher and stores T2 (generation 2).
    let mut b = process(Fallback::Local);
    let mut tb = transport(
        Server::scripted(
            [super::support::token("T2")],
            [errcode(42001), uploaded("M2")],
        ),
        &store,
    );
    tb.run(&mut upload(2), &mut b).unwrap();
    assert_eq!(
        tb.server.lines(),
        [
            format!("{UPLOAD}T1"),
            "gettoken".to_owned(),
            format!("{UPLOAD}T2")
        ]
    );
    assert_eq!(
        store.log(),
        ["LOOKUP", "LOOKUP", "INVALIDATE 1", "LOOKUP", "COMMIT 2"]
    );

    // Process A learns it later, with its old T1: its INVALIDATE of generation 1 leaves T2
    // alone, and it reads T2 — no second gettoken for the fleet (its server has none).
    ta.run(&mut upload(3), &mut a).unwrap();
    assert_eq!(
        ta.server.lines()[1..],
        [format!("{UPLOAD}T1"), format!("{UPLOAD}T2")]
    );
    assert_eq!(store.log()[5..], ["INVALIDATE 1", "LOOKUP"]);
    assert_eq!(store.stored(), Some(("T2".to_owned(), 2)));
    // Each INVALIDATE named the token rejected, not only its generation.
    let named = store.held.lock().unwrap().invalidated.clone();
    assert_eq!(named, [Some("T1".to_owned()), Some("T1".to_owned())]);
}

#[test]
fn a_rejection_never_evicts_another_token_of_the_same_generation() {
    // The store lost its data and counts generations from 1 again: process A still holds
    // T1 (generation 1 of the old data), the store holds T2 as generation 1.
    let store = Arc::new(MemoryStore::default());
    store.seed("T1");
    let mut a = process(Fallback::Local);
    let mut ta = transport(
        Server::scripted([], [uploaded("M1"), errcode(42001), uploaded("M2")]),
        &store,
    );
    ta.run(&mut upload(1), &mut a).unwrap();
    *store.held.lock().unwrap() = Held::default();
    store.seed("T2");
    assert_eq!(store.stored(), Some(("T2".to_owned(), 1)));
    // WeCom rejects A's T1: A's INVALIDATE of generation 1 names T1 and leaves T2 alone; A
    // reads T2 — no gettoken (A's server has none to give).
    ta.run(&mut upload(2), &mut a).unwrap();
    assert_eq!(store.log(), ["INVALIDATE 1", "LOOKUP"]);
    assert_eq!(store.stored(), Some(("T2".to_owned(), 1)));
    assert_eq!(
        ta.server.lines()[1..],
        [format!("{UPLOAD}T1"), format!("{UPLOAD}T2")]
    );
}

#[test]
fn a_store_down_costs_one_own_gettoken_and_one_warning_per_outage() {
    let store = Arc::new(MemoryStore::default());
    store.down.store(true, Ordering::SeqCst);
    let mut state = process(Fallback::Local);
    let server = Server::scripted(
        [super::support::token("OWN1"), super::support::token("OWN2")],
        [uploaded("M1"), uploaded("M2"), uploaded("M3")],
    );
    let mut t = transport(server, &store);
    t.run(&mut upload(1), &mut state).unwrap();
    t.run(&mut upload(2), &mut state).unwrap();
    assert_eq!(store.log(), ["down"]);
    assert_eq!(
        store.warnings(),
        ["token store: mem://store: connection refused"]
    );
    assert_eq!(
        t.server.lines(),
        [
            "gettoken".to_owned(),
            format!("{UPLOAD}OWN1"),
            format!("{UPLOAD}OWN1")
        ]
    );

    // The own token expires while the store is still down: the store is asked again, the
    // process fetches its own token again, and the outage is not warned about twice.
    t.now += Duration::from_secs(7200);
    t.run(&mut upload(3), &mut state).unwrap();
    assert_eq!(store.log(), ["down", "down"]);
    assert_eq!(store.warnings().len(), 1);
    assert_eq!(
        t.server.lines()[3..],
        ["gettoken", &format!("{UPLOAD}OWN2")]
    );
}

#[test]
fn a_store_down_with_fallback_fail_is_a_typed_error_without_a_gettoken() {
    let store = Arc::new(MemoryStore::default());
    store.down.store(true, Ordering::SeqCst);
    let mut state = process(Fallback::Fail);
    let mut t = transport(Server::scripted([], []), &store);
    let error = t.run(&mut upload(1), &mut state).unwrap_err();
    let Error::Transport(transport) = &error else {
        panic!("{error:?}");
    };
    assert!(
        transport
            .to_string()
            .contains("token store: mem://store: connection refused"),
        "{transport}"
    );
    // Retried like any transport failure (2 retries by default), never a gettoken.
    assert_eq!(store.log(), ["down", "down", "down"]);
    assert!(t.server.lines().is_empty());
    assert!(store.warnings().is_empty());
}

#[test]
fn a_failed_gettoken_of_the_refresher_turns_the_lock_into_a_cool_down() {
    let store = Arc::new(MemoryStore::default());
    let mut state = process(Fallback::Local);
    let mut t = transport(Server::scripted([errcode(40001)], []), &store);
    let error = t.run(&mut upload(1), &mut state).unwrap_err();
    assert_eq!(error.errcode().map(|c| c.code()), Some(40001));
    assert_eq!(store.log(), ["LOOKUP", "FAIL 1 5s"]);
    assert_eq!(t.count(Note::WakeOthers), 1);
    assert!(
        store.warnings().is_empty(),
        "FAIL's own reply is no store failure"
    );
}

#[test]
fn a_store_handing_out_expired_tokens_cannot_keep_a_call_asking() {
    let store = Arc::new(MemoryStore::default());
    store.expired_tokens.store(true, Ordering::SeqCst);
    let mut state = process(Fallback::Local);
    let mut t = transport(Server::scripted([], []), &store);
    let error = t.run(&mut upload(1), &mut state).unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(store.log(), ["LOOKUP"; 4]);
    assert!(t.server.lines().is_empty());
}

#[test]
fn a_reply_of_the_wrong_kind_is_a_store_failure_not_a_stuck_call() {
    for failed in [false, true] {
        let store = Arc::new(MemoryStore::default());
        store.wrong_replies.store(true, Ordering::SeqCst);
        store.wrong_reply_failed.store(failed, Ordering::SeqCst);
        let mut state = process(Fallback::Local);
        let server = Server::scripted([super::support::token("OWN")], [uploaded("M1")]);
        let mut t = transport(server, &store);
        t.run(&mut upload(1), &mut state).unwrap();
        assert_eq!(store.log(), ["wrong"]);
        let warnings = store.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("answered another command's reply to LOOKUP"),
            "{warnings:?}"
        );
        assert_eq!(
            t.server.lines(),
            ["gettoken".to_owned(), format!("{UPLOAD}OWN")]
        );
    }
}

#[test]
fn a_second_thread_keeps_waiting_while_the_first_waits_on_the_store_past_30_s() {
    let store = Arc::new(MemoryStore::default());
    // Another process takes the fleet's refresh and stays silent (no COMMIT).
    let mut other = process(Fallback::Local);
    let mut t_other = transport(Server::scripted([], []), &store);
    assert!(t_other.step(&mut upload(9), &mut other).is_none());
    assert_eq!(store.log(), ["LOOKUP"]);

    let mut state = process(Fallback::Local);
    let mut t = transport(
        Server::scripted([], [uploaded("M1"), uploaded("M2")]),
        &store,
    );
    t.on_wakeable_wait = Some(Box::new(|_| true)); // a wakeable wait ends at once: look again
    let (mut first, mut second) = (upload(1), upload(2));
    while t.elapsed() < Duration::from_secs(35) {
        assert!(t.step(&mut first, &mut state).is_none());
    }
    let asked = store.log().len();
    assert!(asked > 10, "the first call polls the store: {asked}");
    // 35 s in, the second call still waits for the first one's fetch: it asks nothing.
    for _ in 0..3 {
        assert!(t.step(&mut second, &mut state).is_none());
        assert_eq!(t.waits().last().map(|w| w.1), Some(true));
    }
    assert_eq!(store.log().len(), asked);

    // The other process stores its token: the first call reads it and wakes the second.
    store.seed("T9");
    t.run(&mut first, &mut state).unwrap();
    t.run(&mut second, &mut state).unwrap();
    assert_eq!(store.log().len(), asked + 1);
    assert_eq!(
        t.server.lines(),
        [format!("{UPLOAD}T9"), format!("{UPLOAD}T9")]
    );
}

/// Another process holds the fleet's refresh: the store says "ask again in 500 ms". A call
/// polled before then (woken early by another task of its process) sleeps on to the same
/// moment and asks the store nothing; at that moment it asks again.
#[test]
fn a_poll_before_the_store_backoff_ends_sleeps_on_without_asking() {
    let store = Arc::new(MemoryStore::default());
    store.held.lock().unwrap().lock = Some(9);
    let mut state = process(Fallback::Local);
    let mut t = transport(Server::scripted([], []), &store);
    let mut call = upload(1);
    assert!(t.step(&mut call, &mut state).is_none());
    assert_eq!(store.log(), ["LOOKUP"]);
    let start = t.now;
    let Action::Wait {
        until: Some(until), ..
    } = call.poll(start, &mut state)
    else {
        panic!("a backoff")
    };
    assert!(until > start);
    let early = start + (until - start) / 2;
    match call.poll(early, &mut state) {
        Action::Wait { until: again, .. } => assert_eq!(again, Some(until)),
        other => panic!("slept on, not {other:?}"),
    }
    assert_eq!(store.log(), ["LOOKUP"]);
    assert!(matches!(
        call.poll(until, &mut state),
        Action::Exchange(_, Exchange::Store(_))
    ));
}

/// Calls waiting on another process's refresh do not ask the store again in step: each call's
/// own jitter seed draws its backoff, so calls with different seeds wait different times
/// (the processes of a fleet do not come back as one herd; the first backoff's jitter has
/// ten values, so some of eight calls share one).
#[test]
fn calls_with_different_seeds_back_off_from_the_store_for_different_times() {
    let store = Arc::new(MemoryStore::default());
    store.held.lock().unwrap().lock = Some(9);
    let mut t = transport(Server::scripted([], []), &store);
    let waits: std::collections::BTreeSet<Duration> = (1..=8)
        .map(|seed| {
            let mut state = process(Fallback::Local);
            let mut call = upload(seed);
            assert!(t.step(&mut call, &mut state).is_none());
            match call.poll(t.now, &mut state) {
                Action::Wait {
                    until: Some(until), ..
                } => until - t.now,
                other => panic!("a backoff, not {other:?}"),
            }
        })
        .collect();
    assert!(waits.len() >= 5, "{waits:?}");
}

/// The refresher of the fleet makes at most two gettoken requests per call (the cap of every
/// call): a call whose token was rejected and whose second gettoken failed ends there, with
/// the failure, rather than asking a third time.
#[test]
fn the_fleet_refresher_makes_at_most_two_gettoken_requests_per_call() {
    let store = Arc::new(MemoryStore::default());
    let mut state = process(Fallback::Local);
    let failed = super::support::Reply::Fail(super::names::TransportError::maybe_sent("reset"));
    let tokens = [
        super::support::token("T1"),
        failed,
        super::support::token("T3"),
    ];
    let mut t = transport(
        Server::scripted(tokens, [errcode(42001), uploaded("M1")]),
        &store,
    );
    let error = t.run(&mut upload(1), &mut state).unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    let gettokens = t
        .server
        .lines()
        .iter()
        .filter(|l| **l == "gettoken")
        .count();
    assert_eq!(gettokens, 2, "{:?}", t.server.lines());
}

/// A store that supersedes the commit without holding a token: the refresher's own token
/// serves its call (one gettoken, no second LOOKUP, no loop).
#[test]
fn a_commit_superseded_with_no_token_held_keeps_the_refreshers_own_token() {
    let store = Arc::new(MemoryStore::default());
    store.supersede.store(true, Ordering::SeqCst);
    let mut state = process(Fallback::Local);
    let tokens = ["T1", "T2"].map(super::support::token);
    let mut t = transport(Server::scripted(tokens, [uploaded("M1")]), &store);
    t.run(&mut upload(1), &mut state).unwrap();
    assert_eq!(t.server.lines(), ["gettoken", &format!("{UPLOAD}T1")]);
    assert_eq!(store.log(), ["LOOKUP", "COMMIT 1"]);
    assert_eq!(store.stored(), None);
}

/// A store that answers every commit with a token that has already expired makes the
/// refresher fetch again; the call's cap of two gettoken requests ends it with a typed error.
#[test]
fn a_store_superseding_with_expired_tokens_costs_at_most_two_gettoken_requests() {
    let store = Arc::new(MemoryStore::default());
    store.supersede_expired.store(true, Ordering::SeqCst);
    let mut state = process(Fallback::Local);
    let tokens = ["T1", "T2", "T3", "T4"].map(super::support::token);
    let mut t = transport(Server::scripted(tokens, [uploaded("M1")]), &store);
    let error = t.run(&mut upload(1), &mut state).unwrap_err();
    assert!(
        matches!(&error, Error::Transport(e) if e.message.contains("after 2 gettoken requests")),
        "{error:?}"
    );
    assert_eq!(t.server.lines(), ["gettoken", "gettoken"]);
    assert_eq!(store.log(), ["LOOKUP", "COMMIT 1", "LOOKUP", "COMMIT 2"]);
}

/// A transport that answers a store command with something else ends the call with a misuse
/// that names what was due: the store's reply.
#[test]
fn an_answer_other_than_the_stores_to_a_store_command_is_a_misuse_naming_it() {
    let mut state = process(Fallback::Local);
    let mut call = upload(1);
    let now = std::time::Instant::now();
    let Action::Exchange(lane, Exchange::Store(_)) = call.poll(now, &mut state) else {
        panic!("the call looks the token up in the store first")
    };
    let body = super::names::Event::Body(bytes::Bytes::new());
    call.on_event(now, &mut state, lane, body);
    let error = loop {
        match call.poll(now, &mut state) {
            Action::WakeOthers => {}
            Action::Done(Err(error)) => break error,
            other => panic!("the call went on: {other:?}"),
        }
    };
    assert!(error.to_string().contains("where Store was due"), "{error}");
}

/// An event other than a head while a request is out ends the call with a misuse that names
/// what was due.
#[test]
fn an_answer_other_than_a_head_to_a_request_is_a_misuse_naming_it() {
    let mut state = super::support::client();
    let mut call = upload(1);
    let now = std::time::Instant::now();
    let Action::Exchange(lane, Exchange::Send { .. }) = call.poll(now, &mut state) else {
        panic!("the call asks for a token first")
    };
    call.on_event(now, &mut state, lane, super::names::Event::BodyEnd);
    let error = loop {
        match call.poll(now, &mut state) {
            Action::WakeOthers => {}
            Action::Done(Err(error)) => break error,
            other => panic!("the call went on: {other:?}"),
        }
    };
    assert!(
        error
            .to_string()
            .contains("where Head or TransportFailed was due"),
        "{error}"
    );
}
