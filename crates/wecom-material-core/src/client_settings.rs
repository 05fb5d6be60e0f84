//! What a client is configured with, and the one builder both transports hand out.
//!
//! The settings are plain data; a transport turns them into connections and timers in its
//! [`FromSettings`] impl. `wecom_material_ureq::Client::builder(..)` and
//! `wecom_material_hyper::Client::builder(..)` both return a [`ClientBuilder`] of their client.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::download::plan::MAX_CHUNK_SIZE;
use crate::driver::RetryPolicy;
use crate::endpoint::BaseUrl;
use crate::error::Invalid;
use crate::job_wait::PollPolicy;
use crate::limits::Limits;
use crate::secret::CorpSecret;
use crate::shared_token::SharedTokenPolicy;

/// Default timeout of a JSON call (token, upload answer, job query), connect included.
pub const DEFAULT_JSON_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest pause between two reads or writes of a media transfer. Media transfers have
/// no overall timeout of their own: a 200 MB file on a slow link may take long, but it must
/// keep moving (the caller may set one: [`Transfer::deadline`](crate::Transfer::deadline)).
pub const DEFAULT_MEDIA_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default largest media a client's `get` holds in memory.
pub const DEFAULT_MAX_IN_MEMORY: u64 = 20 * 1024 * 1024;

/// Everything a client of one app is configured with.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The corp id.
    pub corp_id: String,
    /// The app's secret (printed as `***`).
    pub secret: CorpSecret,
    /// Where requests go (default `https://qyapi.weixin.qq.com`).
    pub base: BaseUrl,
    /// Timeout of a whole JSON call; also the connect timeout of media transfers.
    pub json_timeout: Duration,
    /// Longest pause between reads or writes of a media transfer.
    pub media_idle_timeout: Duration,
    /// Pre-flight limits.
    pub limits: Limits,
    /// Retry and backoff of every call.
    pub retry_policy: RetryPolicy,
    /// How `wait_job` polls.
    pub poll_policy: PollPolicy,
    /// Range chunk size of downloads (1 ..= 20,000,000 bytes).
    pub chunk_size: u64,
    /// Largest media `get` holds in memory.
    pub max_in_memory: u64,
    /// How the token is shared through the client's token store, when it has one (set by
    /// [`ClientBuilder::token_store`]); `None`: the client keeps its own token.
    pub shared_token: Option<SharedTokenPolicy>,
}

impl ClientSettings {
    /// The defaults for one app.
    pub fn new(corp_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            corp_id: corp_id.into(),
            secret: CorpSecret::new(secret),
            base: BaseUrl::default(),
            json_timeout: DEFAULT_JSON_TIMEOUT,
            media_idle_timeout: DEFAULT_MEDIA_IDLE_TIMEOUT,
            limits: Limits::default(),
            retry_policy: RetryPolicy::default(),
            poll_policy: PollPolicy::default(),
            chunk_size: MAX_CHUNK_SIZE,
            max_in_memory: DEFAULT_MAX_IN_MEMORY,
            shared_token: None,
        }
    }
}

/// A client a transport builds from [`ClientSettings`].
pub trait FromSettings {
    /// The kind of shared token store the transport drives:
    /// [`dyn TokenStore`](crate::TokenStore) (blocking) or
    /// [`dyn AsyncTokenStore`](crate::shared_token::AsyncTokenStore).
    type Store: ?Sized + Send + Sync;

    /// Builds the client: connections, timers and the token cache; `store` is the shared
    /// token store when one was given (then `settings.shared_token` is set).
    fn from_settings(settings: ClientSettings, store: Option<Arc<Self::Store>>) -> Self;
}

/// Configures a client `C` of one app; `build` hands the settings to the transport.
pub struct ClientBuilder<C: FromSettings> {
    settings: ClientSettings,
    store: Option<Arc<C::Store>>,
    client: PhantomData<fn() -> C>,
}

impl<C: FromSettings> Clone for ClientBuilder<C> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            store: self.store.clone(),
            client: PhantomData,
        }
    }
}

impl<C: FromSettings> fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("settings", &self.settings)
            .field("token_store", &self.store.is_some())
            .finish()
    }
}

