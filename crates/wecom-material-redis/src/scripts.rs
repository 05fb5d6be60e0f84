//! The four Lua scripts and the parsing of their replies.
//!
//! Every script reads the time from Redis (`TIME`) and answers durations as "milliseconds
//! from now", so the clocks of the hosts running the workers never matter. `KEYS` are always
//! the app's token record, lock and fencing counter (one hash tag, so one Cluster slot).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{Script, ScriptInvocation, Value};
use wecom_material_core::shared_token::CommitReply;
use wecom_material_core::shared_token::LookupReply;
use wecom_material_core::shared_token::StoreCommand;
use wecom_material_core::shared_token::StoreReply;
use wecom_material_core::shared_token::StoredGrant;
use wecom_material_core::{AccessToken, StoreError};

use crate::keys::AppKeys;

/// What both stores hold for one app: its keys, the four scripts, the store's URL as shown
/// (without its password) and the count of round trips. `Debug` shows the URL and the keys.
pub(crate) struct AppStore {
    keys: AppKeys,
    scripts: Scripts,
    url: String,
    round_trips: Arc<AtomicU64>,
}

impl fmt::Debug for AppStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStore")
            .field("url", &self.url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl AppStore {
    /// The store of the app of `keys` at `url` (as shown: without its password).
    pub(crate) fn new(url: String, keys: AppKeys) -> Self {
        Self {
            keys,
            scripts: Scripts::new(),
            url,
            round_trips: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn keys(&self) -> &AppKeys {
        &self.keys
    }

    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The counter a connection adds its round trips to.
    pub(crate) fn trips(&self) -> Arc<AtomicU64> {
        self.round_trips.clone()
    }

    /// The invocation of `command`'s script and how its reply reads (see
    /// [`Scripts::invocation`]).
    pub(crate) fn invocation(
        &self,
        command: &StoreCommand,
    ) -> Option<(ScriptInvocation<'_>, ReadReply)> {
        self.scripts.invocation(&self.keys, command)
    }

    /// The store's answer to `command` from what its script returned, with one debug line
    /// (see [`trace`]); a Redis error becomes a store error naming the store.
    pub(crate) fn answer(
        &self,
        command: &StoreCommand,
        returned: redis::RedisResult<Value>,
        read: ReadReply,
    ) -> Result<StoreReply, StoreError> {
        let outcome = returned.map_err(|e| self.error(&e)).and_then(read);
        trace(&self.url, command, &outcome);
        outcome
    }

    /// A failure of the store, naming it. A RedisError's text never holds the password (the
    /// URL is not part of it).
    pub(crate) fn error(&self, e: &redis::RedisError) -> StoreError {
        StoreError::new(format!("{}: {e}", self.url))
    }
}

/// The four scripts, hashed once.
struct Scripts {
    lookup: Script,
    commit: Script,
    invalidate: Script,
    fail: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            lookup: Script::new(LOOKUP),
            commit: Script::new(COMMIT),
            invalidate: Script::new(INVALIDATE),
            fail: Script::new(FAIL),
        }
    }

    /// The invocation of the script that runs `command` on the keys of one app, and how its
    /// reply reads; `None` for [`StoreCommand::Warn`], which runs no script.
    fn invocation(
        &self,
        keys: &AppKeys,
        command: &StoreCommand,
    ) -> Option<(ScriptInvocation<'_>, ReadReply)> {
        let (script, read): (&Script, ReadReply) = match command {
            StoreCommand::Lookup { .. } => {
                (&self.lookup, |v| parse_lookup(v).map(StoreReply::Lookup))
            }
            StoreCommand::Commit { .. } => {
                (&self.commit, |v| parse_commit(v).map(StoreReply::Commit))
            }
            StoreCommand::Invalidate { .. } => (&self.invalidate, |v| {
                parse_flag(v).map(|_| StoreReply::Invalidated)
            }),
            StoreCommand::Fail { .. } => {
                (&self.fail, |v| parse_flag(v).map(|_| StoreReply::Failed))
            }
            StoreCommand::Warn(_) => return None,
        };
        let mut inv = script.prepare_invoke();
        inv.key(keys.token()).key(keys.lock()).key(keys.fence());
        match command {
            StoreCommand::Lookup { lease } => inv.arg(millis(*lease)),
            StoreCommand::Commit {
                fence,
                grant,
                refresh_margin,
            } => inv
                .arg(fence)
                .arg(grant.token.expose())
                .arg(millis(grant.expires_in))
                .arg(u64::try_from(refresh_margin.as_millis()).unwrap_or(u64::MAX)),
            StoreCommand::Invalidate { generation, token } => match token {
                Some(token) => inv.arg(generation).arg(token.expose()),
                None => inv.arg(generation),
            },
            StoreCommand::Fail { fence, cooldown } => inv.arg(fence).arg(millis(*cooldown)),
            StoreCommand::Warn(_) => &mut inv,
        };
        Some((inv, read))
    }
}

/// Reads a script's reply.
pub(crate) type ReadReply = fn(Value) -> Result<StoreReply, StoreError>;

/// The duration in whole milliseconds, at least 1 (Redis refuses `PX 0`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// One debug line per script run (the CLI's `-v`): the command and what the store answered,
/// never a token: e.g. `token store redis://h:6379: LOOKUP → wait 480 ms (refresh in flight)`.
fn trace(url: &str, command: &StoreCommand, outcome: &Result<StoreReply, StoreError>) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let asked = match command {
        StoreCommand::Lookup { .. } => "LOOKUP".to_owned(),
        StoreCommand::Commit { fence, .. } => format!("COMMIT fence {fence}"),
        StoreCommand::Invalidate { generation, .. } => {
            format!("INVALIDATE generation {generation}")
        }
        StoreCommand::Fail { fence, .. } => format!("FAIL fence {fence}"),
        StoreCommand::Warn(_) => return,
    };
    let answer = match outcome {
        Ok(StoreReply::Lookup(LookupReply::Ready(g))) => format!(
            "ready (generation {}, {} s left)",
            g.generation,
            g.expires_in.as_secs()
        ),
        Ok(StoreReply::Lookup(LookupReply::Refresh { fence, current, .. })) => format!(
            "refresh with fence {fence}{}",
            if current.is_some() { " (ahead)" } else { "" }
        ),
        Ok(StoreReply::Lookup(LookupReply::Wait {
            retry_in,
            cooling_down,
        })) => format!(
            "wait {} ms ({})",
            retry_in.as_millis(),
            if *cooling_down {
                "cool-down after a failed gettoken"
            } else {
                "another process refreshes"
            }
        ),
        Ok(StoreReply::Commit(CommitReply::Stored { generation })) => {
            format!("stored as generation {generation}")
        }
        Ok(StoreReply::Commit(CommitReply::Superseded { .. })) => "superseded".to_owned(),
        Ok(StoreReply::Invalidated) => "done".to_owned(),
        Ok(StoreReply::Failed) => "cooling down".to_owned(),
        Ok(StoreReply::Warned) => return,
        Err(error) => error.message().to_owned(),
    };
    log::debug!("token store {url}: {asked} → {answer}");
}

