//! `POST /cgi-bin/media/upload_by_url`: have WeCom fetch a big file (≤ 200 MB) from a URL
//! that supports Range, asynchronously (SPEC §6).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::api_json::parse_json;
use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::error::{Error, Invalid};
use crate::limits::Limits;
use crate::media_type::{JobId, MediaType};
use crate::operation::Operation;
use crate::secret::AccessToken;

/// The path.
pub const PATH: &str = "/cgi-bin/media/upload_by_url";
/// Longest filename, in bytes.
pub const MAX_FILENAME_BYTES: usize = 128;
/// Longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 1024;
/// The one scene WeCom has: customer-contact group welcome material.
pub const SCENE_GROUP_WELCOME: u32 = 1;

/// A validated async upload request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadByUrl {
    scene: u32,
    #[serde(rename = "type")]
    media_type: MediaType,
    filename: String,
    url: String,
    md5: String,
}

/// The answer: the id of the job to poll or to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadJob {
    /// The job id.
    pub jobid: JobId,
}

#[derive(Deserialize)]
struct Answer {
    jobid: String,
}

impl UploadByUrl {
    /// [`UploadByUrl::new`] with a client's settings: its limits, and a plain-http `url`
    /// allowed only when the client itself talks plain http (a test server).
    pub fn for_client(
        media_type: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
        settings: &crate::ClientSettings,
    ) -> Result<Self, Invalid> {
        let allow_http = !settings.base.is_https();
        Self::new(media_type, filename, url, md5, &settings.limits, allow_http)
    }

    /// Checks the fields: scene 1, type video or file, filename ≤ 128 bytes with an extension
    /// fitting the type, an `https://` URL ≤ 1024 bytes, MD5 as 32 lowercase hex digits.
    /// `allow_http` lets `http://` URLs through (for emulators and private deployments).
    pub fn new(
        media_type: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
        limits: &Limits,
        allow_http: bool,
    ) -> Result<Self, Invalid> {
        if !matches!(media_type, MediaType::Video | MediaType::File) {
            return Err(Invalid::UnsupportedMediaType {
                media_type,
                operation: "upload_by_url",
            });
        }
        crate::multipart::escape_filename(filename)?;
        if filename.len() > MAX_FILENAME_BYTES {
            return Err(Invalid::FieldTooLong {
                field: "filename",
                len: filename.len(),
                max: MAX_FILENAME_BYTES,
            });
        }
        limits.check_extension(media_type, filename)?;
        if url.is_empty() {
            return Err(Invalid::EmptyField { field: "url" });
        }
        if url.len() > MAX_URL_BYTES {
            return Err(Invalid::FieldTooLong {
                field: "url",
                len: url.len(),
                max: MAX_URL_BYTES,
            });
        }
        let scheme_ok = url.starts_with("https://") || (allow_http && url.starts_with("http://"));
        if !scheme_ok || url.parse::<http::Uri>().is_err() {
            return Err(Invalid::UrlNotHttps);
        }
        if md5.len() != 32
            || !md5
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Invalid::BadMd5 { len: md5.len() });
        }
        Ok(Self {
            scene: SCENE_GROUP_WELCOME,
            media_type,
            filename: filename.to_owned(),
            url: url.to_owned(),
            md5: md5.to_owned(),
        })
    }

    /// Sets another scene (only 1 exists today).
    pub fn with_scene(mut self, scene: u32) -> Result<Self, Invalid> {
        if scene != SCENE_GROUP_WELCOME {
            return Err(Invalid::BadScene { scene });
        }
        self.scene = scene;
        Ok(self)
    }
}

/// A JSON POST (shared with the job-result query).
pub(crate) fn json_request<T: Serialize>(uri: http::Uri, value: &T) -> http::Request<Body> {
    // Plain structs of strings and numbers: serializing them cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_default();
    let headers = [
        (http::header::CONTENT_TYPE, "application/json".to_owned()),
        (http::header::CONTENT_LENGTH, json.len().to_string()),
    ];
    let body = Body::Bytes(Bytes::from(json));
    crate::endpoint::request(http::Method::POST, uri, &headers, body)
}

impl Operation for UploadByUrl {
    type Output = UploadJob;
    const NAME: &'static str = "media/upload_by_url";

    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        json_request(base.uri(PATH, &[("access_token", token.expose())]), self)
    }

    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<UploadJob, Error> {
        let answer: Answer = parse_json(&response)?;
        Ok(UploadJob {
            jobid: JobId::new(answer.jobid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scene 1 (the welcome message of a customer group) is the only scene WeCom has.
    #[test]
    fn only_the_one_scene_wecom_has_is_accepted() {
        let md5 = "0123456789abcdef0123456789abcdef";
        let limits = Limits::default();
        let new = || {
            UploadByUrl::new(
                MediaType::File,
                "a.pdf",
                "https://x.test/a",
                md5,
                &limits,
                false,
            )
            .unwrap()
        };
        assert_eq!(new().with_scene(SCENE_GROUP_WELCOME).unwrap().scene, 1);
        assert!(matches!(
            new().with_scene(2),
            Err(Invalid::BadScene { scene: 2 })
        ));
    }
}
