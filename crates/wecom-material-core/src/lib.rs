#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api_json;
pub mod body;
#[cfg(feature = "callback")]
pub mod callback;
pub mod endpoint;
pub mod errcode;
pub mod error;
pub mod limits;
pub mod media_type;
pub mod multipart;
pub mod operation;
pub mod ops;
pub mod secret;

pub use api_json::MAX_JSON_RESPONSE;
pub use body::{Body, Payload, Replay, UploadBody};
pub use endpoint::{BaseUrl, DEFAULT_BASE_URL};
pub use errcode::{Disposition, ErrCode};
pub use error::{ApiError, DecodeError, Error, Invalid, Sent, TransportError};
pub use limits::Limits;
pub use media_type::{JobId, MediaId, MediaType};
pub use multipart::Boundary;
pub use operation::Operation;
pub use secret::{AccessToken, CorpSecret, RedactedUri};
