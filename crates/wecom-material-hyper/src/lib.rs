#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use client::{Client, ClientBuilder};
pub use operations::Upload;
pub use run::{Sink, Source};
pub use wecom_material_core::client_settings::{DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT};
pub use wecom_material_core::{self as core, DownloadOptions, Downloaded, Transfer};
pub use wecom_material_host::FileSink;
pub use wecom_material_host::JobEvents;
pub use wecom_material_host::{BatchNames, Overwrite, SaveOptions, Saved};

mod client;
mod operations;
mod run;

/// The MD5 of a file as 32 lowercase hex digits, read in constant memory on a blocking thread
/// (for [`Client::upload_by_url`]).
pub async fn md5_file(path: &std::path::Path) -> std::io::Result<String> {
    let path = path.to_owned();
    let digest = tokio::task::spawn_blocking(move || wecom_material_host::md5_file(&path));
    digest.await.map_err(std::io::Error::other)?
}