/// Gives [`StoreCommand::Warn`]: one log line naming the store (its URL without password is
/// part of the error) and what happens now.
pub(crate) fn warn(command: &StoreCommand) -> Result<StoreReply, StoreError> {
    if let StoreCommand::Warn(error) = command {
        log::warn!("{error}; using a token of this process's own until the store answers");
    }
    Ok(StoreReply::Warned)
}

/// Shared prelude: the server's time in milliseconds, and the stored token if still valid.
macro_rules! prelude {
    () => {
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tok = redis.call('HMGET', KEYS[1], 'token', 'gen', 'exp', 'ref')
local valid = tok[1] and tok[3] and tonumber(tok[3]) > now
"#
    };
}

/// LOOKUP(lease_ms) → `{'ready', token, gen, expires_in_ms}` |
/// `{'refresh', fence, lease_ms[, token, gen, expires_in_ms]}` | `{'wait', ttl_ms, cooling}`.
pub(crate) const LOOKUP: &str = concat!(
    prelude!(),
    r#"
local lock = redis.call('GET', KEYS[2])
if valid and (now < tonumber(tok[4]) or lock) then
  return {'ready', tok[1], tonumber(tok[2]), tonumber(tok[3]) - now}
end
if (not valid) and lock then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then ttl = 0 end
  local cooling = 0
  if string.sub(lock, 1, 2) == 'c:' then cooling = 1 end
  return {'wait', ttl, cooling}
end
local fence = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], 'r:' .. fence, 'PX', ARGV[1])
if valid then
  return {'refresh', fence, tonumber(ARGV[1]), tok[1], tonumber(tok[2]), tonumber(tok[3]) - now}