impl<C: FromSettings> ClientBuilder<C> {
    /// Starts from the defaults for one app (corp id and that app's secret).
    pub fn new(corp_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            settings: ClientSettings::new(corp_id, secret),
            store: None,
            client: PhantomData,
        }
    }

    /// Shares the app's token with every process that uses the same store (e.g.
    /// `wecom-material-redis`): the client's refresher reads the fleet's token from `store`
    /// and calls gettoken only when the store makes it the fleet's refresher, under `policy`
    /// (lease, cool-down, what to do when the store is down). The store must be the one of
    /// this app (its keys are built from the same base URL, corp id and secret): set the
    /// base URL before building the store's keys from [`ClientBuilder::settings`].
    pub fn token_store(mut self, store: Arc<C::Store>, policy: SharedTokenPolicy) -> Self {
        self.settings.shared_token = Some(policy);
        self.store = Some(store);
        self
    }

    /// Sends requests to `url` instead of `https://qyapi.weixin.qq.com`. Plain `http://` is
    /// used only when given here (the emulator, a private deployment).
    pub fn base_url(mut self, url: &str) -> Result<Self, Invalid> {
        self.settings.base = BaseUrl::parse(url)?;
        Ok(self)
    }

    /// Timeout of a whole JSON call (also the connect timeout of media transfers).
    pub fn json_timeout(mut self, timeout: Duration) -> Self {
        self.settings.json_timeout = timeout;
        self
    }

    /// Longest pause between reads or writes of a media transfer.
    pub fn media_idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.media_idle_timeout = timeout;
        self
    }

    /// The pre-flight limits (default: the current WeCom documentation).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Retry and backoff settings.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry_policy = policy;
        self
    }

    /// How `wait_job` polls a job (default: at once, then 1 s doubling to 15 s).
    pub fn job_poll_policy(mut self, policy: PollPolicy) -> Self {
        self.settings.poll_policy = policy;
        self
    }

    /// Size of the Range chunks of downloads (at most 20,000,000 bytes).
    pub fn chunk_size(mut self, bytes: u64) -> Result<Self, Invalid> {
        if bytes == 0 || bytes > MAX_CHUNK_SIZE {
            return Err(Invalid::BadRange {
                reason: format!("chunk size {bytes} must be 1 ..= {MAX_CHUNK_SIZE} bytes"),
            });
        }
        self.settings.chunk_size = bytes;
        Ok(self)
    }

    /// The largest media `get` holds in memory (default 20 MiB).
    pub fn max_in_memory(mut self, bytes: u64) -> Self {
        self.settings.max_in_memory = bytes;
        self
    }

    /// The settings so far.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Builds the client.
    pub fn build(self) -> C {
        C::from_settings(self.settings, self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorded(ClientSettings);

    impl FromSettings for Recorded {
        type Store = dyn crate::TokenStore;

        fn from_settings(settings: ClientSettings, _: Option<Arc<Self::Store>>) -> Self {
            Recorded(settings)
        }
    }

    #[test]
    fn settings_reach_the_transport_and_bad_values_are_refused() {
        let built: Recorded = ClientBuilder::new("ww", "s3cr3t")
            .base_url("http://127.0.0.1:9/")
            .unwrap()
            .chunk_size(1_000)
            .unwrap()
            .max_in_memory(5)
            .build();
        assert_eq!(built.0.base.as_str(), "http://127.0.0.1:9");
        assert_eq!((built.0.chunk_size, built.0.max_in_memory), (1_000, 5));
        assert_eq!(built.0.json_timeout, DEFAULT_JSON_TIMEOUT);
        let builder = ClientBuilder::<Recorded>::new("ww", "s3cr3t");
        assert!(
            builder.clone().chunk_size(MAX_CHUNK_SIZE).is_ok(),
            "20 MB is allowed"
        );
        assert!(matches!(
            builder.clone().chunk_size(20_000_001),
            Err(Invalid::BadRange { .. })
        ));
        assert!(matches!(
            builder.clone().base_url("ftp://x"),
            Err(Invalid::BadBaseUrl { .. })
        ));
        let shown = format!("{builder:?}");
        assert!(
            shown.starts_with("ClientBuilder { settings: ClientSettings {")
                && shown.contains("\"ww\"")
                && shown.ends_with("token_store: false }"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    /// The defaults the README and the docs promise: 20 MiB held in memory by `get`, 64 KiB
    /// read of a JSON answer, 30 s per JSON call, 60 s idle for media.
    #[test]
    fn the_defaults_are_the_documented_ones() {
        let settings = ClientSettings::new("ww", "s");
        assert_eq!(settings.max_in_memory, 20 << 20);
        assert_eq!(crate::api_json::MAX_JSON_RESPONSE, 64 << 10);
        assert_eq!(settings.json_timeout, Duration::from_secs(30));
        assert_eq!(settings.media_idle_timeout, Duration::from_secs(60));
    }
}
