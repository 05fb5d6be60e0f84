//! A client for the API commands, with its token loaded from and saved to the cache file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wecom_material_core::{DEFAULT_BASE_URL, ErrCode, RetryPolicy, StoredToken};
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
        let client = Client::builder(corp_id, secret)
            .base_url(base_url)
            .map_err(|e| Failure::Wecom(e.into()))?
            .media_idle_timeout(settings.idle_timeout)
            .retry_policy(RetryPolicy {
                max_transport_retries: settings.retries,
                ..RetryPolicy::default()
            })
            .build();
        let key = token_store::cache_key(client.base_url().as_str(), corp_id, secret);
        let store = settings
            .token_cache
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(token_store::default_path)
            .map(TokenStore::new);
        let loaded = store.as_ref().and_then(|s| s.load(&key));
        if let Some(token) = &loaded {
            logger::mask(&token.access_token);
            client.import_token(token.clone());
        }
        match &store {
            Some(s) => log::debug!("token cache {}", s.path().display()),
            None => log::debug!("no token cache: neither XDG_CACHE_HOME nor HOME is set"),
        }
        Ok(Self {
            client,
            store,
            key,
            loaded,
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
    pub(crate) fn persist_after(self, result: &Result<(), Failure>) {
        let rejected = match result {
            Err(Failure::Wecom(error)) => token_rejected(error.errcode()),
            _ => false,
        };
        if !rejected {
            return self.persist();
        }
        let Some(store) = &self.store else { return };
        log::info!("dropping the cached token: WeCom rejected it");
        if let Err(e) = store.save(&self.key, None, now_unix()) {
            log::warn!("cannot write token cache {}: {e}", store.path().display());
        }
    }

    /// Writes the client's token back when it changed (a new one, or none left).
    pub(crate) fn persist(self) {
        let Some(store) = &self.store else { return };
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
