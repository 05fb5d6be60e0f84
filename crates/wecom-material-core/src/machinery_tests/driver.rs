//! Virtual-time scenarios for the call driver and the token cache, through the public API
//! only, with test-only operations and a scripted server.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::names::{
    AccessToken, ApiError, BaseUrl, Body, CorpSecret, DecodeError, ErrCode, Error, Operation,
    Payload, Replay, TransportError, UploadBody,
};
use crate::driver::{Call, RetryPolicy};
use crate::ops::gettoken::GetToken;
use crate::task::{Action, Exchange, Timeouts};
use crate::token_cache::TokenCache;
use bytes::Bytes;

/// The call's next action, as the steps these scenarios were written in.
#[allow(clippy::large_enum_variant)]
enum Step<T> {
    Send(http::Request<Body>),
    Sleep { until: Instant },
    WaitForToken { until: Instant },
    Store(crate::shared_token::StoreCommand),
    WakeTokenWaiters,
    Done(Result<T, Error>),
}

impl<T: std::fmt::Debug> std::fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Send(request) => write!(
                f,
                "Send({} {})",
                request.method(),
                crate::secret::RedactedUri(request.uri())
            ),
            Step::Sleep { until } => write!(f, "Sleep({until:?})"),
            Step::WaitForToken { until } => write!(f, "WaitForToken({until:?})"),
            Step::Store(command) => write!(f, "Store({command:?})"),
            Step::WakeTokenWaiters => f.write_str("WakeTokenWaiters"),
            Step::Done(result) => write!(f, "Done({result:?})"),
        }
    }
}

impl<O: Operation> Call<O> {
    fn step(&mut self, now: Instant, cache: &mut TokenCache) -> Step<O::Output> {
        match self.poll(now, cache) {
            Action::Exchange(_, Exchange::Send { request, .. }) => Step::Send(request),
            Action::Wait {
                until: Some(until),
                wakeable: false,
            } => Step::Sleep { until },
            Action::Wait {
                until: Some(until),
                wakeable: true,
            } => Step::WaitForToken { until },
            Action::Exchange(_, Exchange::Store(command)) => Step::Store(command),
            Action::WakeOthers => Step::WakeTokenWaiters,
            Action::Done(result) => Step::Done(result),
            _ => panic!("a call never asks for a body, a stream or a flush"),
        }
    }
}

/// A JSON read operation: `GET /cgi-bin/fake?access_token=…` → `{"errcode":0,"value":N}`.
struct FakeJson;

/// An upload whose payload the transport streams from a one-shot reader.
struct OneShotUpload;

fn parse_fake<B: AsRef<[u8]>>(response: http::Response<B>) -> Result<u64, Error> {
    let status = response.status().as_u16();
    let body = response.body().as_ref();
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(status, format!("not JSON: {e}"), body))?;
    let code = v["errcode"].as_i64().unwrap_or(0);
    if code != 0 {
        let err = ApiError {
            code: ErrCode::from_code(code),
            errmsg: v["errmsg"].as_str().unwrap_or("").to_owned(),
        };
        return Err(if err.code == ErrCode::RateLimited {
            Error::RateLimited(err)
        } else {
            Error::Api(err)
        });
    }
    v["value"]
        .as_u64()
        .ok_or_else(|| DecodeError::new(status, "no value", body).into())
}

impl Operation for FakeJson {
    type Output = u64;
    const NAME: &'static str = "fake";
    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        http::Request::get(base.uri("/cgi-bin/fake", &[("access_token", token.expose())]))
            .body(Body::Empty)
            .unwrap()
    }
    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<u64, Error> {
        parse_fake(response)
    }
}

impl Operation for OneShotUpload {
    type Output = u64;
    const NAME: &'static str = "fake/upload";
    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        let body = Body::Upload(UploadBody {
            head: Bytes::from_static(b"--b\r\n\r\n"),
            payload: Payload::External {
                len: 1000,
                replay: Replay::OneShot,
            },
            tail: Bytes::from_static(b"\r\n--b--\r\n"),
            digest: None,
            sent: Default::default(),
        });
        http::Request::post(base.uri("/cgi-bin/upload", &[("access_token", token.expose())]))
            .body(body)
            .unwrap()
    }
    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<u64, Error> {
        parse_fake(response)
    }
}

