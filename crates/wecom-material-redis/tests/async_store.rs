//! The async store and driver (feature `tokio`) against a real redis-server.
#![cfg(feature = "tokio")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::RedisServer;
use wecom_material_core::{AccessToken, Error, TokenGrant};
use wecom_material_redis::{
    AppKeys, AsyncRedisTokenStore, AsyncSharedTokens, SharedTokenPolicy, TokenOrigin,
};

fn shared(redis: &RedisServer) -> Arc<AsyncSharedTokens> {
    let keys = AppKeys::from_parts("http://127.0.0.1:1", "ww-async", "async-SECRET");
    let store = AsyncRedisTokenStore::open_with_timeout(&redis.url(), keys, Duration::from_secs(1))
        .unwrap();
    Arc::new(AsyncSharedTokens::new(store, SharedTokenPolicy::default()))
}

async fn slow_gettoken(calls: Arc<AtomicU32>) -> Result<TokenGrant, Error> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(TokenGrant {
        token: AccessToken::new(format!("async-{n}")),
        expires_in: Duration::from_secs(7200),
    })
}

#[tokio::test]
async fn twenty_clients_with_their_own_connections_make_one_gettoken() {
    let redis = RedisServer::start();
    let calls = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let tokens = shared(&redis);
            let calls = calls.clone();
            tokio::spawn(async move {
                let got = tokens.token(|| slow_gettoken(calls.clone())).await.unwrap();
                (got, tokens.store().round_trips())
            })
        })
        .collect();
    let mut refreshed = 0;
    for h in handles {
        let (got, trips) = h.await.unwrap();
        assert_eq!(got.token.expose(), "async-1");
        assert!(trips >= 1);
        refreshed += usize::from(got.origin == TokenOrigin::Refreshed);
    }
    assert_eq!(refreshed, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_server_falls_back_with_one_warning() {
    let mut redis = RedisServer::start();
    let tokens = shared(&redis);
    redis.stop();
    let calls = Arc::new(AtomicU32::new(0));
    for _ in 0..3 {
        let got = tokens.token(|| slow_gettoken(calls.clone())).await.unwrap();
        assert_eq!(
            (got.token.expose(), got.origin),
            ("async-1", TokenOrigin::Local)
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(tokens.warnings().await, 1);
}
