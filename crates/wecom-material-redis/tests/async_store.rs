//! The async client (`wecom_material_hyper::Client`) with an `AsyncRedisTokenStore` (feature
//! `tokio`) on a multi-thread runtime, against a real redis-server and the emulator: the
//! scenarios of `clients.rs`.
#![cfg(feature = "tokio")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::RedisServer;
use support::capture::{capture_warnings, stored_generation, warnings_naming};
use wecom_material_core::{ErrCode, Error, MediaId, RetryPolicy};
use wecom_material_hyper::{Client, DownloadOptions};
use wecom_material_mock::{App, Endpoint, MockConfig, MockServer};
use wecom_material_redis::{AppKeys, AsyncRedisTokenStore, Fallback, SharedTokenPolicy};

const CORP: &str = "ww-async";
const SECRET: &str = "async-SECRET-of-the-app";

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        apps: vec![App::new(CORP, SECRET)],
        ..MockConfig::default()
    })
}

/// A client sharing its token through Redis at `url`, with its own store (connection): what
/// one process of a fleet builds.
fn shared_client(
    mock: &MockServer,
    url: &str,
    policy: SharedTokenPolicy,
) -> (Client, Arc<AsyncRedisTokenStore>) {
    let builder = Client::builder(CORP, SECRET)
        .base_url(&mock.base_url())
        .unwrap()
        .retry_policy(RetryPolicy {
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..RetryPolicy::default()
        });
    let keys = AppKeys::for_client(builder.settings());
    let store = Arc::new(
        AsyncRedisTokenStore::open_with_timeout(url, keys, Duration::from_secs(1)).unwrap(),
    );
    (builder.token_store(store.clone(), policy).build(), store)
}

/// A business call that needs a valid token (the unknown media answers 40007).
async fn call(client: &Client) -> Result<(), Error> {
    match client
        .get(&MediaId::new("none"), DownloadOptions::default())
        .await
    {
        Err(e) if e.errcode() == Some(ErrCode::InvalidMediaId) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => panic!("the emulator holds no media `none`"),
    }
}

/// One business call per client given, as tasks all running at once; each must succeed.
async fn calls_at_once(clients: impl Iterator<Item = &Client>) {
    let tasks: Vec<_> = clients
        .map(|client| {
            let client = client.clone();
            tokio::spawn(async move { call(&client).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

fn token(client: &Client) -> String {
    client.export_token().expect("a token is held").access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_one_client_make_one_gettoken_and_a_handful_of_round_trips() {
    let redis = RedisServer::start();
    let mock = mock();
    let (client, store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    calls_at_once(std::iter::repeat_n(&client, 32)).await;
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    assert_eq!(
        store.round_trips(),
        6,
        "LOOKUP and COMMIT, each loading its script"
    );
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_with_their_own_connections_share_one_token() {
    let redis = RedisServer::start();
    let mock = mock();
    let clients: Vec<_> = (0..20)
        .map(|_| shared_client(&mock, &redis.url(), SharedTokenPolicy::default()))
        .collect();
    calls_at_once(clients.iter().map(|(client, _)| client)).await;
    assert_eq!(mock.count(Endpoint::GetToken), 1);
    let first = token(&clients[0].0);
    assert!(clients.iter().all(|(c, _)| token(c) == first));
    assert!(clients.iter().all(|(_, s)| s.round_trips() >= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_costs_one_more_gettoken_and_the_generation_moves_on() {
    let redis = RedisServer::start();
    let mock = mock();
    let (first, store) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    let (second, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&first).await.unwrap();
    call(&second).await.unwrap();
    let old = token(&first);
    mock.revoke_tokens();
    let (a, b) = tokio::join!(call(&first), call(&second));
    a.unwrap();
    b.unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert_eq!(token(&first), token(&second));
    assert_ne!(token(&first), old);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_falls_back_with_one_warning_and_a_restart_brings_sharing_back() {
    capture_warnings();
    let mut redis = RedisServer::start();
    let mock = mock();
    let policy = SharedTokenPolicy {
        store_retry: Duration::from_millis(20),
        ..SharedTokenPolicy::default()
    };
    let (client, store) = shared_client(&mock, &redis.url(), policy);
    call(&client).await.unwrap();

    redis.stop();
    mock.revoke_tokens();
    calls_at_once(std::iter::repeat_n(&client, 8)).await;
    assert_eq!(
        mock.count(Endpoint::GetToken),
        2,
        "one own token for all tasks"
    );
    assert_eq!(warnings_naming(&redis.url()).len(), 1);

    redis.restart();
    tokio::time::sleep(Duration::from_millis(30)).await;
    mock.revoke_tokens();
    call(&client).await.unwrap();
    assert_eq!(mock.count(Endpoint::GetToken), 3);
    assert_eq!(
        stored_generation(&redis, store.keys()).as_deref(),
        Some("1")
    );
    let (other, _) = shared_client(&mock, &redis.url(), policy);
    call(&other).await.unwrap();
    assert_eq!(
        mock.count(Endpoint::GetToken),
        3,
        "the other client reads the stored one"
    );
    assert_eq!(token(&other), token(&client));
    assert_eq!(warnings_naming(&redis.url()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_fail_is_a_transport_error_naming_the_store_without_its_password() {
    let mut redis = RedisServer::start();
    let mock = mock();
    let url = format!("redis://:pw-SECRET@127.0.0.1:{}", redis.port());
    redis.stop();
    let policy = SharedTokenPolicy {
        fallback: Fallback::Fail,
        ..SharedTokenPolicy::default()
    };
    let (client, _) = shared_client(&mock, &url, policy);
    let err = call(&client).await.unwrap_err();
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
    assert_eq!(mock.count(Endpoint::GetToken), 0);
}

/// A multiplexed connection Redis closed meanwhile is replaced on the spot (as the blocking
/// store's): no warning, no token of the process's own, no extra gettoken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_closed_by_redis_is_replaced_without_a_fallback() {
    capture_warnings();
    let redis = RedisServer::start();
    let mock = mock();
    let (a, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&a).await.unwrap();
    let killed = redis.kill_clients();
    assert!(killed >= 1, "a's connection was open");
    mock.revoke_tokens();
    let (b, _) = shared_client(&mock, &redis.url(), SharedTokenPolicy::default());
    call(&b).await.unwrap();
    call(&a).await.unwrap();
    assert_eq!(token(&a), token(&b));
    assert_eq!(mock.count(Endpoint::GetToken), 2);
    assert_eq!(warnings_naming(&redis.url()).len(), 0);
}