fn base() -> BaseUrl {
    BaseUrl::parse("http://127.0.0.1:1").unwrap()
}

fn cache() -> TokenCache {
    TokenCache::new(GetToken::new("ww1", CorpSecret::new("secret-xyz")))
}

fn json(body: &str) -> http::Response<Bytes> {
    http::Response::builder()
        .status(200)
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn token_answer(token: &str) -> http::Response<Bytes> {
    json(&format!(
        r#"{{"errcode":0,"errmsg":"ok","access_token":"{token}","expires_in":7200}}"#
    ))
}

fn errcode(code: i64) -> http::Response<Bytes> {
    json(&format!(r#"{{"errcode":{code},"errmsg":"scripted"}}"#))
}

fn ok(value: u64) -> http::Response<Bytes> {
    json(&format!(r#"{{"errcode":0,"errmsg":"ok","value":{value}}}"#))
}

type Answer = Result<http::Response<Bytes>, TransportError>;

/// A scripted server: gettoken answers and business answers are taken in order; it records
/// every request as `gettoken` or `<path> token=<token>`.
struct Server {
    tokens: VecDeque<Answer>,
    business: VecDeque<Answer>,
    log: Vec<String>,
}

impl Server {
    fn new(
        tokens: impl IntoIterator<Item = Answer>,
        business: impl IntoIterator<Item = Answer>,
    ) -> Self {
        Self {
            tokens: tokens.into_iter().collect(),
            business: business.into_iter().collect(),
            log: Vec::new(),
        }
    }

    fn answer(&mut self, request: &http::Request<Body>) -> Answer {
        let uri = request.uri();
        if uri.path() == "/cgi-bin/gettoken" {
            assert!(uri.query().unwrap().contains("corpsecret=secret-xyz"));
            self.log.push("gettoken".into());
            self.tokens.pop_front().expect("unexpected gettoken")
        } else {
            let token = uri
                .query()
                .unwrap()
                .split('&')
                .find_map(|kv| kv.strip_prefix("access_token="))
                .unwrap();
            self.log.push(format!("{} token={token}", uri.path()));
            self.business
                .pop_front()
                .expect("unexpected business request")
        }
    }

    fn count(&self, what: &str) -> usize {
        self.log.iter().filter(|l| l.starts_with(what)).count()
    }
}

/// What a transport does, at virtual speed: returns the result and the sleeps taken.
fn run<O: Operation>(
    call: &mut Call<O>,
    cache: &mut TokenCache,
    now: &mut Instant,
    server: &mut Server,
) -> (Result<O::Output, Error>, Vec<Duration>) {
    let mut sleeps = Vec::new();
    for _ in 0..100 {
        match call.step(*now, cache) {
            Step::Send(request) => match server.answer(&request) {
                Ok(response) => call.on_response(*now, cache, response),
                Err(error) => call.on_transport_error(*now, cache, error),
            },
            Step::Sleep { until } => {
                assert!(until > *now);
                sleeps.push(until - *now);
                *now = until;
            }
            Step::WaitForToken { until } => *now = until,
            Step::Store(command) => panic!("no token store here: {command:?}"),
            Step::WakeTokenWaiters => {}
            Step::Done(result) => return (result, sleeps),
        }
    }
    panic!("the call did not finish in 100 steps");
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
}

/// A call's `Debug` is what a transport's log shows of it: the operation and the state it is
/// in (the token it fetches never shows).
#[test]
fn a_call_debugs_as_its_operation_and_state() {
    let now = Instant::now();
    let mut cache = cache();
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let shown = format!("{call:?}");
    assert!(
        shown.starts_with("Call { operation: \"fake\", state: \"Idle\""),
        "{shown}"
    );
    assert!(matches!(call.poll(now, &mut cache), Action::Exchange(..)));
    assert!(format!("{call:?}").contains("state: \"TokenRequest\""));
    call.on_response(now, &mut cache, token_answer("T0K3N-VALUE"));
    assert!(matches!(call.poll(now, &mut cache), Action::Exchange(..)));
    let shown = format!("{call:?}");
    assert!(shown.contains("state: \"BusinessRequest\""), "{shown}");
    assert!(
        shown.contains("token_requests: 1") && !shown.contains("T0K3N"),
        "{shown}"
    );
}

/// A cancel that comes after the answer arrived keeps the answer: the call's outcome is
/// known, nothing is left to stop (the upload happened; reporting "cancelled" would lie).
#[test]
fn a_cancel_after_the_answer_keeps_the_result() {
    let now = Instant::now();
    let mut cache = cache();
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    assert!(matches!(call.poll(now, &mut cache), Action::Exchange(..)));
    call.on_response(now, &mut cache, token_answer("T1"));
    assert!(matches!(call.poll(now, &mut cache), Action::Exchange(..)));
    call.on_response(now, &mut cache, ok(5));
    call.cancel(&mut cache);
    assert!(matches!(call.poll(now, &mut cache), Action::Done(Ok(5))));
    // Before the answer, a cancel ends the call as cancelled.
    let mut call = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    assert!(matches!(call.poll(now, &mut cache), Action::Exchange(..)));
    call.cancel(&mut cache);
    assert!(matches!(
        call.poll(now, &mut cache),
        Action::Done(Err(Error::Cancelled { .. }))
    ));
}

#[test]
fn first_call_fetches_then_reuses_the_token() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], [Ok(ok(1)), Ok(ok(2))]);
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        1
    );
    let mut call = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        2
    );
    assert_eq!(
        server.log,
        [
            "gettoken",
            "/cgi-bin/fake token=T1",
            "/cgi-bin/fake token=T1"
        ]
    );
}

