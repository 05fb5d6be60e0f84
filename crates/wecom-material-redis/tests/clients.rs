//! The blocking client (`wecom_material_ureq::Client`) with a `RedisTokenStore`, in one test
//! process, against a real redis-server and the emulator: its threads, two clients standing
//! for two processes, a revoked token, a store outage and its end, `Fallback::Fail`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::RedisServer;
use support::capture::{capture_warnings, stored_generation, warnings_naming};
use wecom_material_core::{ErrCode, Error, MediaId, RetryPolicy};
use wecom_material_mock::{App, Endpoint, MockConfig, MockServer};
use wecom_material_redis::{AppKeys, Fallback, RedisTokenStore, SharedTokenPolicy};
use wecom_material_ureq::{Client, ClientBuilder, DownloadOptions};

const CORP: &str = "ww-corp-7";
const SECRET: &str = "the-SECRET-of-app-7";

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        apps: vec![App::new(CORP, SECRET)],
        ..MockConfig::default()
    })
}

fn builder(mock: &MockServer) -> ClientBuilder {
    Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
}

/// A client of the emulator's app sharing its token through Redis at `url`: what one process
/// of a fleet builds.
fn shared_client(
    mock: &MockServer,
    url: &str,
    policy: SharedTokenPolicy,
) -> (Client, Arc<RedisTokenStore>) {
    let builder = builder(mock);
    let keys = AppKeys::for_client(builder.settings());
    let store =
        Arc::new(RedisTokenStore::open_with_timeout(url, keys, Duration::from_secs(1)).unwrap());
    (builder.token_store(store.clone(), policy).build(), store)
}

/// A business call that needs a valid token: the unknown media answers 40007 when WeCom
/// accepts the token.
fn call(client: &Client) -> Result<(), Error> {
    match client.get(&MediaId::new("none"), DownloadOptions::default()) {
        Err(e) if e.errcode() == Some(ErrCode::InvalidMediaId) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => panic!("the emulator holds no media `none`"),
    }
}

fn token(client: &Client) -> String {
    client.export_token().expect("a token is held").access_token
}

#[test]
fn threads_of_one_client_make_one_gettoken_and_a_handful_of_round_trips() {
    let redis = RedisServer::start();
    let mock = mock();
    let (client, store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..3 {
                    call(&client).unwrap();
                }
            });
        }
    });
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    // The client's own cache is the first level: one thread asked the store, once: LOOKUP and
    // COMMIT, each a refused EVALSHA, SCRIPT LOAD and EVALSHA on this fresh server.
    assert_eq!(store.round_trips(), 6);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("1")
    );
    // What lands in Redis: the token and the fencing counter, under keys without the secret.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("wecom-material:{"), "{key}");
        assert!(!key.contains("SECRET") && !key.contains(CORP), "{key}");
    }
}

#[test]
fn two_clients_like_two_processes_share_one_token() {
    let redis = RedisServer::start();
    let mock = mock();
    let (first, first_store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    let (second, second_store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&first).unwrap();
    call(&second).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(token(&first), token(&second));
    // The second read the first's token: one LOOKUP, whose script the first already loaded
    // (the first: LOOKUP and COMMIT, each a refused EVALSHA, SCRIPT LOAD and EVALSHA).
    assert_eq!(first_store.round_trips(), 6);
    assert_eq!(second_store.round_trips(), 1);
}

#[test]
fn a_revoked_token_costs_one_more_gettoken_and_the_generation_moves_on() {
    let redis = RedisServer::start();
    let mock = mock();
    let (first, store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    let (second, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&first).unwrap();
    call(&second).unwrap();
    let old = token(&first);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("1")
    );

    mock.revoke_tokens();
    // Both clients' tokens are rejected (40014); the first to see it INVALIDATEs generation 1
    // and refreshes, the other's INVALIDATE of generation 1 evicts nothing and it reads the
    // new token.
    std::thread::scope(|s| {
        s.spawn(|| call(&first).unwrap());
        s.spawn(|| call(&second).unwrap());
    });
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert_eq!(token(&first), token(&second));
    assert_ne!(token(&first), old);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("2")
    );
}

