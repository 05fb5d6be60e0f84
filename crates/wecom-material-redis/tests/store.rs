//! The four scripts against a real redis-server, one process.

mod support;

use std::time::Duration;

use support::RedisServer;
use wecom_material_core::{AccessToken, TokenGrant};
use wecom_material_redis::{AppKeys, CommitReply, LookupReply, RedisTokenStore, StoredGrant};

fn keys() -> AppKeys {
    AppKeys::from_parts("http://127.0.0.1:1", "ww-corp", "s3cr3t-SECRET-text")
}

fn grant(token: &str, secs: u64) -> TokenGrant {
    TokenGrant {
        token: AccessToken::new(token),
        expires_in: Duration::from_secs(secs),
    }
}

const LEASE: Duration = Duration::from_secs(30);
const MARGIN: Duration = Duration::from_secs(300);

fn refresh(store: &RedisTokenStore) -> (u64, Option<StoredGrant>) {
    match store.lookup(LEASE).unwrap() {
        LookupReply::Refresh {
            fence,
            lease,
            current,
        } => {
            assert_eq!(lease, LEASE);
            (fence, current)
        }
        other => panic!("expected to refresh, got {other:?}"),
    }
}

#[test]
fn lookup_commit_fence_invalidate_and_fail_on_a_real_server() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();

    // Cold: this caller refreshes with fence 1; the next one waits within the lease.
    let (f1, current) = refresh(&store);
    assert_eq!((f1, current), (1, None));
    let LookupReply::Wait {
        retry_in,
        cooling_down: false,
    } = store.lookup(LEASE).unwrap()
    else {
        panic!("expected to wait");
    };
    assert!(retry_in <= LEASE && retry_in > LEASE - Duration::from_secs(5));

    // Commit: stored under generation 1, the lock released, served to everyone.
    assert_eq!(
        store.commit(f1, &grant("tok-1", 7200), MARGIN).unwrap(),
        CommitReply::Stored { generation: 1 }
    );
    let mut conn = redis.connection();
    let lock: Option<String> = redis::cmd("GET")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    assert_eq!(lock, None);
    let LookupReply::Ready(g) = store.lookup(LEASE).unwrap() else {
        panic!("expected the token");
    };
    assert_eq!((g.token.expose(), g.generation), ("tok-1", 1));
    assert!(g.expires_in > Duration::from_secs(7190) && g.expires_in <= Duration::from_secs(7200));
    // The record expires with the token.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(keys().token())
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 7_190_000 && ttl <= 7_200_000, "{ttl}");

    // A stale rejection does nothing; the current one deletes.
    assert!(!store.invalidate(7).unwrap());
    assert!(store.invalidate(1).unwrap());
    let (f2, _) = refresh(&store);
    assert_eq!(f2, 2);
    // The lease of fence 2 ends (simulated: the lock vanishes) and fence 3 takes over.
    let _: () = redis::cmd("DEL")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    let (f3, _) = refresh(&store);
    assert_eq!(f3, 3);
    // The late refresher of fence 2 is fenced and does not touch fence 3's lock.
    assert_eq!(
        store.commit(f2, &grant("late", 7200), MARGIN).unwrap(),
        CommitReply::Superseded { current: None }
    );
    let lock: Option<String> = redis::cmd("GET")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    assert_eq!(lock.as_deref(), Some("r:3"));
    // A stale FAIL does nothing either; fence 3's FAIL starts a cool-down.
    assert!(!store.fail(f2, Duration::from_secs(5)).unwrap());
    assert!(store.fail(f3, Duration::from_secs(5)).unwrap());
    let LookupReply::Wait {
        retry_in,
        cooling_down: true,
    } = store.lookup(LEASE).unwrap()
    else {
        panic!("expected a cool-down");
    };
    assert!(retry_in <= Duration::from_secs(5));
    let _: () = redis::cmd("DEL")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    let (f4, _) = refresh(&store);
    assert_eq!(
        store.commit(f4, &grant("tok-4", 7200), MARGIN).unwrap(),
        CommitReply::Stored { generation: 4 }
    );
    // Fence 5 cannot shorten the stored token: it gets the stored one back.
    let _: () = redis::cmd("HSET")
        .arg(keys().token())
        .arg("ref")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    let (f5, current) = refresh(&store);
    assert_eq!(current.as_ref().map(|c| c.generation), Some(4));
    let CommitReply::Superseded {
        current: Some(kept),
    } = store.commit(f5, &grant("short", 60), MARGIN).unwrap()
    else {
        panic!("a shorter token must not replace a longer one");
    };
    assert_eq!((kept.token.expose(), kept.generation), ("tok-4", 4));
}