#[test]
fn expired_token_42001_refreshes_once_then_succeeds() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1")), Ok(token_answer("T2"))],
        [Ok(errcode(42001)), Ok(ok(7))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert_eq!(result.unwrap(), 7);
    assert!(sleeps.is_empty());
    assert_eq!(
        server.log,
        [
            "gettoken",
            "/cgi-bin/fake token=T1",
            "gettoken",
            "/cgi-bin/fake token=T2"
        ]
    );
    assert_eq!((call.token_requests(), call.business_requests()), (2, 2));
    assert_eq!(cache.generation(), 2);
}

#[test]
fn invalid_token_40014_twice_fails_after_one_refresh() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1")), Ok(token_answer("T2"))],
        [Ok(errcode(40014)), Ok(errcode(40014))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert!(matches!(&err, Error::Api(e) if e.code == ErrCode::InvalidAccessToken));
    assert_eq!(
        (server.count("gettoken"), server.count("/cgi-bin/fake")),
        (2, 2)
    );
}

#[test]
fn rejected_token_takes_a_fresher_one_instead_of_fetching() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1")), Ok(token_answer("T2"))],
        [
            Ok(ok(0)),
            Ok(errcode(42001)),
            Ok(ok(2)),
            Ok(errcode(42001)),
            Ok(ok(3)),
        ],
    );
    let mut warm = Call::new(FakeJson, base(), policy(), 0, Timeouts::Json);
    run(&mut warm, &mut cache, &mut now, &mut server).0.unwrap();
    // Two calls send with T1; the first learns it expired and refreshes to T2.
    let mut slow = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let Step::Send(slow_request) = slow.step(now, &mut cache) else {
        panic!()
    };
    let mut fast = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    assert_eq!(
        run(&mut fast, &mut cache, &mut now, &mut server).0.unwrap(),
        2
    );
    // The slow call's T1 is rejected too: T2 is kept and used, no third gettoken.
    let late = server.answer(&slow_request).unwrap();
    slow.on_response(now, &mut cache, late);
    assert_eq!(
        run(&mut slow, &mut cache, &mut now, &mut server).0.unwrap(),
        3
    );
    assert_eq!(server.count("gettoken"), 2);
    assert_eq!(server.log.last().unwrap(), "/cgi-bin/fake token=T2");
}

#[test]
fn busy_twice_then_success_with_growing_sleeps() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1"))],
        [Ok(errcode(-1)), Ok(errcode(-1)), Ok(ok(3))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 99, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert_eq!(result.unwrap(), 3);
    assert_eq!(call.business_requests(), 3);
    assert_eq!(sleeps.len(), 2);
    let ms = Duration::from_millis;
    assert!(sleeps[0] >= ms(200) && sleeps[0] < ms(400), "{sleeps:?}");
    assert!(sleeps[1] >= ms(400) && sleeps[1] < ms(600), "{sleeps:?}");
}

