#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api_json;
pub mod body;
pub mod driver;
pub mod endpoint;
pub mod errcode;
pub mod error;
pub mod limits;
pub mod media_type;
pub mod multipart;
pub mod operation;
pub mod ops;
pub mod secret;
pub mod token_cache;

pub use api_json::MAX_JSON_RESPONSE;
pub use body::{Body, Payload, Replay, UploadBody};
pub use driver::{Call, RetryPolicy, Step};
pub use endpoint::{BaseUrl, DEFAULT_BASE_URL};
pub use errcode::{Disposition, ErrCode};
pub use error::{ApiError, DecodeError, Error, Invalid, Sent, TransportError};
pub use limits::Limits;
pub use media_type::{JobId, MediaId, MediaType};
pub use multipart::Boundary;
pub use operation::Operation;
pub use secret::{AccessToken, CorpSecret, RedactedUri};
pub use token_cache::{RefreshTicket, StoredToken, TokenCache, TokenLookup};
