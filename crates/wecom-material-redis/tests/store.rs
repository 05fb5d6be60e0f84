//! The four scripts against a real redis-server, one process, through `TokenStore::run`.

mod support;

use std::time::Duration;

use support::RedisServer;
use wecom_material_core::AccessToken;
use wecom_material_core::ops::gettoken::TokenGrant;
use wecom_material_redis::{
    AppKeys, CommitReply, LookupReply, RedisTokenStore, StoreCommand, StoreError, StoreReply,
    StoredGrant, TokenStore,
};

fn keys() -> AppKeys {
    AppKeys::from_parts("http://127.0.0.1:1", "ww-corp", "s3cr3t-SECRET-text")
}

fn grant(token: &str, secs: u64) -> TokenGrant {
    TokenGrant {
        token: AccessToken::new(token).unwrap(),
        expires_in: Duration::from_secs(secs),
    }
}

const LEASE: Duration = Duration::from_secs(30);
const MARGIN: Duration = Duration::from_secs(300);

fn try_lookup(store: &RedisTokenStore) -> Result<LookupReply, StoreError> {
    match store.run(StoreCommand::Lookup { lease: LEASE })? {
        StoreReply::Lookup(reply) => Ok(reply),
        other => panic!("LOOKUP answered {other:?}"),
    }
}

fn lookup(store: &RedisTokenStore) -> LookupReply {
    try_lookup(store).unwrap()
}

fn commit(store: &RedisTokenStore, fence: u64, grant: TokenGrant) -> CommitReply {
    let command = StoreCommand::Commit {
        fence,
        grant,
        refresh_margin: MARGIN,
    };
    match store.run(command).unwrap() {
        StoreReply::Commit(reply) => reply,
        other => panic!("COMMIT answered {other:?}"),
    }
}

fn invalidate(store: &RedisTokenStore, generation: u64) {
    invalidate_token(store, generation, None);
}

fn invalidate_token(store: &RedisTokenStore, generation: u64, token: Option<&str>) {
    let token = token.map(|t| AccessToken::new(t).unwrap());
    let reply = store
        .run(StoreCommand::Invalidate { generation, token })
        .unwrap();
    assert_eq!(reply, StoreReply::Invalidated);
}

fn fail(store: &RedisTokenStore, fence: u64, cooldown: Duration) {
    let reply = store.run(StoreCommand::Fail { fence, cooldown }).unwrap();
    assert_eq!(reply, StoreReply::Failed);
}

/// Moves the stored token's refresh-ahead point into the past.
fn refresh_ahead_now(conn: &mut redis::Connection) {
    let _: () = redis::cmd("HSET")
        .arg(keys().token())
        .arg("ref")
        .arg(0)
        .query(conn)
        .unwrap();
}

fn get(conn: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
}

fn stored_generation(conn: &mut redis::Connection) -> Option<String> {
    redis::cmd("HGET")
        .arg(keys().token())
        .arg("gen")
        .query(conn)
        .unwrap()
}

