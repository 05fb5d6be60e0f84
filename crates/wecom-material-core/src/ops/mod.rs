//! One module per WeCom endpoint: request type, output type, `build` and `parse` side by side.

pub mod get_media;
pub mod gettoken;
pub mod upload_by_url;
pub mod upload_by_url_result;
pub mod upload_image;
pub mod upload_media;

/// The largest JSON answer a transport reads (a longer one is a decode error).
pub use crate::api_json::MAX_JSON_RESPONSE;