#[test]
fn busy_forever_gives_up_after_four_attempts() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], (0..10).map(|_| Ok(errcode(-1))));
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert_eq!(result.unwrap_err().errcode(), Some(ErrCode::SystemBusy));
    assert_eq!(server.count("/cgi-bin/fake"), 4);
    assert_eq!(sleeps.len(), 3);
    assert!(sleeps.windows(2).all(|w| w[0] < w[1]), "{sleeps:?}");
}

#[test]
fn concurrency_limit_45033_is_retried_like_busy() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], [Ok(errcode(45033)), Ok(ok(1))]);
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        1
    );
}

#[test]
fn rate_limit_45009_is_not_retried() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], [Ok(errcode(45009)), Ok(ok(1))]);
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert!(matches!(result, Err(Error::RateLimited(_))));
    assert_eq!(server.count("/cgi-bin/fake"), 1);
    assert!(sleeps.is_empty());
}

#[test]
fn fatal_code_is_returned_at_once() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], [Ok(errcode(40007))]);
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::InvalidMediaId));
}

#[test]
fn bad_secret_on_gettoken_fails_without_retry() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(errcode(40001)), Ok(errcode(40001))], []);
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::InvalidCredential));
    assert_eq!(server.log, ["gettoken"]);
    // The refresh is released: the next call may try at once.
    assert!(!cache.is_refreshing(now));
}

#[test]
fn busy_gettoken_is_retried_within_the_busy_budget() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(errcode(-1)), Ok(token_answer("T1"))],
        [Ok(errcode(-1)), Ok(errcode(-1)), Ok(errcode(-1)), Ok(ok(1))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    // 1 busy gettoken + 2 busy business answers use the budget of 3; the third busy ends it.
    assert_eq!(err.errcode(), Some(ErrCode::SystemBusy));
    assert_eq!(
        (server.count("gettoken"), server.count("/cgi-bin/fake")),
        (2, 3)
    );
}

#[test]
fn old_gettoken_answer_without_errcode_works() {
    let mut now = Instant::now();
    let mut cache = cache();
    let legacy = json(r#"{"access_token":"LEGACY","expires_in":7200}"#);
    let mut server = Server::new([Ok(legacy)], [Ok(ok(4))]);
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        4
    );
    assert_eq!(server.log[1], "/cgi-bin/fake token=LEGACY");
}

#[test]
fn transport_errors_are_retried_then_surface() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [
            Err(TransportError::not_sent("connect refused")),
            Ok(token_answer("T1")),
        ],
        [Err(TransportError::maybe_sent("reset")), Ok(ok(5))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert_eq!(result.unwrap(), 5);
    assert_eq!(sleeps.len(), 2);

    let mut server = Server::new([], (0..5).map(|_| Err(TransportError::maybe_sent("reset"))));
    let mut call = Call::new(FakeJson, base(), policy(), 5, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    assert_eq!(server.count("/cgi-bin/fake"), 3);
}

#[test]
fn one_shot_upload_is_not_resent_after_a_transport_error() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1"))],
        [Err(TransportError::maybe_sent("reset")), Ok(ok(1))],
    );
    let mut call = Call::new(OneShotUpload, base(), policy(), 5, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    let Error::NotReplayable(cause) = err else {
        panic!("{err:?}")
    };
    assert!(matches!(*cause, Error::Transport(_)));
    assert_eq!(server.count("/cgi-bin/upload"), 1);
}

