#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The user's vocabulary: ids and media types, what operations return, errors, transfers,
// settings and secrets. The machinery is under `proto`.
pub use wecom_material_core::callback;
pub use wecom_material_core::download::MAX_CHUNK_SIZE;
pub use wecom_material_core::endpoint::DEFAULT_BASE_URL;
pub use wecom_material_core::errcode::Disposition;
pub use wecom_material_core::error::{ApiError, Sent};
pub use wecom_material_core::save::SaveError;
pub use wecom_material_core::{
    AccessToken, BaseUrl, CancelFlag, CorpSecret, DecodeError, DownloadOptions, Downloaded,
    ErrCode, Error, Fallback, Invalid, JobId, JobStatus, Limits, Media, MediaId, MediaInfo,
    MediaType, PollPolicy, Progress, RetryPolicy, SharedTokenPolicy, StoreError, StoredToken,
    Transfer, TransportError, UploadJob, Uploaded, UploadedImage,
};

/// The protocol, for writing a transport of your own or testing at the wire level: the one
/// way to drive an operation (`Task`, `Action`, `Event`; see `proto::task`), every endpoint
/// as a request builder and response parser (`ops`), multipart framing, the token store's
/// interface. The whole of `wecom-material-core`.
pub mod proto {
    pub use wecom_material_core::*;
}

/// The kit for a transport of your own, what both clients are built on: `Shared` (a client's
/// state behind a lock, its wake-ups, job events, token import and export, settings and
/// token store, and the task of each operation), `Running` (a task run by an async loop:
/// polled under the lock, woken, cancelled when its future is dropped; with the feature
/// `async`, `Running::run` is the whole loop around your step of a lane, and `UploadBody` an
/// upload's body as an `http_body::Body`), `FileSink` (positioned writes for downloads in
/// ranges), `open_upload` and `FileAttempt` (an upload's file read from its start by each
/// attempt). See the `reqwest_transport` example. The whole of `wecom-material-host`.
pub mod host {
    pub use wecom_material_host::*;
}

/// A local file up to 200 MB through S3-compatible object storage (feature `s3-relay`): the
/// relay value ([`relay::BucketRelay`]) and options that each client's `upload_via_bucket`
/// takes, and what it returns.
#[cfg(feature = "s3-relay")]
pub mod relay {
    pub use wecom_material_core::ObjectStorageError;
    pub use wecom_material_core::relay::{
        AddressingStyle, BucketRelay, ObjectFate, RelayOptions, RelayedUpload, S3Credentials,
        parse_s3_url,
    };
}

/// The blocking client over ureq 3 (feature `ureq`).
#[cfg(feature = "ureq")]
pub mod blocking {
    pub use wecom_material_ureq::{
        BatchNames, Client, ClientBuilder, DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT,
        JobEvents, Overwrite, SaveOptions, Saved, Upload, md5_file,
    };
    #[doc(no_inline)]
    pub use wecom_material_ureq::{DownloadOptions, Downloaded, Transfer};
}

/// The async client over hyper 1 and tokio (feature `hyper`); its futures are `Send`.
#[cfg(feature = "hyper")]
pub mod tokio {
    pub use wecom_material_hyper::{
        BatchNames, Client, ClientBuilder, DEFAULT_JSON_TIMEOUT, DEFAULT_MEDIA_IDLE_TIMEOUT,
        JobEvents, Overwrite, SaveOptions, Saved, Upload, md5_file,
    };
    #[doc(no_inline)]
    pub use wecom_material_hyper::{DownloadOptions, Downloaded, Transfer};
}

/// One access token for a whole fleet of processes, shared through Redis with fencing
/// (feature `redis`; the async store with `redis-tokio`): give a client the store with its
/// builder's `token_store`. The whole of `wecom-material-redis`.
#[cfg(feature = "redis")]
pub mod redis {
    pub use wecom_material_redis::*;
}