#[test]
fn refresh_ahead_serves_the_old_token_while_one_process_refreshes() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    let (f1, _) = refresh(&store);
    store.commit(f1, &grant("old", 7200), MARGIN).unwrap();
    // Move the refresh-ahead point into the past.
    let mut conn = redis.connection();
    let _: () = redis::cmd("HSET")
        .arg(keys().token())
        .arg("ref")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    let (f2, current) = refresh(&store);
    assert_eq!(current.unwrap().token.expose(), "old");
    // Everybody else keeps the old token meanwhile, without waiting.
    let LookupReply::Ready(g) = store.lookup(LEASE).unwrap() else {
        panic!("expected the old token");
    };
    assert_eq!(g.token.expose(), "old");
    assert_eq!(
        store.commit(f2, &grant("new", 7200), MARGIN).unwrap(),
        CommitReply::Stored { generation: 2 }
    );
}

#[test]
fn a_refresh_ahead_that_gets_the_same_token_back_stops_refreshing_it_ahead() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    let (f1, _) = refresh(&store);
    store.commit(f1, &grant("same", 7200), MARGIN).unwrap();
    let mut conn = redis.connection();
    let _: () = redis::cmd("HSET")
        .arg(keys().token())
        .arg("ref")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    // WeCom answers the token it already gave, with what remains of its life.
    let (f2, _) = refresh(&store);
    let CommitReply::Superseded {
        current: Some(kept),
    } = store.commit(f2, &grant("same", 7100), MARGIN).unwrap()
    else {
        panic!("the stored token is kept");
    };
    assert_eq!((kept.token.expose(), kept.generation), ("same", 1));
    // No further refresh ahead of this token: everyone is served until it expires.
    for _ in 0..3 {
        assert!(matches!(
            store.lookup(LEASE).unwrap(),
            LookupReply::Ready(_)
        ));
    }
    let (exp, refresh_at): (u64, u64) = redis::cmd("HMGET")
        .arg(keys().token())
        .arg("exp")
        .arg("ref")
        .query(&mut conn)
        .unwrap();
    assert_eq!(exp, refresh_at);
}

#[test]
fn an_unreachable_store_is_a_typed_error_without_the_password() {
    let mut redis = RedisServer::start();
    let url = format!("redis://:pw-SECRET@127.0.0.1:{}", redis.port());
    redis.stop();
    let store = RedisTokenStore::open(&url, keys()).unwrap();
    let err = store.lookup(LEASE).unwrap_err();
    let text = format!("{err} {err:?} {store:?}");
    assert!(!text.contains("pw-SECRET"), "{text}");
    assert!(
        text.contains(&format!("redis://***@127.0.0.1:{}", redis.port())),
        "{text}"
    );
    assert!(RedisTokenStore::open("not a url", keys()).is_err());
}

#[test]
fn password_and_unix_socket_urls_work_and_a_wrong_password_is_not_echoed() {
    let dir = std::env::temp_dir().join(format!("wecom-redis-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("redis.sock");
    let socket_text = socket.to_str().unwrap().to_owned();
    let redis = RedisServer::start_with(&[
        "--requirepass",
        "pw-RIGHT-one",
        "--unixsocket",
        &socket_text,
    ]);
    let tcp = format!("redis://:pw-RIGHT-one@127.0.0.1:{}", redis.port());
    let store = RedisTokenStore::open(&tcp, keys()).unwrap();
    assert_eq!(refresh(&store).0, 1);
    assert_eq!(
        store.url(),
        format!("redis://***@127.0.0.1:{}", redis.port())
    );

    let unix = format!("redis+unix://{socket_text}?pass=pw-RIGHT-one");
    let over_socket = RedisTokenStore::open(&unix, keys()).unwrap();
    assert_eq!(
        over_socket.url(),
        format!("redis+unix://{socket_text}?pass=***")
    );
    assert!(matches!(
        over_socket.lookup(LEASE).unwrap(),
        LookupReply::Wait { .. }
    ));

    let wrong = format!("redis://:pw-WRONG-one@127.0.0.1:{}", redis.port());
    let err = RedisTokenStore::open(&wrong, keys())
        .unwrap()
        .lookup(LEASE)
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("pw-WRONG-one") && !text.contains("pw-RIGHT-one"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
