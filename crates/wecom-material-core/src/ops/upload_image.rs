//! `POST /cgi-bin/media/uploadimg`: upload an image for a permanent URL (SPEC §3).

use serde::Deserialize;

use crate::api_json::parse_json;
use crate::body::{Body, Payload, UploadBody};
use crate::endpoint::BaseUrl;
use crate::error::{Error, Invalid};
use crate::limits::Limits;
use crate::media_type::MediaType;
use crate::multipart::{self, Boundary};
use crate::operation::Operation;
use crate::ops::upload_media::{frame_upload, sniff, upload_request};
use crate::secret::AccessToken;

/// The uploadimg path.
pub const PATH: &str = "/cgi-bin/media/uploadimg";

/// An image upload, validated and framed.
#[derive(Debug, Clone)]
pub struct UploadImage {
    content_type: String,
    body: UploadBody,
}

/// What WeCom returns: a permanent URL that displays only inside WeCom.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct UploadedImage {
    /// The image URL.
    pub url: String,
}

impl UploadImage {
    /// Validates a JPG/PNG image (5 B – 2 MiB by default) and frames it. `first_bytes` as in
    /// [`crate::ops::upload_media::UploadMedia::new`].
    pub fn new(
        filename: &str,
        payload: Payload,
        first_bytes: Option<&[u8]>,
        boundary: Boundary,
        limits: &Limits,
    ) -> Result<Self, Invalid> {
        multipart::escape_filename(filename)?;
        limits.check_upload_image(filename, payload.len(), sniff(&payload, first_bytes))?;
        let part_type = multipart::part_content_type(MediaType::Image, filename);
        let body = frame_upload(&boundary, filename, part_type, payload)?;
        Ok(Self {
            content_type: boundary.content_type(),
            body,
        })
    }

    /// The framed body.
    pub fn body(&self) -> &UploadBody {
        &self.body
    }
}

impl Operation for UploadImage {
    type Output = UploadedImage;
    const NAME: &'static str = "media/uploadimg";
    const KIND: crate::error::OperationKind = crate::error::OperationKind::Upload;

    fn progress(&self) -> Option<crate::Progress> {
        Some(self.body.progress())
    }

    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        let uri = base.uri(PATH, &[("access_token", token.expose())]);
        upload_request(uri, &self.content_type, &self.body)
    }

    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<UploadedImage, Error> {
        parse_json(&response)
    }
}
