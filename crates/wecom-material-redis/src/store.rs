//! The blocking store: the four scripts over one synchronous Redis connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{ConnectionLike, Value};
use wecom_material_core::shared_token::StoreCommand;
use wecom_material_core::shared_token::StoreReply;
use wecom_material_core::{StoreError, TokenStore};

use crate::keys::AppKeys;
use crate::scripts::{self, AppStore};

/// Default timeout for connecting to Redis and for each reply.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// `url` with any password replaced by `***`, for messages: the user-info of the authority
/// and the `pass` / `password` query parameters (unix socket URLs).
///
/// ```
/// use wecom_material_redis::redact_url;
/// assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://***@cache:6379/0");
/// assert_eq!(
///     redact_url("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
///     "redis+unix:///run/redis.sock?db=1&pass=***"
/// );
/// assert_eq!(redact_url("redis+unix:///run/redis.sock"), "redis+unix:///run/redis.sock");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable store URL>".to_owned();
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let mut out = format!("{scheme}://");
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key == "pass" || key == "password" => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The passwords a store URL holds — the user-info's and the `pass` / `password` query
/// parameters', as [`redact_url`] hides them — for a program that masks them in its own
/// output.
///
/// ```
/// use wecom_material_redis::url_passwords;
/// assert_eq!(url_passwords("redis://:hunter2@cache:6379/0"), ["hunter2"]);
/// assert_eq!(url_passwords("redis://user:pw@cache/1"), ["pw"]);
/// assert_eq!(url_passwords("redis+unix:///run/r.sock?db=1&pass=s3cret"), ["s3cret"]);
/// assert!(url_passwords("redis://cache:6379").is_empty());
/// ```
pub fn url_passwords(url: &str) -> Vec<&str> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let mut found = Vec::new();
    if let Some((user_info, _)) = authority.rsplit_once('@') {
        found.push(
            user_info
                .split_once(':')
                .map_or(user_info, |(_, pass)| pass),
        );
    }
    for pair in query.split('&') {
        if let Some(("pass" | "password", value)) = pair.split_once('=') {
            found.push(value);
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

/// Whether a script that failed on a connection kept from earlier goes once more on a new
/// one: when the connection turned out closed, not when the server was merely slow.
pub(crate) fn retry_on_a_new_connection(error: &redis::RedisError) -> bool {
    error.is_connection_dropped() && !error.is_timeout()
}

/// The Redis client for `url` (trusting `root_ca_pem` for TLS, when given); a bad URL is a
/// store error that shows the URL without its password.
pub(crate) fn client(url: &str, root_ca_pem: Option<&[u8]>) -> Result<redis::Client, StoreError> {
    let built = match root_ca_pem {
        #[cfg(feature = "tls")]
        Some(pem) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        _ => redis::Client::open(url),
    };
    built.map_err(|e| {
        StoreError::new(format!(
            "{}: bad store URL ({:?})",
            redact_url(url),
            e.kind()
        ))
    })
}

type Connect = Box<dyn Fn() -> redis::RedisResult<Box<dyn ConnectionLike + Send>> + Send + Sync>;

/// A shared token store for one app on Redis, used from blocking code.
///
/// It opens its connection on first use and again after any failure; one connection serves
/// the whole process (calls take turns on it: each is one short script). `Debug` shows the
/// URL without its password.
pub struct RedisTokenStore {
    connect: Connect,
    conn: Mutex<Option<Box<dyn ConnectionLike + Send>>>,
    app: AppStore,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RedisTokenStore").field(&self.app).finish()
    }
}

/// Counts the requests a connection sends (one per round trip).
struct Counted {
    inner: Box<dyn ConnectionLike + Send>,
    trips: Arc<AtomicU64>,
}

impl ConnectionLike for Counted {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}

impl RedisTokenStore {
    /// A store at `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`, `rediss://…` with the `tls`
    /// feature, `redis+unix:///path/to/socket`) for the app of `keys`, with
    /// [`DEFAULT_STORE_TIMEOUT`]. Nothing is connected yet: a bad URL fails here, an
    /// unreachable server on first use.
    pub fn open(url: &str, keys: AppKeys) -> Result<Self, StoreError> {
        Self::open_with_timeout(url, keys, DEFAULT_STORE_TIMEOUT)
    }

    /// As [`RedisTokenStore::open`], with `timeout` for connecting and for each reply.
    pub fn open_with_timeout(
        url: &str,
        keys: AppKeys,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::from_client(url, client(url, None)?, keys, timeout)
    }

    /// As [`RedisTokenStore::open_with_timeout`], for a `rediss://` server whose certificate
    /// is signed by a private CA: `root_ca_pem` (PEM) is trusted instead of the system's
    /// trust store (feature `tls`). Without it, `rediss://` trusts the system's store, which
    /// also reads `SSL_CERT_FILE` / `SSL_CERT_DIR`.
    #[cfg(feature = "tls")]
    pub fn open_with_root_ca(
        url: &str,
        keys: AppKeys,
        timeout: Duration,
        root_ca_pem: &[u8],
    ) -> Result<Self, StoreError> {
        Self::from_client(url, client(url, Some(root_ca_pem))?, keys, timeout)
    }

    fn from_client(
        url: &str,
        client: redis::Client,
        keys: AppKeys,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let connect: Connect = Box::new(move || {
            let conn = client.get_connection_with_timeout(timeout)?;
            conn.set_read_timeout(Some(timeout))?;
            conn.set_write_timeout(Some(timeout))?;
            Ok(Box::new(conn) as Box<dyn ConnectionLike + Send>)
        });
        Ok(Self::with_connector(shown, keys, connect))
    }

    /// A store on a Redis Cluster reached through any of `urls` (feature `cluster`). The
    /// app's keys share one hash tag, so every script runs on one node.
    #[cfg(feature = "cluster")]
    pub fn open_cluster(
        urls: &[&str],
        keys: AppKeys,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let shown = urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        let client = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()
            .map_err(|e| StoreError::new(format!("{shown}: bad store URL ({:?})", e.kind())))?;
        let connect: Connect = Box::new(move || {
            Ok(Box::new(client.get_connection()?) as Box<dyn ConnectionLike + Send>)
        });
        Ok(Self::with_connector(shown, keys, connect))
    }

    fn with_connector(url: String, keys: AppKeys, connect: Connect) -> Self {
        Self {
            connect,
            conn: Mutex::new(None),
            app: AppStore::new(url, keys),
        }
    }

    /// The store's URL without its password.
    pub fn url(&self) -> &str {
        self.app.url()
    }

    /// The app's keys.
    pub fn keys(&self) -> &AppKeys {
        self.app.keys()
    }

    /// Requests sent to Redis so far by this store (one per round trip; a script's first use
    /// on a server costs two more: the refused `EVALSHA` and `SCRIPT LOAD`).
    pub fn round_trips(&self) -> u64 {
        self.app.round_trips()
    }

    fn exec(
        &self,
        invoke: impl Fn(&mut dyn ConnectionLike) -> redis::RedisResult<Value>,
    ) -> redis::RedisResult<Value> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let reused = slot.is_some();
        match self.exec_once(&mut slot, &invoke) {
            // The connection kept since an earlier call was closed meanwhile (a Redis restart,
            // a proxy's or firewall's idle timeout: a process asks the store about once per
            // token window): the script goes once more, on a new connection.
            Err(e) if reused && retry_on_a_new_connection(&e) => self.exec_once(&mut slot, &invoke),
            outcome => outcome,
        }
    }

    fn exec_once(
        &self,
        slot: &mut Option<Box<dyn ConnectionLike + Send>>,
        invoke: &impl Fn(&mut dyn ConnectionLike) -> redis::RedisResult<Value>,
    ) -> redis::RedisResult<Value> {
        if slot.is_none() {
            *slot = Some(Box::new(Counted {
                inner: (self.connect)()?,
                trips: self.app.trips(),
            }));
        }
        let conn = slot.as_mut().expect("connected above");
        let outcome = invoke(conn.as_mut());
        if outcome.is_err() {
            // Reconnect next time: the connection may be broken or out of step.
            *slot = None;
        }
        outcome
    }
}

