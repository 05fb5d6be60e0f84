#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod operations;
mod run;

pub use client::{Client, ClientBuilder};
pub use operations::Upload;
pub use run::{Sink, Source};
pub use wecom_material_core as core;
pub use wecom_material_core::client_settings::{DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT};
pub use wecom_material_core::{DownloadOptions, Downloaded, Transfer};
pub use wecom_material_host::FileSink;
pub use wecom_material_host::JobEvents;
pub use wecom_material_host::md5_file;
pub use wecom_material_host::{BatchNames, Overwrite, SaveOptions, Saved};
