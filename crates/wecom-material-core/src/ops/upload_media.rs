//! `POST /cgi-bin/media/upload`: upload temporary media (SPEC §2).

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::api_json::{flexible_u64, parse_json};
use crate::body::{Body, Payload, UploadBody};
use crate::endpoint::BaseUrl;
use crate::error::{Error, Invalid};
use crate::limits::Limits;
use crate::media_type::{MediaId, MediaType};
use crate::multipart::{self, Boundary};
use crate::operation::Operation;
use crate::secret::AccessToken;

/// The upload path.
pub const PATH: &str = "/cgi-bin/media/upload";

/// How long a temporary media id lives.
pub const MEDIA_LIFETIME: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// An upload that passed validation and is framed, ready to be sent (any number of times when
/// the payload is replayable).
#[derive(Debug, Clone)]
pub struct UploadMedia {
    media_type: MediaType,
    filename: String,
    content_type: String,
    body: UploadBody,
}

/// What WeCom returns for an upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Uploaded {
    /// The type WeCom recorded.
    #[serde(rename = "type")]
    pub media_type: MediaType,
    /// The new media id.
    pub media_id: MediaId,
    /// Unix seconds of the upload.
    pub created_at: u64,
    /// Unix seconds when the media id stops working (`created_at` + 3 days).
    pub expires_at: u64,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "type", default)]
    media_type: Option<String>,
    media_id: String,
    #[serde(with = "flexible_u64")]
    created_at: u64,
}

/// Frames `payload` as the `media` part after checking the name (shared with `uploadimg`).
pub(crate) fn frame_upload(
    boundary: &Boundary,
    filename: &str,
    part_content_type: &str,
    payload: Payload,
) -> Result<UploadBody, Invalid> {
    let (head, tail) = multipart::frame(boundary, filename, part_content_type, payload.len())?;
    Ok(UploadBody {
        head,
        payload,
        tail,
        digest: None,
        sent: Default::default(),
    })
}

/// The first bytes to check a signature against: the payload itself when the core holds it,
/// else what the caller read from the file.
pub(crate) fn sniff<'a>(payload: &'a Payload, first_bytes: Option<&'a [u8]>) -> Option<&'a [u8]> {
    payload.bytes().map(Bytes::as_ref).or(first_bytes)
}

/// Builds an upload request with a multipart body (shared with `uploadimg`).
pub(crate) fn upload_request(
    uri: http::Uri,
    content_type: &str,
    body: &UploadBody,
) -> http::Request<Body> {
    let headers = [
        (http::header::CONTENT_TYPE, content_type.to_owned()),
        (
            http::header::CONTENT_LENGTH,
            body.content_length().to_string(),
        ),
    ];
    crate::endpoint::request(
        http::Method::POST,
        uri,
        &headers,
        Body::Upload(body.clone()),
    )
}

impl UploadMedia {
    /// Validates the upload against `limits` and frames it.
    ///
    /// `first_bytes` is the start of the file when `payload` is [`Payload::External`] (pass
    /// the first 8 bytes or more to have voice and image signatures checked); it is ignored
    /// when the payload is [`Payload::Bytes`]. Nothing is copied from the payload.
    pub fn new(
        media_type: MediaType,
        filename: &str,
        payload: Payload,
        first_bytes: Option<&[u8]>,
        boundary: Boundary,
        limits: &Limits,
    ) -> Result<Self, Invalid> {
        multipart::escape_filename(filename)?;
        limits.check_upload(
            media_type,
            filename,
            payload.len(),
            sniff(&payload, first_bytes),
        )?;
        let part_type = multipart::part_content_type(media_type, filename);
        let body = frame_upload(&boundary, filename, part_type, payload)?;
        Ok(Self {
            media_type,
            filename: filename.to_owned(),
            content_type: boundary.content_type(),
            body,
        })
    }

    /// Convenience for bytes in memory.
    pub fn from_bytes(
        media_type: MediaType,
        filename: &str,
        bytes: Bytes,
        boundary: Boundary,
        limits: &Limits,
    ) -> Result<Self, Invalid> {
        Self::new(
            media_type,
            filename,
            Payload::Bytes(bytes),
            None,
            boundary,
            limits,
        )
    }

    /// The media type.
    pub fn media_type(&self) -> MediaType {
        self.media_type
    }

    /// The display filename.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The framed body.
    pub fn body(&self) -> &UploadBody {
        &self.body
    }
}

impl Operation for UploadMedia {
    type Output = Uploaded;
    const NAME: &'static str = "media/upload";
    const KIND: crate::error::OperationKind = crate::error::OperationKind::Upload;

    fn progress(&self) -> Option<crate::Progress> {
        Some(self.body.progress())
    }

    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        let uri = base.uri(
            PATH,
            &[
                ("access_token", token.expose()),
                ("type", self.media_type.as_str()),
            ],
        );
        upload_request(uri, &self.content_type, &self.body)
    }

    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<Uploaded, Error> {
        let answer: Answer = parse_json(&response)?;
        let media_type = answer
            .media_type
            .and_then(|t| t.parse().ok())
            .unwrap_or(self.media_type);
        Ok(Uploaded {
            media_type,
            media_id: MediaId::new(answer.media_id),
            created_at: answer.created_at,
            expires_at: answer.created_at.saturating_add(MEDIA_LIFETIME.as_secs()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Replay;

    fn upload(payload: Payload, first_bytes: Option<&[u8]>) -> Result<UploadMedia, Invalid> {
        let boundary = Boundary::new("t").unwrap();
        UploadMedia::new(
            MediaType::Image,
            "照片.jpg",
            payload,
            first_bytes,
            boundary,
            &Limits::default(),
        )
    }

    /// An image's signature is checked on the bytes themselves when the core holds them, on
    /// the first bytes the caller read when it streams a file, and not at all without either;
    /// the upload keeps the filename it was given.
    #[test]
    fn an_images_signature_is_checked_on_whatever_bytes_are_at_hand() {
        let text = Bytes::from_static(b"plain text, not an image");
        let wrong = upload(Payload::Bytes(text.clone()), Some(b"\xFF\xD8\xFF"));
        assert!(
            matches!(wrong, Err(Invalid::WrongFormat { .. })),
            "{wrong:?}"
        );
        let file = || Payload::External {
            len: 100,
            replay: Replay::Replayable,
        };
        let wrong = upload(file(), Some(&text[..]));
        assert!(
            matches!(wrong, Err(Invalid::WrongFormat { .. })),
            "{wrong:?}"
        );
        let jpeg = upload(file(), Some(b"\xFF\xD8\xFF\xE0 JFIF")).unwrap();
        assert_eq!(jpeg.filename(), "照片.jpg");
        assert!(upload(file(), None).is_ok());
    }
}
