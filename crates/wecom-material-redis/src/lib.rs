#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
mod keys;
mod scripts;
mod store;

pub use blocking::SharedTokens;
pub use keys::{AppKeys, KEY_PREFIX};
pub use store::{DEFAULT_STORE_TIMEOUT, RedisTokenStore, redact_url};
pub use wecom_material_core::{
    CommitReply, Fallback, Generation, LookupReply, SharedToken, SharedTokenError,
    SharedTokenPolicy, StoreError, StoredGrant, TokenOrigin,
};
