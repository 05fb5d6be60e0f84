#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Lets the machinery's tests, which live in this crate, name it as a user would.
#[cfg(test)]
extern crate self as wecom_material_core;

mod api_json;
pub mod body;
#[cfg(feature = "callback")]
pub mod callback;
pub mod client_settings;
pub mod download;
pub(crate) mod driver;
pub mod endpoint;
pub mod errcode;
pub mod error;
pub(crate) mod job_wait;
pub mod limits;
#[cfg(feature = "md5")]
pub mod md5sum;
pub mod media_type;
pub mod multipart;
pub mod operation;
pub mod ops;
pub mod printable;
#[cfg(feature = "s3-relay")]
pub mod relay;
pub mod save;
pub mod secret;
pub mod shared_token;
pub mod task;
pub(crate) mod token_cache;
pub mod transfer;

#[cfg(test)]
mod machinery_tests;

/// The inner machines, for the crate's benchmarks and fuzz targets only: not an API (the
/// one way to drive an operation is a [`Task`]).
#[doc(hidden)]
pub mod internals {
    pub use crate::download::plan::{Download, Expect};
    pub use crate::token_cache::{TokenCache, TokenLookup};
}

// The protocol.
pub use task::{
    Action, CallTask, ClientState, Controlled, DownloadOptions, DownloadTask, Event, JobWaitTask,
    LaneId, ResumeRecord, Task, Timeouts, UploadFrames,
};
// The operations' inputs and outputs.
pub use client_settings::{ClientBuilder, ClientSettings};
pub use driver::RetryPolicy;
pub use endpoint::BaseUrl;
pub use job_wait::PollPolicy;
pub use limits::Limits;
pub use media_type::{JobId, MediaId, MediaType};
pub use ops::get_media::{Media, MediaInfo};
pub use ops::upload_by_url::UploadJob;
pub use ops::upload_by_url_result::JobStatus;
pub use ops::upload_image::UploadedImage;
pub use ops::upload_media::Uploaded;
pub use secret::{AccessToken, CorpSecret};
pub use transfer::{CancelFlag, Downloaded, Progress, Transfer};
// Errors.
pub use errcode::ErrCode;
pub use error::{
    DecodeError, Error, Invalid, ObjectStorageError, OperationKind, Stall, StallKind,
    TransportError,
};
// Sharing the token between processes.
pub use shared_token::{Fallback, SharedTokenPolicy, StoreError, TokenStore};
pub use token_cache::StoredToken;
