#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api_json;
pub mod body;
#[cfg(feature = "callback")]
pub mod callback;
pub mod client_settings;
pub mod download;
pub mod driver;
pub mod endpoint;
pub mod errcode;
pub mod error;
pub mod job_wait;
pub mod limits;
#[cfg(feature = "md5")]
pub mod md5sum;
pub mod media_type;
pub mod multipart;
pub mod operation;
pub mod ops;
#[cfg(feature = "s3-relay")]
pub mod relay;
pub mod secret;
pub mod shared_token;
pub mod task;
pub mod token_cache;
pub mod transfer;

pub use api_json::MAX_JSON_RESPONSE;
pub use body::{Body, Payload, Replay, UploadBody};
pub use client_settings::{ClientBuilder, ClientSettings, FromSettings};
pub use download::content_range::{ByteRange, ContentRange};
pub use download::plan::{Download, Expect, MAX_CHUNK_SIZE};
pub use driver::{Call, RetryPolicy, Step};
pub use endpoint::{BaseUrl, DEFAULT_BASE_URL};
pub use errcode::{Disposition, ErrCode};
pub use error::{ApiError, DecodeError, Error, Invalid, ObjectStorageError, Sent, TransportError};
pub use job_wait::{JobWait, JobWaitStep, Mailboxes, PollPolicy};
pub use limits::Limits;
pub use media_type::{JobId, MediaId, MediaType};
pub use multipart::Boundary;
pub use operation::Operation;
pub use ops::get_media::{GetMedia, Media, MediaEndpoint, MediaHead, MediaInfo, PROBE_LIMIT};
pub use ops::gettoken::{GetToken, TokenGrant};
pub use ops::upload_by_url::{UploadByUrl, UploadJob};
pub use ops::upload_by_url_result::{GetUploadByUrlResult, JobStatus};
pub use ops::upload_image::{UploadImage, UploadedImage};
pub use ops::upload_media::{UploadMedia, Uploaded};
pub use secret::{AccessToken, CorpSecret, RedactedUri};
pub use shared_token::{
    AsyncTokenStore, CommitReply, Fallback, Generation, LookupReply, SharedStep, SharedToken,
    SharedTokenError, SharedTokenFetch, SharedTokenPolicy, SharedTokenState, StoreCommand,
    StoreError, StoreFuture, StoreReply, StoredGrant, TokenOrigin, TokenStore,
};
pub use task::{
    Action, CallTask, ClientState, DownloadOptions, DownloadTask, Event, JobWaitTask, Lane,
    PayloadDigest, PayloadMeter, Task, Upload, UploadInput, UploadPlan,
};
pub use token_cache::{RefreshTicket, StoredToken, TokenCache, TokenLookup};
pub use transfer::{BatchProgress, CancelFlag, Downloaded, Progress, Transfer};
