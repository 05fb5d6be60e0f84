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

/// The parsers of the scripts' replies — where a store entry enters the client — for the
/// `store_entry` fuzz target (feature `fuzzing`; not an API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use wecom_material_core::StoreError;
    use wecom_material_core::shared_token::{CommitReply, LookupReply};

    pub use redis::Value;

    /// A LOOKUP script's reply.
    pub fn parse_lookup(v: Value) -> Result<LookupReply, StoreError> {
        crate::scripts::parse_lookup(v)
    }

    /// A COMMIT script's reply.
    pub fn parse_commit(v: Value) -> Result<CommitReply, StoreError> {
        crate::scripts::parse_commit(v)
    }

    /// An INVALIDATE or FAIL script's reply.
    pub fn parse_flag(v: Value) -> Result<bool, StoreError> {
        crate::scripts::parse_flag(v)
    }
}

pub use keys::{AppKeys, KEY_PREFIX};
#[cfg(feature = "tokio")]
pub use nonblocking::AsyncRedisTokenStore;
pub use store::{DEFAULT_STORE_TIMEOUT, RedisTokenStore, redact_url, url_passwords};
pub use wecom_material_core::shared_token::{
    AsyncTokenStore, CommitReply, LookupReply, StoreCommand, StoreReply, StoredGrant,
};
pub use wecom_material_core::{Fallback, SharedTokenPolicy, StoreError, TokenStore};
