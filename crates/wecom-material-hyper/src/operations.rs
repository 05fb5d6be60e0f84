//! The client's operations: each builds the core's task for one user intent and drives it.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use wecom_material_core::CancelFlag;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::task::{DownloadTask, JobWaitTask, Lane, UploadInput, UploadPlan};
use wecom_material_core::task::{ParallelDownload, ParallelStep, ResumeRecord};
use wecom_material_core::{DownloadOptions, Downloaded, Error, JobId, JobStatus, Media, MediaId};
use wecom_material_core::{GetUploadByUrlResult, MediaType, Operation, Transfer};
use wecom_material_core::{UploadByUrl, UploadJob, Uploaded, UploadedImage};

use crate::client::Client;
use crate::run::{Ends, Source};

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn AsyncRead + Send + Unpin + 'a>>;

/// Gets an upload's bytes ready: opens a file (and reads its first bytes for the format
/// checks); the core decides the rest.
async fn prepare(upload: Upload<'_>) -> Result<(UploadInput, Option<Source<'_>>), Error> {
    let (path, name) = match upload.plan()? {
        UploadPlan::OpenFile { path, filename } => (path, filename),
        UploadPlan::Stream { input, reader } => {
            return Ok((input, Some(Source::Reader(Some(reader)))));
        }
        UploadPlan::Ready(input) => return Ok((input, None)),
    };
    let fail = |e| Error::io(format!("opening {}", path.display()), e);
    let mut file = File::open(&path).await.map_err(fail)?;
    let len = file.metadata().await.map_err(fail)?.len();
    let mut prefix = Vec::with_capacity(UploadInput::SNIFF_LEN);
    let mut sniff = (&mut file).take(UploadInput::SNIFF_LEN as u64);
    sniff.read_to_end(&mut prefix).await.map_err(fail)?;
    let input = UploadInput::file(&path, name.as_deref(), len, prefix)?;
    Ok((input, Some(Source::File(file))))
}

impl Client {
    /// Uploads temporary media (valid 3 days) and returns its media id.
    pub async fn upload(
        &self,
        kind: MediaType,
        what: Upload<'_>,
        t: Transfer<'_>,
    ) -> Result<Uploaded, Error> {
        let (input, source) = prepare(what).await?;
        let op = input.upload_media(kind, self.boundary(), &self.0.settings.limits)?;
        let ends = Ends(source.map(|source| (source, input.meter())), None);
        self.drive(self.call(op, Lane::Media), ends, &t).await
    }

    /// Uploads a JPG/PNG for a permanent URL.
    pub async fn upload_image(
        &self,
        what: Upload<'_>,
        t: Transfer<'_>,
    ) -> Result<UploadedImage, Error> {
        let (input, source) = prepare(what).await?;
        let op = input.upload_image(self.boundary(), &self.0.settings.limits)?;
        let ends = Ends(source.map(|source| (source, input.meter())), None);
        self.drive(self.call(op, Lane::Media), ends, &t).await
    }

    /// Fetches a whole media into memory: at most `options.max_len` bytes, by default the
    /// client's in-memory limit; a larger media fails with a decode error before its body
    /// is read (use [`Client::download`]).
    pub async fn get(&self, media_id: &MediaId, options: DownloadOptions) -> Result<Media, Error> {
        let max_len = options.max_len.unwrap_or(self.0.settings.max_in_memory);
        let (mut bytes, options) = (Vec::new(), options.max_len(max_len));
        let done = self.download(media_id, &mut bytes, options, Transfer::default());
        let info = done.await?.info;
        let bytes = Bytes::from(bytes);
        Ok(Media { info, bytes })
    }

    /// Downloads a media into `writer`: whole when small, else in Range chunks, resuming
    /// after a broken connection from the byte reached (see [`DownloadOptions`] for HD voice
    /// and resuming a partial file). Only media bytes are ever written, and `writer` is
    /// flushed before this returns, also on failure and cancel.
    pub async fn download(
        &self,
        media_id: &MediaId,
        writer: &mut (dyn AsyncWrite + Send + Unpin),
        options: DownloadOptions,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let (id, seed) = (media_id.clone(), self.seed());
        let task = DownloadTask::for_client(id, options, &self.0.settings, seed)?;
        self.drive(task, Ends(None, Some(writer)), &transfer).await
    }