end
return {'refresh', fence, tonumber(ARGV[1])}
"#
);

/// COMMIT(fence, token, lifetime_ms, margin_ms) → `{'stored', gen}` |
/// `{'superseded'[, token, gen, expires_in_ms]}`. Releases the lock if it is still this
/// refresher's. Stores only if `fence` is the newest fencing number and the stored valid
/// token (if any) is another one that does not outlive it. WeCom answers the same token
/// until it expires: a refresh ahead that gets the stored token back (or one expiring
/// sooner) keeps the stored one and stops refreshing it ahead (`ref` = `exp`), so the margin
/// costs at most one extra gettoken per token.
pub(crate) const COMMIT: &str = concat!(
    prelude!(),
    r#"
local fence = tonumber(ARGV[1])
local newest = tonumber(redis.call('GET', KEYS[3]) or '0')
local life = tonumber(ARGV[3])
local exp = now + life
if redis.call('GET', KEYS[2]) == 'r:' .. ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if newest == fence and valid and (tok[1] == ARGV[2] or tonumber(tok[3]) > exp) then
  redis.call('HSET', KEYS[1], 'ref', tok[3])
end
if newest ~= fence or (valid and (tok[1] == ARGV[2] or tonumber(tok[3]) > exp)) then
  if valid then
    return {'superseded', tok[1], tonumber(tok[2]), tonumber(tok[3]) - now}
  end
  return {'superseded'}
end
local margin = math.min(tonumber(ARGV[4]), math.floor(life / 2))
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'gen', ARGV[1], 'exp', exp, 'ref', exp - margin)
redis.call('PEXPIREAT', KEYS[1], exp)
return {'stored', fence}
"#
);

/// INVALIDATE(gen[, token]) → 1 if the stored token was of `gen` (and is `token`, when
/// given: a Redis that lost its data counts generations from 1 again) and is deleted, else 0.
pub(crate) const INVALIDATE: &str = r#"
local tok = redis.call('HMGET', KEYS[1], 'gen', 'token')
if tok[1] == ARGV[1] and (ARGV[2] == nil or tok[2] == ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// FAIL(fence, cooldown_ms) → 1 if `fence` is the newest and the lock became a cool-down.
pub(crate) const FAIL: &str = r#"
if tonumber(redis.call('GET', KEYS[3]) or '0') == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], 'c:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

fn bad(what: &str) -> StoreError {
    StoreError::new(format!("unexpected script reply ({what})"))
}

fn int(v: &Value) -> Result<u64, StoreError> {
    match v {
        Value::Int(n) => u64::try_from(*n).map_err(|_| bad("negative number")),
        _ => Err(bad("not a number")),
    }
}

fn text(v: &Value) -> Result<String, StoreError> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|_| bad("not UTF-8")),
        Value::SimpleString(s) => Ok(s.clone()),
        _ => Err(bad("not a string")),
    }
}

fn array(v: Value) -> Result<(String, Vec<Value>), StoreError> {
    let Value::Array(items) = v else {
        return Err(bad("not an array"));
    };
    let tag = text(items.first().ok_or_else(|| bad("empty"))?)?;
    Ok((tag, items))
}

/// The longest life a stored token may claim: what gettoken may grant (one day). A longer
/// one is a tampered entry (and would overflow the client's clock arithmetic).
const MAX_STORED_LIFE: Duration = wecom_material_core::ops::gettoken::MAX_EXPIRES_IN;