fn refresh(store: &RedisTokenStore) -> (u64, Option<StoredGrant>) {
    match lookup(store) {
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
    } = lookup(&store)
    else {
        panic!("expected to wait");
    };
    assert!(retry_in <= LEASE && retry_in > LEASE - Duration::from_secs(5));

    // Commit: stored under generation 1, the lock released, served to everyone.
    assert_eq!(
        commit(&store, f1, grant("tok-1", 7200)),
        CommitReply::Stored { generation: 1 }
    );
    let mut conn = redis.connection();
    let lock: Option<String> = redis::cmd("GET")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    assert_eq!(lock, None);
    let LookupReply::Ready(g) = lookup(&store) else {
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

    // A stale rejection does nothing, nor one of the same generation naming another token
    // (a Redis that lost its data counts generations from 1 again); the current one deletes.
    invalidate(&store, 7);
    assert_eq!(stored_generation(&mut conn).as_deref(), Some("1"));
    invalidate_token(&store, 1, Some("tok-of-a-lost-redis"));
    assert_eq!(stored_generation(&mut conn).as_deref(), Some("1"));
    invalidate_token(&store, 1, Some("tok-1"));
    assert_eq!(stored_generation(&mut conn), None);
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
        commit(&store, f2, grant("late", 7200)),
        CommitReply::Superseded { current: None }
    );
    let lock: Option<String> = redis::cmd("GET")
        .arg(keys().lock())
        .query(&mut conn)
        .unwrap();
    assert_eq!(lock.as_deref(), Some("r:3"));
    // A stale FAIL does nothing either; fence 3's FAIL starts a cool-down.
    fail(&store, f2, Duration::from_secs(5));
    assert_eq!(get(&mut conn, &keys().lock()).as_deref(), Some("r:3"));
    fail(&store, f3, Duration::from_secs(5));
    assert_eq!(get(&mut conn, &keys().lock()).as_deref(), Some("c:3"));
    let LookupReply::Wait {
        retry_in,
        cooling_down: true,
    } = lookup(&store)
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
        commit(&store, f4, grant("tok-4", 7200)),
        CommitReply::Stored { generation: 4 }
    );
    // Fence 5 cannot shorten the stored token: it gets the stored one back.
    refresh_ahead_now(&mut conn);
    let (f5, current) = refresh(&store);
    assert_eq!(current.as_ref().map(|c| c.generation), Some(4));
    let CommitReply::Superseded {
        current: Some(kept),
    } = commit(&store, f5, grant("short", 60))
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
    commit(&store, f1, grant("old", 7200));
    refresh_ahead_now(&mut redis.connection());
    let (f2, current) = refresh(&store);
    assert_eq!(current.unwrap().token.expose(), "old");
    // Everybody else keeps the old token meanwhile, without waiting.
    let LookupReply::Ready(g) = lookup(&store) else {
        panic!("expected the old token");
    };
    assert_eq!(g.token.expose(), "old");
    assert_eq!(
        commit(&store, f2, grant("new", 7200)),
        CommitReply::Stored { generation: 2 }
    );
}

