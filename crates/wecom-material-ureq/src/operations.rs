//! The client's operations: each builds the core's task for one user intent and drives it.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Instant;

use wecom_material_core::operation::Operation;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::task::{CallTask, JobWaitTask, Timeouts, UploadInput};
use wecom_material_core::transfer::BatchProgress;
use wecom_material_core::{DownloadOptions, DownloadTask, Downloaded, Error, JobId, JobStatus};
use wecom_material_core::{Media, MediaId, MediaType, Progress, ResumeRecord, Transfer};
use wecom_material_core::{UploadJob, Uploaded, UploadedImage};
use wecom_material_files::{FileSink, Opened, open_upload};

use crate::client::Client;
use crate::run::{Sink, Source};

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

impl Client {
    /// Uploads temporary media (valid 3 days) and returns its media id.
    pub fn upload(&self, kind: MediaType, what: Upload, t: Transfer) -> Result<Uploaded, Error> {
        let (limits, boundary) = (&self.0.settings.limits, self.0.seeds.boundary());
        self.run_upload(what, t, |input| input.upload_media(kind, boundary, limits))
    }

    /// Uploads a JPG/PNG for a permanent URL.
    pub fn upload_image(&self, what: Upload, t: Transfer) -> Result<UploadedImage, Error> {
        let (limits, boundary) = (&self.0.settings.limits, self.0.seeds.boundary());
        self.run_upload(what, t, |input| input.upload_image(boundary, limits))
    }

    fn run_upload<O: Operation>(
        &self,
        what: Upload,
        t: Transfer,
        op: impl FnOnce(&UploadInput) -> Result<O, Error>,
    ) -> Result<O::Output, Error> {
        let (input, source) = match open_upload(what)? {
            Opened::Ready(input) => (input, None),
            Opened::Reader(input, reader) => (input, Some(Source::Reader(Some(reader)))),
            Opened::File(input, file) => (input, Some(Source::File(file))),
        };
        let mut task = self.call(op(&input)?, Timeouts::Media);
        self.drive(&mut task, source, Sink::None, &t)
    }

    /// Fetches a whole media into memory: at most `options.max_len` bytes, by default the
    /// client's in-memory limit; a larger media fails with a decode error before its body
    /// is read (use [`Client::download`]).
    pub fn get(&self, media_id: &MediaId, options: DownloadOptions) -> Result<Media, Error> {
        let max_len = options.max_len.unwrap_or(self.0.settings.max_in_memory);
        let (mut buffer, options) = (Vec::new(), options.max_len(max_len));
        let done = self.download(media_id, &mut buffer, options, Transfer::default())?;
        let (info, bytes) = (done.info, buffer.into());
        Ok(Media { info, bytes })
    }

    /// Downloads a media into `writer`: whole when small, else in Range chunks, resuming
    /// after a broken connection from the byte reached (see [`DownloadOptions`] for HD voice
    /// and resuming a partial file; `connections` does not apply to a stream). Only media
    /// bytes are ever written, and `writer` is flushed before this returns, also on failure
    /// and cancel.
    pub fn download(
        &self,
        media_id: &MediaId,
        writer: &mut (dyn Write + Send),
        options: DownloadOptions,
        t: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let options = options.connections(1);
        let mut task = DownloadTask::new(media_id.clone(), options, &self.0.settings, self.seed())?;
        self.drive(&mut task, None, Sink::Stream(writer), &t)
    }

    /// Downloads a media into `file` with up to `options.connections` Range requests in
    /// flight, each written at its offset (the core's [`DownloadTask`] decides the ranges
    /// and how many run at once). `record` is what a previous run left (its bytes are not
    /// fetched again); on return it holds what arrived, to keep next to the file when the
    /// download did not complete.
    pub fn download_file(
        &self,
        id: &MediaId,
        file: &File,
        options: DownloadOptions,
        record: &mut Option<ResumeRecord>,
        t: Transfer,
    ) -> Result<Downloaded, Error> {
        let (id, settings, seed) = (id.clone(), &self.0.settings, self.seed());
        let mut task = DownloadTask::in_ranges(id, options, settings, seed, record.take())?;
        let result = self.drive(&mut task, None, Sink::File(FileSink::new(file)), &t);
        *record = task.resume_record();
        result
    }

    /// Uploads every input with at most `jobs` at once over this client (one token, one
    /// connection pool); the results come in input order. Progress counts the payload bytes
    /// of all of them; a cancel stops those not finished.
    pub fn upload_all(
        &self,
        kind: MediaType,
        uploads: Vec<Upload>,
        jobs: usize,
        t: Transfer,
    ) -> Vec<Result<Uploaded, Error>> {
        let (batch, n) = (BatchProgress::new(uploads.len()), uploads.len());
        let waiting = Mutex::new(uploads.into_iter().enumerate());
        let results = Mutex::new(Vec::new());
        let next = || waiting.lock().unwrap_or_else(|e| e.into_inner()).next();
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, n.max(1)) {
                scope.spawn(|| {
                    while let Some((i, upload)) = next() {
                        let progress = |p: Progress| batch.report(i, p, &t);
                        let one = t.with_progress(&progress);
                        let result = self.upload(kind, upload, one);
                        results.lock().unwrap_or_else(|e| e.into_inner()).push((i, result));
                    }
                });
            }
        });
        BatchProgress::in_order(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support Range).
    /// `md5` is the file's MD5 ([`md5_file`](crate::md5_file) computes it from a local copy).
    pub fn upload_by_url(
        &self,
        kind: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
    ) -> Result<UploadJob, Error> {
        let op = UploadByUrl::for_client(kind, filename, url, md5, &self.0.settings)?;
        self.json(op)
    }

    /// Asks how an async upload job stands.
    pub fn job_result(&self, jobid: &JobId) -> Result<JobStatus, Error> {
        self.json(GetUploadByUrlResult::new(jobid.clone())?)
    }

    fn json<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let mut task = self.call(op, Timeouts::Json);
        self.drive(&mut task, None, Sink::None, &Transfer::default())
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// client's poll policy, see [`ClientBuilder`](crate::ClientBuilder)) and wakes up early
    /// when a callback event for this job is fed to [`Client::job_events`]. Returns the
    /// final status, or `Processing` when the deadline came first. The decisions are the
    /// core's [`JobWaitTask`].
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        let (id, seed) = (jobid.clone(), self.seed());
        let mut task = JobWaitTask::new(id, deadline, &self.0.settings, seed)?;
        self.drive(&mut task, None, Sink::None, &Transfer::default())
    }

    fn seed(&self) -> u64 {
        self.0.seeds.next()
    }

    fn call<O: Operation>(&self, op: O, timeouts: Timeouts) -> CallTask<O> {
        CallTask::for_client(op, &self.0.settings, timeouts, self.seed())
    }
}