    /// Downloads a media into `file` with up to `options.connections` Range requests in
    /// flight, each written at its offset (see
    /// [`ParallelDownload`](wecom_material_core::task::ParallelDownload)). `record` is what a
    /// previous run left (its bytes are not fetched again); on return it holds what arrived,
    /// to keep next to the file when the download did not complete. The writes are positioned
    /// writes of the standard library (to the page cache; they do not wait on the network).
    pub async fn download_file(
        &self,
        id: &MediaId,
        file: &std::fs::File,
        options: DownloadOptions,
        record: &mut Option<ResumeRecord>,
        t: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let (settings, seed) = (&self.0.settings, self.seed());
        let mut download =
            ParallelDownload::new(id.clone(), &options, settings, seed, record.take())?;
        let (stop, moved) = (CancelFlag::new(), AtomicU64::new(0));
        let mut running = FuturesUnordered::new();
        let resumed = download.resume_record().map_or(0, ResumeRecord::bytes_done);
        let result = loop {
            if t.is_cancelled() {
                download.cancel();
            }
            match download.poll(Instant::now()) {
                ParallelStep::Start(job) => {
                    let (stop, moved) = (&stop, &moved);
                    running.push(async move {
                        let mut sink = FileAt(file, job.start, moved);
                        let ranges = Transfer::default().cancelled_by(stop);
                        (
                            job.id,
                            self.drive(job.task, Ends(None, Some(&mut sink)), &ranges)
                                .await,
                        )
                    });
                }
                ParallelStep::CancelRunning => stop.cancel(),
                ParallelStep::Wait { until } => {
                    let left = until.map(|u| u.saturating_duration_since(Instant::now()));
                    let tick = left.unwrap_or(POLL).min(POLL);
                    if let Ok(Some((id, result))) = tokio::time::timeout(tick, running.next()).await
                    {
                        download.on_range_done(Instant::now(), id, result);
                    } else if running.is_empty() {
                        tokio::time::sleep(tick).await;
                    }
                    let total = download.resume_record().map(|r| r.total);
                    t.report(resumed + moved.load(Relaxed), total);
                }
                ParallelStep::Done(result) => break result,
            }
        };
        *record = download.resume_record().cloned();
        result
    }

    /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support Range).
    /// `md5` is the file's MD5 ([`md5_file`] computes it from a local copy).
    pub async fn upload_by_url(
        &self,
        media_type: MediaType,
        filename: &str,
        url: &str,
        md5: &str,
    ) -> Result<UploadJob, Error> {
        let settings = &self.0.settings;
        let job = UploadByUrl::for_client(media_type, filename, url, md5, settings)?;
        self.json(job).await
    }

    /// Asks how an async upload job stands.
    pub async fn job_result(&self, jobid: &JobId) -> Result<JobStatus, Error> {
        self.json(GetUploadByUrlResult::new(jobid.clone())?).await
    }

    async fn json<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        let task = self.call(op, Lane::Json);
        self.drive(task, Ends::default(), &Transfer::default())
            .await
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// client's poll policy, see [`ClientBuilder`](crate::ClientBuilder)) and wakes up early
    /// when a callback event for this job is fed to [`Client::job_events`]. Returns the final
    /// status, or `Processing` when the deadline came first. The decisions are the core's
    /// [`JobWaitTask`](wecom_material_core::task::JobWaitTask).
    pub async fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        let settings = &self.0.settings;
        let task = JobWaitTask::for_client(jobid.clone(), deadline, settings, self.seed())?;
        self.drive(task, Ends::default(), &Transfer::default())
            .await
    }
}

/// How often a parallel download reports progress and looks at the caller's cancel flag.
const POLL: Duration = Duration::from_millis(100);

/// A writer at a moving offset (`.1`) of a file shared by the ranges of a parallel
/// download; counts the bytes moved by all of them (`.2`).
struct FileAt<'a>(&'a std::fs::File, u64, &'a AtomicU64);

impl AsyncWrite for FileAt<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        #[cfg(unix)]
        let written = std::os::unix::fs::FileExt::write_at(this.0, buf, this.1);
        #[cfg(windows)]
        let written = std::os::windows::fs::FileExt::seek_write(this.0, buf, this.1);
        if let Ok(n) = written {
            this.1 += n as u64;
            this.2.fetch_add(n as u64, Relaxed);
        }
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The MD5 of a file as 32 lowercase hex digits, read in constant memory (for
/// [`Client::upload_by_url`]).
pub async fn md5_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path).await?;
    let (mut hasher, mut buf) = (Md5Hex::new(), vec![0u8; 256 * 1024]);
    loop {
        match file.read(&mut buf).await? {
            0 => return Ok(hasher.finish()),
            n => hasher.update(&buf[..n]),
        }
    }
}