#[test]
fn one_shot_upload_is_not_resent_after_42001_or_busy() {
    for code in [42001, -1] {
        let mut now = Instant::now();
        let mut cache = cache();
        let mut server = Server::new(
            [Ok(token_answer("T1")), Ok(token_answer("T2"))],
            [Ok(errcode(code)), Ok(ok(1))],
        );
        let mut call = Call::new(OneShotUpload, base(), policy(), 5, Timeouts::Json);
        let err = run(&mut call, &mut cache, &mut now, &mut server)
            .0
            .unwrap_err();
        assert!(matches!(err, Error::NotReplayable(_)), "{err:?}");
        assert_eq!(err.errcode(), Some(ErrCode::from_code(code)));
        assert_eq!(server.count("/cgi-bin/upload"), 1);
        assert_eq!(server.count("gettoken"), 1);
    }
    // Even so, the rejected token is dropped for the calls that follow.
    let now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new([Ok(token_answer("T1"))], [Ok(errcode(42001))]);
    let mut call = Call::new(OneShotUpload, base(), policy(), 5, Timeouts::Json);
    let mut t = now;
    let _ = run(&mut call, &mut cache, &mut t, &mut server);
    let mut next = Call::new(FakeJson, base(), policy(), 6, Timeouts::Json);
    assert!(
        matches!(next.step(t, &mut cache), Step::Send(r) if r.uri().path() == "/cgi-bin/gettoken")
    );
}

#[test]
fn sixty_four_concurrent_calls_make_one_gettoken() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut calls: Vec<_> = (0..64)
        .map(|i| Call::new(FakeJson, base(), policy(), i, Timeouts::Json))
        .collect();
    let mut server = Server::new([Ok(token_answer("T1"))], (0..64).map(|i| Ok(ok(i))));
    let mut refresher = None;
    for (i, call) in calls.iter_mut().enumerate() {
        match call.step(t0, &mut cache) {
            Step::Send(request) => {
                assert!(call.is_token_request_in_flight());
                assert!(refresher.replace((i, request)).is_none());
            }
            Step::WaitForToken { until } => assert_eq!(until, t0 + Duration::from_secs(30)),
            other => panic!("{other:?}"),
        }
    }
    // The refresher's answer arrives 100 ms later; the transport wakes the waiters.
    let (i, request) = refresher.unwrap();
    let t1 = t0 + Duration::from_millis(100);
    let response = server.answer(&request).unwrap();
    calls[i].on_response(t1, &mut cache, response);
    assert!(!calls[i].is_token_request_in_flight());
    let mut results = Vec::new();
    for call in &mut calls {
        let Step::Send(request) = call.step(t1, &mut cache) else {
            panic!()
        };
        assert!(!call.is_token_request_in_flight());
        call.on_response(t1, &mut cache, server.answer(&request).unwrap());
        let Step::Done(result) = call.step(t1, &mut cache) else {
            panic!()
        };
        results.push(result.unwrap());
    }
    assert_eq!(results.len(), 64);
    assert_eq!(server.count("gettoken"), 1);
    assert_eq!(server.count("/cgi-bin/fake token=T1"), 64);
}

#[test]
fn a_vanished_refresher_is_taken_over_after_its_lease() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut vanished = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    assert!(matches!(vanished.step(t0, &mut cache), Step::Send(_)));
    // Its future is dropped without a word: the others wait for the lease, then take over.
    drop(vanished);
    let mut server = Server::new([Ok(token_answer("T2"))], [Ok(ok(9))]);
    let mut waiter = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    let Step::WaitForToken { until } = waiter.step(t0 + Duration::from_secs(1), &mut cache) else {
        panic!()
    };
    assert_eq!(until, t0 + Duration::from_secs(30));
    let mut now = until;
    assert_eq!(
        run(&mut waiter, &mut cache, &mut now, &mut server)
            .0
            .unwrap(),
        9
    );
    assert_eq!(server.log, ["gettoken", "/cgi-bin/fake token=T2"]);
}

#[test]
fn a_cancelled_refresher_hands_the_refresh_back_at_once() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut first = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    assert!(matches!(first.step(t0, &mut cache), Step::Send(_)));
    first.cancel(&mut cache);
    assert!(matches!(
        first.step(t0, &mut cache),
        Step::Done(Err(Error::Cancelled { .. }))
    ));
    let mut second = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    assert!(matches!(
        second.step(t0, &mut cache),
        Step::Send(r) if r.uri().path() == "/cgi-bin/gettoken"
    ));
}

