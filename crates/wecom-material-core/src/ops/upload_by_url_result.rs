//! `POST /cgi-bin/media/get_upload_by_url_result`: the state of an async upload job
//! (SPEC §7).
//!
//! The outer `errcode` says whether the query worked; `detail.errcode` how the job ended.

use serde::{Deserialize, Serialize};

use crate::api_json::parse_json;
use crate::body::Body;
use crate::endpoint::BaseUrl;
use crate::errcode::ErrCode;
use crate::error::{DecodeError, Error, Invalid};
use crate::media_type::{JobId, MediaId};
use crate::operation::Operation;
use crate::ops::upload_by_url::json_request;
use crate::ops::upload_media::MEDIA_LIFETIME;
use crate::secret::AccessToken;

/// The path.
pub const PATH: &str = "/cgi-bin/media/get_upload_by_url_result";

/// A job-result query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetUploadByUrlResult {
    jobid: JobId,
}

/// How a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Still downloading (status 1).
    Processing,
    /// Done (status 2, detail errcode 0).
    Finished {
        /// The media id, usable with `media/get` in chunks of ≤ 20 MB.
        media_id: MediaId,
        /// Unix seconds.
        created_at: u64,
        /// Unix seconds when the media id expires (`created_at` + 3 days).
        expires_at: u64,
    },
    /// Failed (status 3, or status 2 with a non-zero detail errcode).
    Failed {
        /// Why: 830001, 830003, 301019, 45001…
        errcode: ErrCode,
        /// The server's message.
        errmsg: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    status: u8,
    #[serde(default)]
    detail: Option<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(default)]
    media_id: Option<String>,
    #[serde(default, deserialize_with = "optional_flexible")]
    created_at: Option<u64>,
}

/// `created_at` as a number or a numeric string; `null` and `""` (sent while a job is
/// processing or after it failed) are `None`. A finished job without one is a decode error
/// (see `parse`).
fn optional_flexible<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        Null(()),
        Num(u64),
        Str(String),
    }
    match Option::<Field>::deserialize(d)? {
        None | Some(Field::Null(())) => Ok(None),
        Some(Field::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Field::Str(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
        Some(Field::Num(n)) => Ok(Some(n)),
    }
}

impl GetUploadByUrlResult {
    /// A query for `jobid`.
    pub fn new(jobid: JobId) -> Result<Self, Invalid> {
        if jobid.as_str().is_empty() {
            return Err(Invalid::EmptyField { field: "jobid" });
        }
        Ok(Self { jobid })
    }

    /// The job asked about.
    pub fn jobid(&self) -> &JobId {
        &self.jobid
    }
}

impl Operation for GetUploadByUrlResult {
    type Output = JobStatus;
    const NAME: &'static str = "media/get_upload_by_url_result";

    fn build(&self, base: &BaseUrl, token: &AccessToken) -> http::Request<Body> {
        json_request(base.uri(PATH, &[("access_token", token.expose())]), self)
    }

    fn parse<B: AsRef<[u8]>>(&self, response: http::Response<B>) -> Result<JobStatus, Error> {
        let answer: Answer = parse_json(&response)?;
        let status = response.status().as_u16();
        let bad = |reason: String| {
            Error::from(DecodeError::new(status, reason, response.body().as_ref()))
        };
        match (answer.status, answer.detail) {
            (1, _) => Ok(JobStatus::Processing),
            (2 | 3, Some(d)) if d.errcode != 0 => Ok(JobStatus::Failed {
                errcode: ErrCode::from_code(d.errcode),
                errmsg: d.errmsg,
            }),
            (
                2,
                Some(Detail {
                    media_id: Some(id),
                    created_at: Some(created_at),
                    ..
                }),
            ) if !id.is_empty() => Ok(JobStatus::Finished {
                media_id: MediaId::new(id),
                created_at,
                expires_at: created_at.saturating_add(MEDIA_LIFETIME.as_secs()),
            }),
            (2, _) => Err(bad("finished job without media_id or created_at".into())),
            (3, _) => Err(bad("failed job without a detail errcode".into())),
            (other, _) => Err(bad(format!("unknown job status {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finished job names its media: a status 2 with an empty `media_id` is a decode error,
    /// not a media id of nothing.
    #[test]
    fn a_finished_job_without_a_media_id_is_a_decode_error() {
        let query = GetUploadByUrlResult::new(JobId::new("J1")).unwrap();
        let answer = |media_id: &str| {
            let body = format!(
                r#"{{"errcode":0,"errmsg":"ok","status":2,"detail":{{"errcode":0,"errmsg":"",
                "media_id":"{media_id}","created_at":"1796536860"}}}}"#
            );
            query.parse(http::Response::new(body.into_bytes()))
        };
        let finished = answer("M1").unwrap();
        assert!(
            matches!(&finished, JobStatus::Finished { media_id, .. } if media_id.as_str() == "M1"),
            "{finished:?}"
        );
        let empty = answer("");
        assert!(matches!(empty, Err(Error::Decode(_))), "{empty:?}");
    }
}