/// The stored token of a reply. Its text goes through [`AccessToken::new`] (1 to 512 bytes)
/// and its life is at most a day: an entry that fails is refused with an error that names
/// what is wrong, never the text — the client then warns once and goes on with a token of
/// its own (see [`parse_lookup`]).
fn grant(items: &[Value]) -> Result<Option<StoredGrant>, StoreError> {
    match items {
        [] => Ok(None),
        [token, generation, expires_in] => {
            let token = AccessToken::new(text(token)?).map_err(unusable)?;
            let expires_in = Duration::from_millis(int(expires_in)?);
            if expires_in > MAX_STORED_LIFE {
                return Err(unusable(format!(
                    "it claims to live {} s, more than a day",
                    expires_in.as_secs()
                )));
            }
            Ok(Some(StoredGrant {
                token,
                generation: int(generation)?,
                expires_in,
            }))
        }
        _ => Err(bad("token fields")),
    }
}

fn unusable(why: impl fmt::Display) -> StoreError {
    StoreError::new(format!("the stored token entry is unusable ({why})"))
}

pub(crate) fn parse_lookup(v: Value) -> Result<LookupReply, StoreError> {
    let (tag, items) = array(v)?;
    match (tag.as_str(), &items[1..]) {
        ("ready", rest) => grant(rest)?
            .map(LookupReply::Ready)
            .ok_or_else(|| bad("ready")),
        // This process refreshes: an unusable current entry is simply not used (the
        // refresh replaces it).
        ("refresh", [fence, lease, rest @ ..]) => Ok(LookupReply::Refresh {
            fence: int(fence)?,
            lease: Duration::from_millis(int(lease)?),
            current: grant(rest).unwrap_or(None),
        }),
        ("wait", [ttl, cooling]) => Ok(LookupReply::Wait {
            retry_in: Duration::from_millis(int(ttl)?),
            cooling_down: int(cooling)? == 1,
        }),
        _ => Err(bad("lookup")),
    }
}

pub(crate) fn parse_commit(v: Value) -> Result<CommitReply, StoreError> {
    let (tag, items) = array(v)?;
    match (tag.as_str(), &items[1..]) {
        ("stored", [generation]) => Ok(CommitReply::Stored {
            generation: int(generation)?,
        }),
        ("superseded", rest) => Ok(CommitReply::Superseded {
            current: grant(rest)?,
        }),
        _ => Err(bad("commit")),
    }
}

