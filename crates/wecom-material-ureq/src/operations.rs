//! The client's operations: each builds the core's task for one user intent and drives it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::{DownloadTask, JobWaitTask, Lane, UploadInput, UploadPlan};
use wecom_material_core::task::{ParallelDownload, ParallelStep, ResumeRecord};
use wecom_material_core::{BatchProgress, CancelFlag, Progress};
use wecom_material_core::{DownloadOptions, Downloaded, Error, GetUploadByUrlResult, JobId};
use wecom_material_core::{JobStatus, Media, MediaId, MediaType, Operation};
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
    pub fn upload(&self, kind: MediaType, what: Upload, t: Transfer) -> Result<Uploaded, Error> {
        let limits = &self.0.settings.limits;
        self.run_upload(what, t, |input| {
            input.upload_media(kind, self.boundary(), limits)
        })
    }

    /// Uploads a JPG/PNG for a permanent URL.
    pub fn upload_image(&self, what: Upload, t: Transfer) -> Result<UploadedImage, Error> {
        let limits = &self.0.settings.limits;
        self.run_upload(what, t, |input| input.upload_image(self.boundary(), limits))
    }

    fn run_upload<O: Operation>(
        &self,
        what: Upload,
        t: Transfer,
        op: impl FnOnce(&UploadInput) -> Result<O, Error>,
    ) -> Result<O::Output, Error> {
        let (input, source) = prepare(what)?;
        let ends = Ends(source, None);
        self.drive(self.call(op(&input)?, Lane::Media), ends, &t)
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
    /// and resuming a partial file). Only media bytes are ever written, and `writer` is
    /// flushed before this returns, also on failure and cancel.
    pub fn download(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        options: DownloadOptions,
        t: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let id = media_id.clone();
        let task = DownloadTask::for_client(id, options, &self.0.settings, self.seed())?;
        self.drive(task, Ends(None, Some(writer)), &t)
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
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, n.max(1)) {
                scope.spawn(|| {
                    while let Some((i, upload)) =
                        waiting.lock().unwrap_or_else(|e| e.into_inner()).next()
                    {
                        let progress = |p: Progress| batch.report(i, p, &t);
                        let one = Transfer {
                            progress: Some(&progress),
                            ..t
                        };
                        let result = self.upload(kind, upload, one);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, result));
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, result)| result).collect()
    }

    /// Downloads a media into `file` with up to `options.connections` Range requests in
    /// flight, each written at its offset (see
    /// [`ParallelDownload`](wecom_material_core::task::ParallelDownload)). `record` is what a
    /// previous run left (its bytes are not fetched again); on return it holds what arrived,
    /// to keep next to the file when the download did not complete.
    pub fn download_file(
        &self,
        id: &MediaId,
        file: &File,
        options: DownloadOptions,
        record: &mut Option<ResumeRecord>,
        t: Transfer,
    ) -> Result<Downloaded, Error> {
        let (settings, seed) = (&self.0.settings, self.seed());
        let mut download =
            ParallelDownload::new(id.clone(), &options, settings, seed, record.take())?;
        let (stop, moved, (tx, rx)) = (CancelFlag::new(), AtomicU64::new(0), mpsc::channel());
        let resumed = download.resume_record().map_or(0, ResumeRecord::bytes_done);
        let ranges = Transfer::default().cancelled_by(&stop);
        let result = std::thread::scope(|scope| {
            loop {
                if t.is_cancelled() {
                    download.cancel();
                }
                match download.poll(Instant::now()) {
                    ParallelStep::Start(job) => {
                        let (tx, total) = (tx.clone(), download.resume_record().map(|r| r.total));
                        let mut sink = FileAt(file, job.start, &moved, (&t, resumed, total));
                        let mut run =
                            move |task| self.drive(task, Ends(None, Some(&mut sink)), &ranges);
                        scope.spawn(move || drop(tx.send((job.id, run(job.task)))));
                    }
                    ParallelStep::CancelRunning => stop.cancel(),
                    ParallelStep::Wait { until } => {
                        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
                        if let Ok((id, result)) = rx.recv_timeout(left.unwrap_or(POLL).min(POLL)) {
                            download.on_range_done(Instant::now(), id, result);
                        }
                    }
                    ParallelStep::Done(result) => break result,
                }
            }
        });
        *record = download.resume_record().cloned();
        result
    }

    /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support Range).
    /// `md5` is the file's MD5 ([`md5_file`] computes it from a local copy).
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
        let task = self.call(op, Lane::Json);
        self.drive(task, Ends::default(), &Transfer::default())
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// client's poll policy, see [`ClientBuilder`](crate::ClientBuilder)) and wakes up early
    /// when a callback event for this job is fed to [`Client::job_events`]. Returns the
    /// final status, or `Processing` when the deadline came first. The decisions are the
    /// core's [`JobWaitTask`](wecom_material_core::task::JobWaitTask).
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        let (id, seed) = (jobid.clone(), self.seed());
        let task = JobWaitTask::for_client(id, deadline, &self.0.settings, seed)?;
        self.drive(task, Ends::default(), &Transfer::default())
    }
}

/// How often a parallel download looks at the caller's cancel flag while ranges run.
const POLL: Duration = Duration::from_millis(100);

/// A writer at a moving offset (`.1`) of a file shared by the ranges of a parallel
/// download; counts the bytes moved by all of them (`.2`) to report the caller's progress
/// (`.3`: the transfer, the bytes of earlier runs, the media's size).
struct FileAt<'a>(
    &'a File,
    u64,
    &'a AtomicU64,
    (&'a Transfer<'a>, u64, Option<u64>),
);

impl Write for FileAt<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::write_at(self.0, buf, self.1)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_write(self.0, buf, self.1)?;
        self.1 += n as u64;
        let ((transfer, resumed, total), moved) = (self.3, self.2.fetch_add(n as u64, Relaxed));
        transfer.report(resumed + moved + n as u64, total);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The MD5 of a file as 32 lowercase hex digits, read in constant memory (for
/// [`Client::upload_by_url`]).
pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut hasher = Md5Hex::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hasher.finish())
}
