//! One client under test and the core tasks of its operations, built by the kit the way the
//! clients of this workspace build them (`wecom-material-host`'s `Shared`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use wecom_material_core::task::Upload;
use wecom_material_core::{ClientSettings, DownloadOptions, Downloaded, Error, JobId, JobStatus};
use wecom_material_core::{DownloadTask, Media, UploadJob, Uploaded, UploadedImage};
use wecom_material_core::{MediaId, MediaType, ResumeRecord, TokenStore, Transfer};
use wecom_material_host::{self as host, Shared, open_upload};

use crate::{Driver, Io, MemoryStore, Recorder, Sink, Source};

/// A client of the transport under test, with the tasks of every operation.
pub struct Subject<'d, D: Driver> {
    driver: &'d D,
    /// The transport's client.
    pub client: Arc<D::Client>,
    /// Builds the tasks (settings and seeds; its own state is unused: the client's runs).
    tasks: Shared<dyn TokenStore>,
}

impl<D: Driver> std::fmt::Debug for Subject<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").finish_non_exhaustive()
    }
}

/// An upload as a scenario gives it.
pub(crate) enum Payload<'a> {
    /// Bytes in memory.
    Bytes(&'a str, Bytes),
    /// A file, read for every attempt.
    Path(&'a Path),
    /// A reader read once, announcing `len` bytes.
    Once(&'a str, Bytes, u64),
}

impl<'d, D: Driver> Subject<'d, D> {
    /// A new client of `driver` with `settings`, sharing its token through `store`.
    pub fn new(driver: &'d D, settings: ClientSettings, store: Option<Arc<MemoryStore>>) -> Self {
        let tasks = Shared::new(settings.clone(), None);
        Self {
            client: Arc::new(driver.client(settings, store)),
            driver,
            tasks,
        }
    }

    /// The task builder (for tasks a scenario runs itself).
    pub fn tasks(&self) -> &Shared<dyn TokenStore> {
        &self.tasks
    }

    /// Runs `task` to its end.
    pub async fn run<T: wecom_material_core::Task + Send>(
        &self,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> Result<T::Output, Error> {
        self.driver.run(&self.client, task, io, transfer).await
    }

    /// Uploads temporary media.
    pub(crate) async fn upload(
        &self,
        kind: MediaType,
        payload: Payload<'_>,
        t: &Transfer,
    ) -> Result<Uploaded, Error> {
        let (input, source) = opened(payload)?;
        let mut task = self.tasks.upload(kind, &input)?;
        let io = Io {
            source,
            sink: Sink::None,
        };
        self.run(&mut task, io, t).await
    }

    /// Uploads an image for a permanent URL.
    pub(crate) async fn upload_image(&self, payload: Payload<'_>) -> Result<UploadedImage, Error> {
        let (input, source) = opened(payload)?;
        let mut task = self.tasks.upload_image(&input)?;
        let io = Io {
            source,
            sink: Sink::None,
        };
        self.run(&mut task, io, &Transfer::default()).await
    }

    /// Fetches a whole media into memory.
    pub(crate) async fn get(&self, id: &MediaId, options: DownloadOptions) -> Result<Media, Error> {
        let mut out = Recorder::default();
        let mut task = self.tasks.get(id, options)?;
        let io = Io {
            source: None,
            sink: Sink::Memory(&mut out),
        };
        let done = self.run(&mut task, io, &Transfer::default()).await?;
        Ok(Media {
            info: done.info,
            bytes: out.bytes.into(),
        })
    }

    /// Downloads a media into a stream.
    pub(crate) async fn download(
        &self,
        id: &MediaId,
        out: &mut Recorder,
        options: DownloadOptions,
        t: &Transfer,
    ) -> Result<Downloaded, Error> {
        let mut task = self.tasks.download(id, options)?;
        let io = Io {
            source: None,
            sink: Sink::Memory(out),
        };
        self.run(&mut task, io, t).await
    }

    /// Downloads a media into a file in ranges; the task is handed back (its record and
    /// concurrency limit).
    pub(crate) async fn download_file(
        &self,
        id: &MediaId,
        file: &File,
        options: DownloadOptions,
        record: Option<ResumeRecord>,
        t: &Transfer,
    ) -> (Result<Downloaded, Error>, DownloadTask) {
        let task = self.tasks.download_file(id, options, record);
        let mut task = task.unwrap_or_else(|e| panic!("a download task: {e}"));
        let io = Io {
            source: None,
            sink: Sink::File(file),
        };
        (self.run(&mut task, io, t).await, task)
    }

    /// Asks WeCom to fetch a file from `url`.
    pub(crate) async fn upload_by_url(
        &self,
        kind: MediaType,
        name: &str,
        url: &str,
        md5: &str,
    ) -> Result<UploadJob, Error> {
        let mut task = self.tasks.upload_by_url(kind, name, url, md5)?;
        self.run(&mut task, Io::none(), &Transfer::default()).await
    }

    /// Asks how a job stands.
    pub(crate) async fn job_result(&self, id: &JobId) -> Result<JobStatus, Error> {
        let mut task = self.tasks.job_result(id)?;
        self.run(&mut task, Io::none(), &Transfer::default()).await
    }

    /// Waits for a job until `deadline`.
    pub(crate) async fn wait_job(&self, id: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        let mut task = self.tasks.wait_job(id, deadline)?;
        self.run(&mut task, Io::none(), &Transfer::default()).await
    }
}

/// The core's view of an upload and the source of its payload.
fn opened(
    payload: Payload<'_>,
) -> Result<(wecom_material_core::task::UploadInput, Option<Source>), Error> {
    let upload = match payload {
        Payload::Bytes(name, bytes) => Upload::bytes(name, bytes),
        Payload::Path(path) => Upload::path(path),
        Payload::Once(name, bytes, len) => Upload::reader(name, bytes, len),
    };
    let (input, source) = open_upload(upload)?;
    let source = source.and_then(|source| match source {
        host::Source::File(file) => Some(Source::File(file)),
        host::Source::Reader(bytes) => bytes.map(Source::Once),
    });
    Ok((input, source))
}