pub(crate) fn parse_flag(v: Value) -> Result<bool, StoreError> {
    Ok(int(&v)? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    /// The debug lines of this test binary (the unit tests set no other logger).
    static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    struct Lines;

    impl log::Log for Lines {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Debug
        }

        fn log(&self, record: &log::Record<'_>) {
            LINES.lock().unwrap().push(record.args().to_string());
        }

        fn flush(&self) {}
    }

    static LOGGER: Lines = Lines;

    /// `-v` shows one line per script run: the command and what the store answered, never
    /// the token; the store shows as its URL and keys.
    #[test]
    fn each_script_run_is_one_debug_line_without_the_token() {
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(log::LevelFilter::Debug);
        let grant = StoredGrant {
            token: AccessToken::new("S3CRET-T0KEN-VALUE").unwrap(),
            generation: 4,
            expires_in: Duration::from_secs(7000),
        };
        let lookup = StoreCommand::Lookup {
            lease: Duration::from_secs(30),
        };
        let ready = Ok(StoreReply::Lookup(LookupReply::Ready(grant)));
        trace("redis://h:6379", &lookup, &ready);
        let wait = Ok(StoreReply::Lookup(LookupReply::Wait {
            retry_in: Duration::from_millis(480),
            cooling_down: false,
        }));
        trace("redis://h:6379", &lookup, &wait);
        let lines = LINES.lock().unwrap().clone();
        assert!(
            lines.contains(
                &"token store redis://h:6379: LOOKUP → ready (generation 4, 7000 s left)"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert!(
            lines.contains(
                &"token store redis://h:6379: LOOKUP → wait 480 ms (another process refreshes)"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("S3CRET")), "{lines:?}");

        let keys = AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww1", "corp-secret");
        let store = AppStore::new("redis://h:6379".to_owned(), keys.clone());
        let shown = format!("{store:?}");
        assert!(
            shown.starts_with("AppStore { url: \"redis://h:6379\", keys: AppKeys {")
                && shown.contains(keys.tag()),
            "{shown}"
        );
        assert!(!shown.contains("corp-secret"), "{shown}");
    }

    #[test]
    fn a_flag_is_one_for_yes_and_anything_else_for_no() {
        assert!(parse_flag(Value::Int(1)).unwrap());
        assert!(!parse_flag(Value::Int(0)).unwrap());
        assert!(!parse_flag(Value::Int(2)).unwrap());
        assert!(parse_flag(bulk("1")).is_err());
    }

    #[test]
    fn replies_parse_and_malformed_ones_are_typed_errors() {
        let ready = Value::Array(vec![
            bulk("ready"),
            bulk("tok"),
            Value::Int(3),
            Value::Int(1500),
        ]);
        assert_eq!(
            parse_lookup(ready).unwrap(),
            LookupReply::Ready(StoredGrant {
                token: AccessToken::new("tok").unwrap(),
                generation: 3,
                expires_in: Duration::from_millis(1500)
            })
        );
        // A status reply (RESP simple string) reads as the same text as a bulk string.
        let simple = Value::Array(vec![
            Value::SimpleString("ready".into()),
            Value::SimpleString("tok".into()),
            Value::Int(3),
            Value::Int(1500),
        ]);
        assert!(matches!(
            parse_lookup(simple),
            Ok(LookupReply::Ready(StoredGrant { generation: 3, .. }))
        ));
        let refresh = Value::Array(vec![bulk("refresh"), Value::Int(4), Value::Int(30000)]);
        assert_eq!(
            parse_lookup(refresh).unwrap(),
            LookupReply::Refresh {
                fence: 4,
                lease: Duration::from_secs(30),
                current: None
            }
        );
        let wait = Value::Array(vec![bulk("wait"), Value::Int(250), Value::Int(1)]);
        assert_eq!(
            parse_lookup(wait).unwrap(),
            LookupReply::Wait {
                retry_in: Duration::from_millis(250),
                cooling_down: true
            }
        );
        let stored = Value::Array(vec![bulk("stored"), Value::Int(9)]);
        assert_eq!(
            parse_commit(stored).unwrap(),
            CommitReply::Stored { generation: 9 }
        );
        for junk in [
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![bulk("ready"), bulk("tok")]),
            Value::Array(vec![bulk("wait"), Value::Int(-5), Value::Int(0)]),
            Value::Array(vec![bulk("what")]),
        ] {
            let err = parse_lookup(junk).unwrap_err();
            assert!(
                err.message().starts_with("unexpected script reply"),
                "{err}"
            );
        }
    }

    /// A 10 MB token in the store made every run of the fleet panic in the URI builder; a
    /// lifetime of 2^62 ms would overflow the clock. Both are refused with an error that
    /// names the problem (the client warns once with it and uses a token of its own), and an
    /// unusable entry under a refresh is just not used.
    #[test]
    fn an_oversized_token_or_lifetime_in_the_store_is_refused_without_echoing_it() {
        let huge = "T".repeat(10 * 1024 * 1024);
        let ready = |token: &str, ms: i64| {
            Value::Array(vec![
                bulk("ready"),
                bulk(token),
                Value::Int(3),
                Value::Int(ms),
            ])
        };
        let err = parse_lookup(ready(&huge, 1500)).unwrap_err();
        assert_eq!(
            err.message(),
            "the stored token entry is unusable (access_token is 10485760 bytes; at most 512 allowed)"
        );
        let err = parse_lookup(ready("", 1500)).unwrap_err();
        assert!(err.message().contains("access_token is empty"), "{err}");
        let err = parse_lookup(ready("tok", 1 << 62)).unwrap_err();
        assert!(err.message().contains("more than a day"), "{err}");
        assert!(parse_lookup(ready("tok", 86_400_000)).is_ok());
        let refresh = Value::Array(vec![
            bulk("refresh"),
            Value::Int(4),
            Value::Int(30000),
            bulk(&huge),
            Value::Int(3),
            Value::Int(1500),
        ]);
        assert_eq!(
            parse_lookup(refresh).unwrap(),
            LookupReply::Refresh {
                fence: 4,
                lease: Duration::from_secs(30),
                current: None
            }
        );
    }
}