#[test]
fn redis_stopped_falls_back_with_one_warning_and_a_restart_brings_sharing_back() {
    capture_warnings();
    let mut redis = RedisServer::start();
    let mock = mock();
    let policy = SharedTokenPolicy {
        store_retry: Duration::from_millis(20),
        ..SharedTokenPolicy::default()
    };
    let (client, store) = shared_client(&mock, &redis.url(), policy);
    call(&client).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    // The store goes away, then WeCom revokes the token: the client warns once and gets a
    // token of its own, one gettoken for all its threads.
    redis.stop();
    mock.revoke_tokens();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| call(&client).unwrap());
        }
    });
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    let warned = warnings_naming(&redis.url());
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].ends_with("; using a token of this process's own until the store answers"),
        "{warned:?}"
    );

    // Redis is back. The client's own token keeps serving (its cache is the first level):
    // the store is not asked while that token is good.
    redis.restart();
    std::thread::sleep(Duration::from_millis(30));
    let trips = store.round_trips();
    call(&client).unwrap();
    assert_eq!(store.round_trips(), trips);
    // Past `store_retry`, the next time the client needs a token it asks the store again: its
    // refresh is stored, and another client (process) reads it instead of fetching.
    mock.revoke_tokens();
    call(&client).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 3);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("1")
    );
    let (other, _) = shared_client(&mock, &redis.url(), policy);
    call(&other).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 3);
    assert_eq!(token(&other), token(&client));
    assert_eq!(warnings_naming(&redis.url()).len(), 1);

    // A second outage warns again, once.
    redis.stop();
    std::thread::sleep(Duration::from_millis(30));
    mock.revoke_tokens();
    call(&client).unwrap();
    call(&client).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 4);
    assert_eq!(warnings_naming(&redis.url()).len(), 2);
}

/// A connection Redis closed meanwhile (an idle timeout, a proxy) is replaced on the spot: no
/// warning, no token of the process's own, no extra gettoken.
#[test]
fn a_kept_connection_closed_by_redis_is_replaced_without_a_fallback() {
    capture_warnings();
    let redis = RedisServer::start();
    let mock = mock();
    let (a, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&a).unwrap();
    let killed = redis.kill_clients();
    assert!(killed >= 1, "a's connection was open");
    mock.revoke_tokens();
    let (b, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&b).unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    // A's token is rejected: its INVALIDATE meets the closed connection, goes again on a new
    // one, and A reads B's token.
    call(&a).unwrap();
    assert_eq!(token(&a), token(&b));
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert!(warnings_naming(&redis.url()).is_empty());
}

/// Redis restarted without its data counts generations from 1 again: a client still holding
/// the old generation-1 token evicts, when WeCom rejects it, only that token — never the new
/// generation 1 another process stored meanwhile.
#[test]
fn after_redis_lost_its_data_an_old_rejection_evicts_nothing_new() {
    let mut redis = RedisServer::start();
    let mock = mock();
    let keys = AppKeys::for_client(builder(&mock).settings());
    let (a, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&a).unwrap();
    let old = token(&a);
    redis.stop();
    redis.restart();
    mock.revoke_tokens();
    // Another process stores a new token, generation 1 of the new data.
    let (b, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&b).unwrap();
    let new = token(&b);
    assert_ne!(new, old);
    assert_eq!(stored_generation(&redis, &keys).as_deref(), Some("1"));
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    // A learns that its old token was revoked: its INVALIDATE names the old token, the new
    // one stays, and A reads it: no third gettoken.
    call(&a).unwrap();
    assert_eq!(token(&a), new);
    assert_eq!(stored_generation(&redis, &keys).as_deref(), Some("1"));
    assert_eq!(mock.count(Endpoint::GetToken), 2);
}

#[test]
fn fallback_fail_is_a_transport_error_naming_the_store_without_its_password() {
    let mut redis = RedisServer::start();
    let mock = mock();
    let url = format!("redis://:pw-SECRET@127.0.0.1:{}", redis.port());
    redis.stop();
    let policy = SharedTokenPolicy {
        fallback: Fallback::Fail,
        ..SharedTokenPolicy::default()
    };
    let (client, _) = shared_client(&mock, &url, policy);
    let err = call(&client).unwrap_err();
    let Error::Transport(transport) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(
        transport.message.starts_with(&format!(
            "token store: redis://***@127.0.0.1:{}: ",
            redis.port()
        )),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("pw-SECRET"));
    assert_eq!(mock.count(Endpoint::GetToken), 0, "nothing is fetched");
    assert!(client.export_token().is_none());
}
