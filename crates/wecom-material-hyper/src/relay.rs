//! A local file up to 200 MB through S3-compatible object storage (feature `s3-relay`): the
//! core's [`RelayUploadTask`] makes every decision; this opens the file and drives the task.

use std::path::Path;
use std::time::{Instant, SystemTime};

use tokio::fs::File;
use wecom_material_core::relay::{BucketRelay, RelayOptions, RelayUploadTask, RelayedUpload};
use wecom_material_core::task::UploadInput;
use wecom_material_core::{Error, MediaType, Transfer};

use crate::client::Client;
use crate::run::{Ends, Source};

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
        let fail = |e| Error::io(format!("opening {}", path.display()), e);
        let file = File::open(path).await.map_err(fail)?;
        let len = file.metadata().await.map_err(fail)?.len();
        let input = UploadInput::file(path, filename, len, Vec::new())?;
        let clock = (Instant::now(), SystemTime::now());
        let settings = &self.0.settings;
        let (entropy, seed) = (self.seed(), self.seed());
        let task =
            RelayUploadTask::new(kind, &input, relay, options, settings, clock, entropy, seed)?;
        let ends = Ends(Some((Source::File(file), input.meter())), None);
        self.drive(task, ends, &t).await
    }
}
