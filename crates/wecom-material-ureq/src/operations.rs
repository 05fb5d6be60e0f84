//! The client's operations: each builds the core's task for one user intent and drives it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::{DownloadTask, JobWaitTask, Lane, UploadInput, UploadPlan};
use wecom_material_core::{DownloadOptions, Downloaded, Error, GetUploadByUrlResult, JobId};
use wecom_material_core::{JobStatus, Media, MediaId, MediaType, Operation, PollPolicy};
use wecom_material_core::{Transfer, UploadByUrl, UploadJob, Uploaded, UploadedImage};

use crate::client::Client;
use crate::run::{Ends, Source};

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

/// Gets an upload's bytes ready: opens a file (and reads its first bytes for the format
/// checks); the core decides the rest.
fn prepare(upload: Upload<'_>) -> Result<(UploadInput, Option<Source<'_>>), Error> {
    let (path, name) = match upload.plan()? {
        UploadPlan::Ready(input) => return Ok((input, None)),
        UploadPlan::Stream { input, reader } => {
            return Ok((input, Some(Source::Reader(Some(reader)))));
        }
        UploadPlan::OpenFile { path, filename } => (path, filename),
    };
    let fail = |e| Error::io(format!("opening {}", path.display()), e);
    let mut file = File::open(&path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    let mut prefix = Vec::with_capacity(UploadInput::SNIFF_LEN);
    let mut sniff = Read::by_ref(&mut file).take(UploadInput::SNIFF_LEN as u64);
    sniff.read_to_end(&mut prefix).map_err(fail)?;
    let input = UploadInput::file(&path, name.as_deref(), len, prefix)?;
    Ok((input, Some(Source::File(file))))
}

impl Client {
    /// Uploads temporary media (valid 3 days) and returns its media id.
    pub fn upload(
        &self,
        kind: MediaType,
        upload: Upload<'_>,
        t: Transfer<'_>,
    ) -> Result<Uploaded, Error> {
        let (input, source) = prepare(upload)?;
        let op = input.upload_media(kind, self.boundary(), self.limits())?;
        self.run_upload(op, input, source, t)
    }

    /// Uploads a JPG/PNG for a permanent URL.
    pub fn upload_image(
        &self,
        upload: Upload<'_>,
        t: Transfer<'_>,
    ) -> Result<UploadedImage, Error> {
        let (input, source) = prepare(upload)?;
        let op = input.upload_image(self.boundary(), self.limits())?;
        self.run_upload(op, input, source, t)
    }

    fn run_upload<O: Operation>(
        &self,
        op: O,
        input: UploadInput,
        source: Option<Source<'_>>,
        t: Transfer<'_>,
    ) -> Result<O::Output, Error> {
        let source = source.map(|source| (source, input.meter()));
        let ends = Ends { source, sink: None };
        self.drive(self.call(op, Lane::Media), ends, &t)
    }

    /// Fetches a whole media into memory: at most `options.max_len` bytes, by default the
    /// client's in-memory limit; a larger media fails with a decode error before its body
    /// is read (use [`Client::download`]).
    pub fn get(&self, media_id: &MediaId, options: DownloadOptions) -> Result<Media, Error> {
        let max_len = options.max_len.unwrap_or(self.inner.settings.max_in_memory);
        let mut buffer = Vec::new();
        let options = options.max_len(max_len);
        let done = self.download(media_id, &mut buffer, options, Transfer::default())?;
        let bytes = Bytes::from(buffer);
        Ok(Media {
            info: done.info,
            bytes,
        })
    }

    /// Downloads a media into `writer`: whole when small, else in Range chunks, resuming
    /// after a broken connection from the byte reached (see [`DownloadOptions`] for HD voice
    /// and resuming a partial file). Only media bytes are ever written, and `writer` is
    /// flushed before this returns, also on failure and cancel.
    pub fn download(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        options: DownloadOptions,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let settings = &self.inner.settings;
        let base = settings.base.clone();
        let (chunk, policy) = (settings.chunk_size, settings.retry_policy);
        let task = DownloadTask::new(media_id.clone(), options, chunk, base, policy, self.seed())?;
        let ends = Ends {
            source: None,
            sink: Some(writer),
        };
        self.drive(task, ends, &transfer)
    }

    /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support Range).
    /// `md5` is the file's MD5 ([`md5_file`] computes it from a local copy).
    pub fn upload_by_url(
        &self,
        media_type: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
    ) -> Result<UploadJob, Error> {
        let allow_http = !self.base_url().is_https();
        let op = UploadByUrl::new(media_type, filename, url, md5, self.limits(), allow_http)?;
        self.drive(
            self.call(op, Lane::Json),
            Ends::default(),
            &Transfer::default(),
        )
    }

    /// Asks how an async upload job stands.
    pub fn job_result(&self, jobid: &JobId) -> Result<JobStatus, Error> {
        let op = GetUploadByUrlResult::new(jobid.clone())?;
        self.drive(
            self.call(op, Lane::Json),
            Ends::default(),
            &Transfer::default(),
        )
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// backoff of the client's poll policy) and wakes up early when a callback event for this
    /// job is fed to [`Client::job_events`]. Returns the final status, or `Processing` when
    /// the deadline came first. The decisions are the core's
    /// [`JobWaitTask`](wecom_material_core::task::JobWaitTask).
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        self.wait_job_with(jobid, deadline, self.poll_policy())
    }

    /// [`Client::wait_job`] with an explicit poll policy.
    pub fn wait_job_with(
        &self,
        jobid: &JobId,
        deadline: Instant,
        policy: PollPolicy,
    ) -> Result<JobStatus, Error> {
        let (base, retry) = (self.base_url().clone(), self.retry_policy());
        let task = JobWaitTask::new(jobid.clone(), deadline, policy, base, retry, self.seed())?;
        self.drive(task, Ends::default(), &Transfer::default())
    }
}

/// The MD5 of a file as 32 lowercase hex digits, read in constant memory (for
/// [`Client::upload_by_url`]).
pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5Hex::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
