#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
mod keys;
#[cfg(feature = "tokio")]
mod nonblocking;
mod scripts;
mod store;

pub use blocking::SharedTokens;
pub use keys::{AppKeys, KEY_PREFIX};
#[cfg(feature = "tokio")]
pub use nonblocking::{AsyncRedisTokenStore, AsyncSharedTokens};
pub use store::{DEFAULT_STORE_TIMEOUT, RedisTokenStore, redact_url};
pub use wecom_material_core::{
    CommitReply, Fallback, Generation, LookupReply, SharedToken, SharedTokenError,
    SharedTokenPolicy, StoreError, StoredGrant, TokenOrigin,
};
