//! A client for the API commands, with its token loaded from and saved to the cache file, or
//! shared through a Redis token store (`--token-store`), which then replaces the file.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wecom_material_core::endpoint::DEFAULT_BASE_URL;
use wecom_material_core::{ClientSettings, ErrCode, RetryPolicy, StoredToken};
use wecom_material_redis::{
    AppKeys, RedisTokenStore, SharedTokenPolicy, redact_url, url_passwords,
};
use wecom_material_ureq::Client;

use crate::failure::Failure;
use crate::logger;
use crate::token_store::{self, TokenStore};

/// The connection settings every API command takes.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `--base-url` / `WECOM_BASE_URL`.
    pub(crate) base_url: Option<String>,
    /// `--corp-id` / `WECOM_CORP_ID`.
    pub(crate) corp_id: Option<String>,
    /// `--secret` / `WECOM_SECRET`.
    pub(crate) secret: Option<String>,
    /// `--token-cache` / `WECOM_TOKEN_CACHE`.
    pub(crate) token_cache: Option<std::path::PathBuf>,
    /// `--token-store` / `WECOM_TOKEN_STORE`: a Redis URL; when set, the cache file is unused.
    pub(crate) token_store: Option<String>,
    /// `--timeout`: the idle timeout of a transfer.
    pub(crate) idle_timeout: Duration,
    /// `--retries`: retries after a transport failure.
    pub(crate) retries: u32,
}

/// A client and the cache entry it shares with other runs.
pub(crate) struct Session {
    client: Client,
    store: Option<TokenStore>,
    key: String,
    loaded: Option<StoredToken>,
    /// Held while the cache file is written: the end of a command and an interrupting
    /// signal (see [`crate::interrupt`]) may both save the token.
    saving: std::sync::Mutex<()>,
}

impl Session {
    /// Checks the settings (exit 2 when something is missing) and seeds the client with a
    /// cached token.
    pub(crate) fn open(settings: &Settings) -> Result<Self, Failure> {
        let corp_id = non_empty(settings.corp_id.as_deref())
            .ok_or_else(|| Failure::usage("no corp id: pass --corp-id or set WECOM_CORP_ID"))?;
        let secret = non_empty(settings.secret.as_deref())
            .ok_or_else(|| Failure::usage("no secret: pass --secret or set WECOM_SECRET"))?;
        logger::mask(secret);
        let base_url = settings.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let mut builder = Client::builder(corp_id, secret)
            .base_url(base_url)
            .map_err(|e| Failure::Wecom(e.into()))?
            .media_idle_timeout(settings.idle_timeout)
            .retry_policy(RetryPolicy {
                max_transport_retries: settings.retries,
                ..RetryPolicy::default()
            });
        let shared = match non_empty(settings.token_store.as_deref()) {
            Some(url) => Some(open_shared_store(url, builder.settings())?),
            None => None,
        };
        if let Some(shared) = &shared {
            log::debug!("token store {}", shared.url());
            builder = builder.token_store(shared.clone(), CLI_SHARING);
        }
        let client = builder.build();
        let key = token_store::cache_key(client.base_url().as_str(), corp_id, secret);
        // The Redis store is the one shared source of the token: the file is left alone.
        let store = match &shared {
            Some(_) => None,
            None => settings
                .token_cache
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .or_else(token_store::default_path)
                .map(TokenStore::new),
        };
        let loaded = store.as_ref().and_then(|s| s.load(&key));
        if let Some(token) = &loaded {
            logger::mask(&token.access_token);
            client.import_token(token.clone());
        }
        match &store {
            Some(s) => log::debug!("token cache {}", s.path().display()),
            None if shared.is_some() => {}
            None => log::debug!("no token cache: neither XDG_CACHE_HOME nor HOME is set"),
        }
        Ok(Self {
            client,
            store,
            key,
            loaded,
            saving: std::sync::Mutex::new(()),
        })
    }

    /// The client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Writes the client's token back after a command ended with `result`. When the command
    /// ended with a token rejection (40014, 42001, or 40001 — after the one refresh the client
    /// does), the cache entry is dropped, whatever the client still holds: the next run
    /// starts with a fresh token instead of failing again with a rejected one.
    pub(crate) fn persist_after(&self, result: &Result<(), Failure>) {
        let rejected = match result {
            Err(Failure::Wecom(error)) => token_rejected(error.errcode()),
            _ => false,
        };
        if !rejected {
            return self.persist();
        }
        let Some(store) = &self.store else { return };
        let _saving = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        log::info!("dropping the cached token: WeCom rejected it");
        if let Err(e) = store.save(&self.key, None, now_unix()) {
            log::warn!("cannot write token cache {}: {e}", store.path().display());
        }
    }

    /// Writes the client's token back when it changed (a new one, or none left). Also run
    /// when the command is interrupted (Ctrl-C, SIGTERM, SIGHUP): a token the run fetched is
    /// never lost, so the next run makes no gettoken of its own.
    pub(crate) fn persist(&self) {
        let Some(store) = &self.store else { return };
        let _saving = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_unix();
        let current = self.client.export_token();
        if let Some(token) = &current {
            logger::mask(&token.access_token);
        }
        let same_token = |a: &StoredToken, b: &StoredToken| a.access_token == b.access_token;
        let unchanged = match (&self.loaded, &current) {
            (Some(a), Some(b)) => same_token(a, b),
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return;
        }
        if let Err(e) = store.save(&self.key, current, now) {
            log::warn!("cannot write token cache {}: {e}", store.path().display());
        }
    }
}