#[test]
fn refresh_ahead_is_done_by_one_call_while_others_use_the_valid_token() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut now = t0;
    let mut server = Server::new(
        [Ok(token_answer("T1")), Ok(token_answer("T2"))],
        [Ok(ok(1)), Ok(ok(2)), Ok(ok(3))],
    );
    run(
        &mut Call::new(FakeJson, base(), policy(), 1, Timeouts::Json),
        &mut cache,
        &mut now,
        &mut server,
    )
    .0
    .unwrap();
    let at_margin = t0 + Duration::from_secs(7200 - 300);
    let mut ahead = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    let Step::Send(gettoken) = ahead.step(at_margin, &mut cache) else {
        panic!()
    };
    assert!(ahead.is_token_request_in_flight());
    let mut other = Call::new(FakeJson, base(), policy(), 3, Timeouts::Json);
    let mut t = at_margin;
    assert_eq!(
        run(&mut other, &mut cache, &mut t, &mut server).0.unwrap(),
        2
    );
    let response = server.answer(&gettoken).unwrap();
    ahead.on_response(at_margin, &mut cache, response);
    let mut t = at_margin;
    assert_eq!(
        run(&mut ahead, &mut cache, &mut t, &mut server).0.unwrap(),
        3
    );
    assert_eq!(
        server.log[1..],
        [
            "/cgi-bin/fake token=T1",
            "/cgi-bin/fake token=T1",
            "gettoken",
            "/cgi-bin/fake token=T2"
        ]
    );
}

#[test]
fn debug_output_never_shows_token_or_secret() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let step = call.step(t0, &mut cache);
    let step_text = format!("{step:?}");
    assert!(step_text.contains("corpsecret=***"), "{step_text}");
    call.on_response(t0, &mut cache, token_answer("TOKEN-SHOULD-HIDE"));
    let step = call.step(t0, &mut cache);
    let stored = cache.export(t0, 1_700_000_000).unwrap();
    for text in [
        step_text,
        format!("{step:?}"),
        format!("{cache:?}"),
        format!("{stored:?}"),
        format!("{call:?}"),
    ] {
        assert!(!text.contains("TOKEN-SHOULD-HIDE"), "{text}");
        assert!(!text.contains("secret-xyz"), "{text}");
    }
}

#[test]
fn polling_after_done_is_a_typed_error() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    call.cancel(&mut cache);
    assert!(matches!(
        call.step(t0, &mut cache),
        Step::Done(Err(Error::Cancelled { .. }))
    ));
    let Step::Done(Err(Error::Transport(error))) = call.step(t0, &mut cache) else {
        panic!("polled after the result")
    };
    assert!(error.to_string().contains("misuse"), "{error}");
}

#[test]
fn a_failed_refresh_ahead_falls_back_to_the_valid_token() {
    let t0 = Instant::now();
    let mut cache = cache();
    let mut now = t0;
    let mut server = Server::new(
        [
            Ok(token_answer("T1")),
            Ok(errcode(-1)),
            Err(TransportError::maybe_sent("reset")),
        ],
        [Ok(ok(1)), Ok(ok(2)), Ok(ok(3))],
    );
    run(
        &mut Call::new(FakeJson, base(), policy(), 1, Timeouts::Json),
        &mut cache,
        &mut now,
        &mut server,
    )
    .0
    .unwrap();
    // In the margin, the refresh ahead fails: the call uses T1 without sleeping.
    let mut now = t0 + Duration::from_secs(7200 - 300);
    let mut call = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    let (result, sleeps) = run(&mut call, &mut cache, &mut now, &mut server);
    assert_eq!(result.unwrap(), 2);
    assert!(sleeps.is_empty());
    // The next refresh ahead waits for the failed lease to end, then fails in the network.
    let mut now = t0 + Duration::from_secs(7200 - 300 + 30);
    let mut call = Call::new(FakeJson, base(), policy(), 3, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        3
    );
    assert_eq!(
        server.log,
        [
            "gettoken",
            "/cgi-bin/fake token=T1",
            "gettoken",
            "/cgi-bin/fake token=T1",
            "gettoken",
            "/cgi-bin/fake token=T1"
        ]
    );
}

