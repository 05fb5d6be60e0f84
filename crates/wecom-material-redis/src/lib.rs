#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod keys;
#[cfg(feature = "tokio")]
mod nonblocking;
mod scripts;
mod store;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use keys::{AppKeys, KEY_PREFIX};
#[cfg(feature = "tokio")]
pub use nonblocking::AsyncRedisTokenStore;
pub use store::{DEFAULT_STORE_TIMEOUT, RedisTokenStore, redact_url, url_passwords};
pub use wecom_material_core::shared_token::{
    AsyncTokenStore, CommitReply, LookupReply, StoreCommand, StoreReply, StoredGrant,
};
pub use wecom_material_core::{Fallback, SharedTokenPolicy, StoreError, TokenStore};
