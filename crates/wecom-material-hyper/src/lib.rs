#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use client::{Client, ClientBuilder, JobEvents};
pub use operations::{Upload, md5_file};
pub use wecom_material_core::client_settings::{DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT};
pub use wecom_material_core::{self as core, DownloadOptions, Downloaded, Transfer};

mod client;
mod operations;
#[cfg(feature = "s3-relay")]
mod relay;
mod run;