/// Issue 10 (SPEC §9): 40001 on a business call means the token was not accepted: refresh
/// once, then fail.
#[test]
fn invalid_credential_40001_on_a_business_call_refreshes_once_then_fails() {
    let mut now = Instant::now();
    let mut cache = cache();
    let mut server = Server::new(
        [Ok(token_answer("T1")), Ok(token_answer("T2"))],
        [Ok(errcode(40001)), Ok(ok(9))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    assert_eq!(
        run(&mut call, &mut cache, &mut now, &mut server).0.unwrap(),
        9
    );
    assert_eq!(
        server.log,
        [
            "gettoken",
            "/cgi-bin/fake token=T1",
            "gettoken",
            "/cgi-bin/fake token=T2"
        ]
    );

    let mut server = Server::new(
        [Ok(token_answer("T3"))],
        [Ok(errcode(40001)), Ok(errcode(40001))],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::InvalidCredential));
    // T2 was still cached: rejected, one refresh (T3), rejected again: over.
    assert_eq!(
        server.log,
        [
            "/cgi-bin/fake token=T2",
            "gettoken",
            "/cgi-bin/fake token=T3"
        ]
    );
}

/// Issue 10: `expires_in: 0` is not a token: one gettoken request, a decode error, no storm.
#[test]
fn gettoken_with_expires_in_0_ends_the_call_after_one_request() {
    let mut now = Instant::now();
    let mut cache = cache();
    let zero = json(r#"{"errcode":0,"errmsg":"ok","access_token":"Z","expires_in":0}"#);
    let mut server = Server::new([Ok(zero)], []);
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err}");
    assert_eq!(server.log, ["gettoken"]);
}

/// Issue 10: one call makes at most two gettoken requests, whatever gettoken answers.
#[test]
fn one_call_makes_at_most_two_token_requests() {
    use crate::driver::MAX_TOKEN_REQUESTS;
    let mut now = Instant::now();
    let mut cache = cache();
    // Busy gettoken forever (within the busy budget of 3).
    let mut server = Server::new((0..5).map(|_| Ok(errcode(-1))), []);
    let mut call = Call::new(FakeJson, base(), policy(), 1, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert_eq!(err.errcode(), Some(ErrCode::SystemBusy));
    assert_eq!(server.count("gettoken"), MAX_TOKEN_REQUESTS as usize);
    assert!(!cache.is_refreshing(now));

    // gettoken unreachable: the same cap.
    let mut server = Server::new(
        (0..5).map(|_| Err(TransportError::not_sent("connect refused"))),
        [],
    );
    let mut call = Call::new(FakeJson, base(), policy(), 2, Timeouts::Json);
    let err = run(&mut call, &mut cache, &mut now, &mut server)
        .0
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert_eq!(call.token_requests(), MAX_TOKEN_REQUESTS);
}

/// Issue 10: a download is a call like any other: a token rejected on `media/get` (as a JSON
/// error, or as an `Error-Code` header on a media type) is refreshed once.
#[test]
fn token_rejected_on_a_download_refreshes_like_any_call() {
    use super::names::{GetMedia, MediaEndpoint, MediaId};
    let rejected = |code: i64, as_header: bool| -> http::Response<Bytes> {
        if as_header {
            http::Response::builder()
                .status(200)
                .header("content-type", "image/jpeg")
                .header("error-code", code.to_string())
                .body(Bytes::new())
                .unwrap()
        } else {
            http::Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .body(Bytes::from(format!(r#"{{"errcode":{code},"errmsg":"x"}}"#)))
                .unwrap()
        }
    };
    let media = http::Response::builder()
        .status(200)
        .header("content-type", "image/jpeg")
        .header("content-length", "4")
        .body(Bytes::from_static(b"\xff\xd8\xff\xd9"))
        .unwrap();
    for (code, as_header) in [(40014, false), (42001, true), (40001, false), (40014, true)] {
        let mut now = Instant::now();
        let mut cache = cache();
        let mut server = Server::new(
            [Ok(token_answer("T1")), Ok(token_answer("T2"))],
            [Ok(rejected(code, as_header)), Ok(media.clone())],
        );
        let op = GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
        let mut call = Call::new(op, base(), policy(), 1, Timeouts::Json);
        let got = run(&mut call, &mut cache, &mut now, &mut server).0.unwrap();
        assert_eq!(
            got.bytes.as_ref(),
            b"\xff\xd8\xff\xd9",
            "{code} {as_header}"
        );
        assert_eq!(
            server.log,
            [
                "gettoken",
                "/cgi-bin/media/get token=T1",
                "gettoken",
                "/cgi-bin/media/get token=T2"
            ],
            "{code} {as_header}"
        );
    }
}
