//! A local file up to 200 MB through S3-compatible object storage (feature `s3-relay`): the
//! core's `RelayUploadTask` makes every decision; this opens the file and drives the task.

use std::path::Path;

use wecom_material_core::relay::{BucketRelay, RelayOptions, RelayedUpload};
use wecom_material_core::{Error, MediaType, Transfer};

use crate::client::Client;
use crate::run::{Sink, Source};

impl Client {
    /// Uploads the file at `path` (up to 200 MB) as `kind` (`video` or `file`) through the
    /// object storage `relay`: PUT to the bucket (streamed, its MD5 computed in the same
    /// read), `upload_by_url` with a presigned GET URL, wait for the job, DELETE the object
    /// (also after a failure or cancel through `t`) unless `options` keep it. `filename` is
    /// the name users see (by default the file's own). Progress counts the bytes of the PUT.
    /// A future dropped before it ends cannot clean up: cancel through `t` instead.
    pub async fn upload_via_bucket(
        &self,
        kind: MediaType,
        path: &Path,
        filename: Option<&str>,
        relay: &BucketRelay,
        options: RelayOptions,
        t: Transfer<'_>,
    ) -> Result<RelayedUpload, Error> {
        // Opening a file is quick: done in place.
        let (input, file) = wecom_material_host::open_file(path, filename)?;
        let mut task = self.0.shared.relay(kind, &input, relay, options)?;
        let source = Some(Source::File(file.into()));
        self.drive(&mut task, source, Sink::None, &t).await
    }
}
