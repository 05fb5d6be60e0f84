//! The client's operations: each runs the task the shared part builds for it.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Instant;

use wecom_material_core::task::{Task, UploadInput};
use wecom_material_core::transfer::BatchProgress;
use wecom_material_core::{DownloadOptions, Downloaded, Error, JobId, JobStatus, Media, MediaId};
use wecom_material_core::{MediaType, Progress, ResumeRecord, Transfer};
use wecom_material_core::{UploadJob, Uploaded, UploadedImage};
use wecom_material_host::{FileSink, Opened, SaveOptions, Saved, open_upload};

use crate::client::Client;
use crate::run::{Sink, Source};

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

impl Client {
    /// Uploads temporary media (valid 3 days) and returns its media id.
    pub fn upload(&self, kind: MediaType, what: Upload, t: Transfer) -> Result<Uploaded, Error> {
        self.run_upload(what, t, |input| self.0.shared.upload(kind, input))
    }

    /// Uploads a JPG/PNG for a permanent URL.
    pub fn upload_image(&self, what: Upload, t: Transfer) -> Result<UploadedImage, Error> {
        self.run_upload(what, t, |input| self.0.shared.upload_image(input))
    }

    fn run_upload<T: Task>(
        &self,
        what: Upload,
        t: Transfer,
        task: impl FnOnce(&UploadInput) -> Result<T, Error>,
    ) -> Result<T::Output, Error> {
        let (input, source) = match open_upload(what)? {
            Opened::Ready(input) => (input, None),
            Opened::Reader(input, reader) => (input, Some(Source::Reader(Some(reader)))),
            Opened::File(input, file) => (input, Some(Source::File(file))),
        };
        self.drive(&mut task(&input)?, source, Sink::None, &t)
    }

    /// Fetches a whole media into memory: at most `options.max_len` bytes, by default the
    /// client's in-memory limit; a larger media fails with a decode error before its body
    /// is read (use [`Client::download`]).
    pub fn get(&self, media_id: &MediaId, options: DownloadOptions) -> Result<Media, Error> {
        let mut bytes = Vec::new();
        let mut task = self.0.shared.get(media_id, options)?;
        let done = self.drive(
            &mut task,
            None,
            Sink::Stream(&mut bytes),
            &Transfer::default(),
        )?;
        Ok(Media {
            info: done.info,
            bytes: bytes.into(),
        })
    }

    /// Downloads a media into `writer`: whole when small, else in Range chunks, resuming
    /// after a broken connection from the byte reached (see [`DownloadOptions`] for HD voice
    /// and resuming a partial file; `connections` does not apply to a stream). Only media
    /// bytes are ever written, and `writer` is flushed before this returns, also on failure
    /// and cancel.
    pub fn download(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        options: DownloadOptions,
        t: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let mut task = self.0.shared.download(media_id, options)?;
        self.drive(&mut task, None, Sink::Stream(writer), &t)
    }

    /// Downloads a media into `file` with up to `options.connections` Range requests in
    /// flight, each written at its offset (the core's
    /// [`DownloadTask`](wecom_material_core::DownloadTask) decides the ranges and how many
    /// run at once). `record` is what a previous run left (its bytes are not fetched again);
    /// on return it holds what arrived, to keep next to the file when the download did not
    /// complete.
    pub fn download_file(
        &self,
        id: &MediaId,
        file: &File,
        options: DownloadOptions,
        record: &mut Option<ResumeRecord>,
        t: Transfer,
    ) -> Result<Downloaded, Error> {
        let mut task = self.0.shared.download_file(id, options, record.take())?;
        let result = self.drive(&mut task, None, Sink::File(FileSink::new(file)), &t);
        *record = task.resume_record();
        result
    }

    /// Saves a media to `target`: into a directory (created when missing, or named with a
    /// trailing `/`) under the media's own sanitized filename, or at a file path. The way to
    /// save media: resumable (a later save of the same media continues what an interrupted
    /// one left, fetching only the missing bytes), with `options.connections` ranges at once,
    /// never over an existing file unless told ([`Overwrite`](crate::Overwrite)), the file
    /// moved into place only when complete and synced. See
    /// [`wecom_material_host::save`] for the files and rules; [`Client::download`] to a
    /// writer stays for streams.
    pub fn save(
        &self,
        media_id: &MediaId,
        target: impl AsRef<std::path::Path>,
        options: SaveOptions<'_>,
    ) -> Result<Saved, Error> {
        let mut job = self.0.shared.save(media_id, target.as_ref(), &options)?;
        loop {
            let (task, sink) = job.task();
            let result = self.drive(task, None, Sink::File(sink), &options.transfer);
            if let Some(saved) = job.finish(result)? {
                return Ok(saved);
            }
        }
    }

    /// Uploads every input with at most `jobs` at once over this client (one token, one
    /// connection pool); the results come in input order. Progress counts the payload bytes
    /// of all of them; a cancel stops those not finished. A deadline in `t` applies to each
    /// upload, from its own start.
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
                        let result = self.upload(kind, upload, t.with_progress(&progress));
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, result));
                    }
                });
            }
        });
        BatchProgress::in_order(results.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support Range).
    /// `md5` is the file's MD5 ([`md5_file`](crate::md5_file) computes it from a local copy).
    /// A JSON call takes no [`Transfer`]: what bounds it is the retry policy's attempts, each
    /// within the JSON timeout (plus the backoffs between them).
    pub fn upload_by_url(
        &self,
        kind: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
    ) -> Result<UploadJob, Error> {
        self.run_call(self.0.shared.upload_by_url(kind, filename, url, md5))
    }

    /// Asks how an async upload job stands. Bounded as [`Client::upload_by_url`] is: the
    /// retry policy's attempts, each within the JSON timeout.
    pub fn job_result(&self, jobid: &JobId) -> Result<JobStatus, Error> {
        self.run_call(self.0.shared.job_result(jobid))
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// client's poll policy, see [`ClientBuilder`](crate::ClientBuilder)) and wakes up early
    /// when a callback event for this job is fed to [`Client::job_events`]. Returns the
    /// final status, or `Processing` when the deadline came first. The decisions are the
    /// core's [`JobWaitTask`](wecom_material_core::JobWaitTask).
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        self.run_call(self.0.shared.wait_job(jobid, deadline))
    }

    /// Runs a task that moves no media.
    fn run_call<T: Task>(&self, task: Result<T, Error>) -> Result<T::Output, Error> {
        self.drive(&mut task?, None, Sink::None, &Transfer::default())
    }
}
