//! The machinery's own tests, at virtual time: the call driver and the token cache
//! (`driver`), the shared store (`shared_store`), the download plan's edges and every task's
//! policy scenarios (`tasks`), each against the scripted server and in-memory transport of
//! `support`. They live in the crate because the machines they test are its private parts.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub(crate) mod download_plan_edges;
mod driver;
mod lanes;
#[cfg(feature = "s3-relay")]
mod relay;
mod save;
mod shared_store;
mod support;
mod tasks;

/// The names the tests use, from wherever they live now.
mod names {
    pub(crate) use crate::api_json::MAX_JSON_RESPONSE;
    pub(crate) use crate::body::{Body, Payload, Replay, UploadBody};
    pub(crate) use crate::download::plan::{Download, Expect, MAX_CHUNK_SIZE};
    pub(crate) use crate::error::{ApiError, Sent};
    pub(crate) use crate::multipart::Boundary;
    pub(crate) use crate::operation::Operation;
    pub(crate) use crate::ops::get_media::{GetMedia, MediaEndpoint, MediaHead};
    pub(crate) use crate::ops::gettoken::GetToken;
    pub(crate) use crate::ops::upload_by_url_result::GetUploadByUrlResult;
    pub(crate) use crate::ops::upload_media::UploadMedia;
    pub(crate) use crate::shared_token::{
        CommitReply, LookupReply, StoreCommand, StoreReply, StoredGrant,
    };
    pub(crate) use crate::task::{Exchange, PayloadMeter, UploadInput};
    pub(crate) use crate::*;
}