/// The accepted forms of `--token-store`, for messages.
const STORE_FORMS: &str = "redis://[:PASSWORD@]HOST:PORT[/DB], rediss://[:PASSWORD@]HOST:PORT[/DB] \
                           or redis+unix:///path/to/socket[?db=N&pass=PASSWORD]";

/// The Redis store at `url` for the app of `settings`; a URL that is not one of
/// [`STORE_FORMS`] (or that the Redis client refuses) is a usage error whose text shows the
/// URL without its password. Nothing is connected here: an unreachable store is a warning on
/// first use, and the run goes on with a token of its own.
fn open_shared_store(
    url: &str,
    settings: &ClientSettings,
) -> Result<Arc<RedisTokenStore>, Failure> {
    for password in url_passwords(url) {
        logger::mask(password);
    }
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(Failure::usage(format!(
            "--token-store: not a URL; expected {STORE_FORMS}"
        )));
    };
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "redis" | "rediss" | "redis+unix"
    ) {
        return Err(Failure::usage(format!(
            "--token-store {}: not a Redis URL; expected {STORE_FORMS}",
            redact_url(url)
        )));
    }
    let store = RedisTokenStore::open(url, AppKeys::for_client(settings)).map_err(|e| {
        let text = e.to_string();
        let text = text.strip_prefix("token store: ").unwrap_or(&text);
        Failure::usage(format!("--token-store {text}; expected {STORE_FORMS}"))
    })?;
    Ok(Arc::new(store))
}

/// How CLI runs share the token: a run is often stopped with Ctrl-C, and one stopped while it
/// refreshes for the others would hold them up for its whole lease; 10 s is still far longer
/// than a gettoken takes (a slower one costs at most one more gettoken, never a wrong token).
const CLI_SHARING: SharedTokenPolicy = SharedTokenPolicy {
    lease: Duration::from_secs(10),
    ..SharedTokenPolicy::DEFAULT
};

/// Whether an errcode says the access token was not accepted.
fn token_rejected(code: Option<ErrCode>) -> bool {
    matches!(
        code,
        Some(
            ErrCode::InvalidAccessToken | ErrCode::AccessTokenExpired | ErrCode::InvalidCredential
        )
    )
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wecom_material_core::Error;
    use wecom_material_core::error::ApiError;

    /// A session on a base URL nothing listens on (nothing is sent here) with its cache at
    /// `cache`.
    fn session(cache: &std::path::Path) -> Session {
        Session::open(&Settings {
            base_url: Some("http://127.0.0.1:9".into()),
            corp_id: Some("ww-unit".into()),
            secret: Some("unit-test-secret".into()),
            token_cache: Some(cache.to_path_buf()),
            token_store: None,
            idle_timeout: Duration::from_secs(5),
            retries: 0,
        })
        .unwrap()
    }

    fn api_error(code: i64) -> Result<(), Failure> {
        Err(Failure::Wecom(Error::Api(ApiError {
            code: ErrCode::from_code(code),
            errmsg: "refused".into(),
        })))
    }

    /// The tokens in the cache file.
    fn cached(cache: &std::path::Path) -> Vec<String> {
        let bytes = std::fs::read(cache).unwrap_or_else(|_| b"{}".to_vec());
        let entries = token_store::parse_cache(&bytes).unwrap();
        entries.into_values().map(|t| t.access_token).collect()
    }

    /// A command that ended with a token rejection (40014, 42001, or 40001) drops the cached
    /// token even when the client still holds one (a fresher token another call fetched):
    /// the next run starts with a gettoken instead of a token WeCom may refuse again. Any
    /// other ending writes the token the client holds.
    #[test]
    fn a_rejection_drops_the_cached_token_whatever_the_client_holds() {
        let dir = std::env::temp_dir().join(format!("wecom-session-{}", std::process::id()));
        let cache = dir.join("tokens.json");
        let held = StoredToken {
            access_token: "HELD-token-of-the-client".into(),
            expires_at_unix: now_unix() + 3600,
            generation: 1,
        };
        for code in [40014, 42001, 40001] {
            let run = session(&cache);
            run.client().import_token(held.clone());
            run.persist_after(&Ok(()));
            assert_eq!(cached(&cache), [held.access_token.as_str()]);
            let run = session(&cache);
            assert!(run.client().export_token().is_some());
            run.persist_after(&api_error(code));
            assert!(cached(&cache).is_empty(), "{code}");
        }
        for ending in [api_error(40007), Err(Failure::usage("x")), Ok(())] {
            let _ = std::fs::remove_file(&cache);
            let run = session(&cache);
            run.client().import_token(held.clone());
            run.persist_after(&ending);
            assert_eq!(cached(&cache), [held.access_token.as_str()], "{ending:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