#[test]
fn a_refresh_ahead_that_gets_the_same_token_back_stops_refreshing_it_ahead() {
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    let (f1, _) = refresh(&store);
    commit(&store, f1, grant("same", 7200));
    let mut conn = redis.connection();
    refresh_ahead_now(&mut conn);
    // WeCom answers the token it already gave, with what remains of its life.
    let (f2, _) = refresh(&store);
    let CommitReply::Superseded {
        current: Some(kept),
    } = commit(&store, f2, grant("same", 7100))
    else {
        panic!("the stored token is kept");
    };
    assert_eq!((kept.token.expose(), kept.generation), ("same", 1));
    // No further refresh ahead of this token: everyone is served until it expires.
    for _ in 0..3 {
        assert!(matches!(lookup(&store), LookupReply::Ready(_)));
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
    let err = try_lookup(&store).unwrap_err();
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
    assert!(matches!(lookup(&over_socket), LookupReply::Wait { .. }));

    let wrong = format!("redis://:pw-WRONG-one@127.0.0.1:{}", redis.port());
    let err = try_lookup(&RedisTokenStore::open(&wrong, keys()).unwrap()).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("pw-WRONG-one") && !text.contains("pw-RIGHT-one"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_keys_hold_no_secret_text() {
    const CORP: &str = "ww-corp";
    const SECRET: &str = "s3cr3t-SECRET-text";
    let redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    // A stored token, a rejected generation, a refresh and a cool-down: every key is there.
    let (f1, _) = refresh(&store);
    commit(&store, f1, grant("tok-1", 7200));
    invalidate(&store, 1);
    let (f2, _) = refresh(&store);
    commit(&store, f2, grant("tok-2", 7200));
    let mut conn = redis.connection();
    let _: () = redis::cmd("SET")
        .arg(keys().lock())
        .arg("c:9")
        .arg("PX")
        .arg(60_000)
        .query(&mut conn)
        .unwrap();
    let mut found: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
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
fn warn_runs_no_script_and_round_trips_are_counted() {
    let mut redis = RedisServer::start();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    assert_eq!(store.round_trips(), 0);
    // First use of a script on a fresh server: refused EVALSHA, SCRIPT LOAD, EVALSHA.
    let (f1, _) = refresh(&store);
    assert_eq!(store.round_trips(), 3);
    assert!(matches!(lookup(&store), LookupReply::Wait { .. }));
    assert_eq!(store.round_trips(), 4);
    commit(&store, f1, grant("tok-1", 7200));
    assert_eq!(store.round_trips(), 7);
    assert!(matches!(lookup(&store), LookupReply::Ready(_)));
    assert_eq!(store.round_trips(), 8);
    // WARN is a log line, even with the server gone.
    redis.stop();
    let warned = store.run(StoreCommand::Warn(StoreError::new("test")));
    assert_eq!(warned.unwrap(), StoreReply::Warned);
    assert_eq!(store.round_trips(), 8);
}

/// Connections the server accepted so far (`INFO stats`), the test's own included.
fn connections_accepted(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .expect("INFO stats counts connections")
        .trim()
        .parse()
        .unwrap()
}

/// A script goes once more, on a new connection, only when the connection kept from an
/// earlier call turned out closed. An error the server answered (here WRONGTYPE: the token
/// record is not a hash) is a store error at once, on a kept connection as on a new one: one
/// request, no other connection.
#[test]
fn only_a_kept_connection_found_closed_is_worth_a_second_try() {
    let redis = RedisServer::start();
    let mut admin = redis.connection();
    let store = RedisTokenStore::open(&redis.url(), keys()).unwrap();
    refresh(&store);
    let (trips, accepted) = (store.round_trips(), connections_accepted(&mut admin));

    // The kept connection closed by the server: one request lost, one more on a new one.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut admin)
        .unwrap();
    assert_eq!(killed, 1, "the store's connection (the caller is skipped)");
    assert!(matches!(lookup(&store), LookupReply::Wait { .. }));
    assert_eq!(store.round_trips(), trips + 2);
    assert_eq!(connections_accepted(&mut admin), accepted + 1);

    // An error answer on the kept connection: not sent again.
    let _: () = redis::cmd("SET")
        .arg(keys().token())
        .arg("not a hash")
        .query(&mut admin)
        .unwrap();
    let (trips, accepted) = (store.round_trips(), connections_accepted(&mut admin));
    let err = try_lookup(&store).unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(store.round_trips(), trips + 1);
    assert_eq!(connections_accepted(&mut admin), accepted);

    // The failed connection is dropped: the next call opens a new one, whose error answer is
    // not sent again either.
    let err = try_lookup(&store).unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(store.round_trips(), trips + 2);
    assert_eq!(connections_accepted(&mut admin), accepted + 1);

    let _: () = redis::cmd("DEL")
        .arg(keys().token())
        .query(&mut admin)
        .unwrap();
    assert!(matches!(lookup(&store), LookupReply::Wait { .. }));
}

/// A kept connection whose reply did not come in time (a slow server, not a closed
/// connection) is not asked again on a new one: the caller's timeout holds.
#[test]
fn a_timeout_on_a_kept_connection_is_not_retried() {
    let redis = RedisServer::start();
    let mut admin = redis.connection();
    let timeout = Duration::from_millis(300);
    let store = RedisTokenStore::open_with_timeout(&redis.url(), keys(), timeout).unwrap();
    refresh(&store);
    let (trips, accepted) = (store.round_trips(), connections_accepted(&mut admin));
    // Scripts that may write wait; INFO still answers.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(5_000)
        .arg("WRITE")
        .query(&mut admin)
        .unwrap();
    let err = try_lookup(&store).unwrap_err();
    assert_eq!(store.round_trips(), trips + 1, "{err}");
    assert_eq!(connections_accepted(&mut admin), accepted);
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query(&mut admin)
        .unwrap();
    assert!(matches!(lookup(&store), LookupReply::Wait { .. }));
}
