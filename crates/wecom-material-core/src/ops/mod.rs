//! One module per WeCom endpoint: request type, output type, `build` and `parse` side by side.

pub mod get_media;
pub mod gettoken;
pub mod upload_by_url;
pub mod upload_by_url_result;
pub mod upload_image;
pub mod upload_media;
