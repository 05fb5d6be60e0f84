//! The blocking driver in one process against a real redis-server: fallback while the
//! server is down, and what lands in Redis.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::RedisServer;
use wecom_material_core::{AccessToken, Error, TokenGrant};
use wecom_material_redis::{
    AppKeys, Generation, RedisTokenStore, SharedTokenError, SharedTokenPolicy, SharedTokens,
    TokenOrigin,
};

const SECRET: &str = "the-SECRET-of-app-7";
const CORP: &str = "ww-corp-7";

fn keys() -> AppKeys {
    AppKeys::from_parts("http://127.0.0.1:1", CORP, SECRET)
}

fn tokens(redis: &RedisServer, policy: SharedTokenPolicy) -> SharedTokens {
    SharedTokens::new(
        RedisTokenStore::open_with_timeout(&redis.url(), keys(), Duration::from_secs(1)).unwrap(),
        policy,
    )
}

/// A gettoken that counts its calls and answers `tok-N`.
fn counter() -> (
    Arc<AtomicU32>,
    impl Fn() -> Result<TokenGrant, Error> + Clone,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    (calls, move || {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenGrant {
            token: AccessToken::new(format!("tok-{n}")),
            expires_in: Duration::from_secs(7200),
        })
    })
}

#[test]
fn redis_stopped_mid_run_costs_one_gettoken_and_one_warning() {
    let mut redis = RedisServer::start();
    let shared = tokens(&redis, SharedTokenPolicy::default());
    let (calls, gettoken) = counter();
    let first = shared.token(gettoken.clone()).unwrap();
    assert_eq!(first.origin, TokenOrigin::Refreshed);
    assert_eq!(
        shared.token(gettoken.clone()).unwrap().origin,
        TokenOrigin::Shared
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    redis.stop();
    // Threads of the process share one own token: one gettoken between them.
    let got: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| shared.token(gettoken.clone()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        got.iter()
            .all(|t| t.origin == TokenOrigin::Local && t.token.expose() == "tok-2")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(shared.warnings(), 1);
    // WeCom rejects the own token: replaced, still without the store, no new warning.
    let next = shared
        .replace(Generation::Local(1), gettoken.clone())
        .unwrap();
    assert_eq!(
        (next.token.expose(), next.origin),
        ("tok-3", TokenOrigin::Local)
    );
    assert_eq!(shared.warnings(), 1);

    // With `Fallback::Fail` the same outage is an error, and nothing is fetched.
    let strict = tokens(
        &redis,
        SharedTokenPolicy {
            fallback: wecom_material_redis::Fallback::Fail,
            ..SharedTokenPolicy::default()
        },
    );
    let err = strict.token(gettoken.clone()).unwrap_err();
    assert!(matches!(&err, SharedTokenError::Store(e) if e.message().starts_with(&redis.url())));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(matches!(Error::from(err), Error::Transport(_)));
}

#[test]
fn redis_keys_hold_no_secret_text() {
    let redis = RedisServer::start();
    let shared = tokens(&redis, SharedTokenPolicy::default());
    let (_, gettoken) = counter();
    let t = shared.token(gettoken.clone()).unwrap();
    // A rejected generation, a refresh and a failed one leave the lock and counter around.
    shared.replace(t.generation, gettoken).unwrap();
    let mut conn = redis.connection();
    let _: () = redis::cmd("SET")
        .arg(keys().lock())
        .arg("c:9")
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .unwrap();
    let found: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let mut found = found;
    found.sort();
    let tag = keys().tag().to_owned();
    assert_eq!(
        found,
        [
            format!("wecom-material:{{{tag}}}:fence"),
            format!("wecom-material:{{{tag}}}:lock"),
            format!("wecom-material:{{{tag}}}:token"),
        ]
    );
    // No piece of the secret (4 characters or more), nor the corp id, in any key.
    for key in &found {
        for len in 4..=SECRET.len() {
            for start in 0..=SECRET.len() - len {
                let piece = &SECRET[start..start + len];
                assert!(!key.contains(piece), "{key} holds {piece:?}");
            }
        }
        assert!(!key.contains(CORP), "{key}");
    }
}

#[test]
fn a_process_goes_back_to_the_shared_token_when_redis_returns() {
    let mut redis = RedisServer::start();
    let policy = SharedTokenPolicy {
        store_retry: Duration::from_millis(20),
        ..SharedTokenPolicy::default()
    };
    let shared = tokens(&redis, policy);
    let (calls, gettoken) = counter();
    redis.stop();
    assert_eq!(
        shared.token(gettoken.clone()).unwrap().origin,
        TokenOrigin::Local
    );
    redis.restart();
    // Past store_retry the store is asked again: it reconnects and shares a token again.
    std::thread::sleep(Duration::from_millis(30));
    let back = shared.token(gettoken.clone()).unwrap();
    assert_eq!(
        (back.origin, back.token.expose()),
        (TokenOrigin::Refreshed, "tok-2")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A second outage warns again (once).
    redis.stop();
    std::thread::sleep(Duration::from_millis(30));
    let local = shared.token(gettoken.clone()).unwrap();
    assert_eq!(
        (local.origin, local.token.expose()),
        (TokenOrigin::Local, "tok-1")
    );
    assert_eq!(shared.warnings(), 2);
}