impl TokenStore for RedisTokenStore {
    /// Runs the command's script (LOOKUP, COMMIT, INVALIDATE, FAIL) on this store's one
    /// connection; a `Warn` is one `log::warn!` line naming the store without its password.
    fn run(&self, command: StoreCommand) -> Result<StoreReply, StoreError> {
        match self.app.invocation(&command) {
            Some((inv, read)) => self
                .app
                .answer(&command, self.exec(|c| inv.invoke(c)), read),
            None => scripts::warn(&command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store URL in a message never shows a password: the user-info's, or a `pass` /
    /// `password` parameter's; every other part stays as it was.
    #[test]
    fn a_url_is_shown_without_its_passwords_and_they_are_found() {
        let tcp = "redis://user:hunter2@cache:6379/0#x";
        assert_eq!(redact_url(tcp), "redis://***@cache:6379/0#x");
        assert_eq!(url_passwords(tcp), ["hunter2"]);
        let unix = "redis+unix:///run/r.sock?db=1&password=s3cret&passive=1";
        assert_eq!(
            redact_url(unix),
            "redis+unix:///run/r.sock?db=1&password=***&passive=1"
        );
        assert_eq!(url_passwords(unix), ["s3cret"]);
        assert_eq!(url_passwords("redis://:pw@h/1?pass=two"), ["pw", "two"]);
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert!(url_passwords("redis://cache:6379").is_empty());
        assert!(
            url_passwords("redis://user:@cache:6379").is_empty(),
            "an empty password is none"
        );
    }

    /// A store shows as its URL without the password, and its keys.
    #[test]
    fn a_store_debugs_as_its_url_without_the_password() {
        let keys = AppKeys::from_parts("https://qyapi.weixin.qq.com", "ww1", "corp-secret");
        let store = RedisTokenStore::open("redis://:hunter2@127.0.0.1:1/0", keys).unwrap();
        let shown = format!("{store:?}");
        assert!(
            shown.starts_with("RedisTokenStore(AppStore { url: \"redis://***@127.0.0.1:1/0\""),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("corp-secret"),
            "{shown}"
        );
    }

    /// The round-trip counter is transparent: what it says about the connection (its
    /// database, whether it is open and answers) is what the connection it wraps says, on a
    /// real server, before and after the server closed it.
    #[cfg(feature = "test-server")]
    #[test]
    fn a_counted_connection_reports_the_state_of_the_one_it_wraps() {
        let redis = crate::test_server::RedisServer::start();
        let inner = redis::Client::open(format!("{}/3", redis.url()))
            .and_then(|c| c.get_connection())
            .unwrap();
        let trips = Arc::new(AtomicU64::new(0));
        let mut counted = Counted {
            inner: Box::new(inner),
            trips: Arc::clone(&trips),
        };
        assert_eq!(counted.get_db(), 3);
        assert!(counted.is_open());
        assert!(counted.check_connection());
        let killed = redis.kill_clients();
        assert_eq!(killed, 1);
        assert!(!counted.check_connection());
        assert!(!counted.is_open());
        assert_eq!(counted.get_db(), 3);
    }

    /// Only a connection that turned out closed is worth one more try on a new one; a
    /// timeout (a slow server) or a refused script is not.
    #[test]
    fn only_a_dropped_connection_is_retried_on_a_new_one() {
        let io = |kind| redis::RedisError::from(std::io::Error::new(kind, "x"));
        assert!(retry_on_a_new_connection(&io(
            std::io::ErrorKind::ConnectionReset
        )));
        assert!(retry_on_a_new_connection(&io(
            std::io::ErrorKind::BrokenPipe
        )));
        assert!(!retry_on_a_new_connection(&io(
            std::io::ErrorKind::TimedOut
        )));
        let script = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert!(!retry_on_a_new_connection(&script));
    }
}
