#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use wecom_material_core::*;

/// The blocking client over ureq 3 (feature `ureq`).
#[cfg(feature = "ureq")]
pub mod blocking {
    pub use wecom_material_ureq::{
        Client, ClientBuilder, DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT, Downloaded,
        JobEvents, Transfer, md5_file,
    };
}

/// The async client over hyper 1 and tokio (feature `hyper`); its futures are `Send`.
#[cfg(feature = "hyper")]
pub mod tokio {
    pub use wecom_material_hyper::{
        Client, ClientBuilder, DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT, Downloaded,
        JobEvents, Transfer, md5_file,
    };
}
