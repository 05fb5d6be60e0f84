//! The client's operations: each builds the core's operation value and runs it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use wecom_material_core::download::plan::Download;
use wecom_material_core::md5sum::Md5Hex;
use wecom_material_core::ops::get_media::MediaHead;
use wecom_material_core::{Downloaded, Transfer};
use wecom_material_core::{
    Error, GetMedia, GetUploadByUrlResult, JobId, JobStatus, JobWait, JobWaitStep, Media,
    MediaEndpoint, MediaId, MediaType, Payload, PollPolicy, Replay, UploadByUrl, UploadImage,
    UploadJob, UploadMedia, Uploaded, UploadedImage,
};

use crate::client::{Client, Handled, Lane};
use crate::send::{SendFailure, read_bounded};
use crate::source::PayloadSource;

/// How big a prefix of a file to read for the signature checks.
const SNIFF_LEN: usize = 16;

fn read_prefix(file: &mut File) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(SNIFF_LEN);
    Read::by_ref(file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// The file's own name, for uploads given no display name.
fn file_name_of(path: &Path) -> Result<String, Error> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or(Error::Invalid(
            wecom_material_core::Invalid::MissingFilename,
        ))
}

/// A file opened for upload: its display name, length, first bytes (for the signature
/// checks) and a replayable payload description.
struct FileUpload {
    file: File,
    name: String,
    prefix: Vec<u8>,
    payload: Payload,
}

impl FileUpload {
    fn open(path: &Path, filename: Option<&str>) -> Result<Self, Error> {
        let name = match filename {
            Some(n) => n.to_owned(),
            None => file_name_of(path)?,
        };
        let context = || format!("opening {}", path.display());
        let mut file = File::open(path).map_err(|e| Error::io(context(), e))?;
        let len = file.metadata().map_err(|e| Error::io(context(), e))?.len();
        let prefix = read_prefix(&mut file).map_err(|e| Error::io(context(), e))?;
        let payload = Payload::External {
            len,
            replay: Replay::Replayable,
        };
        Ok(Self {
            file,
            name,
            prefix,
            payload,
        })
    }
}

impl Client {
    /// Uploads temporary media held in memory (no copy of `bytes` is made).
    pub fn upload_bytes(
        &self,
        media_type: MediaType,
        filename: &str,
        bytes: Bytes,
    ) -> Result<Uploaded, Error> {
        let op = UploadMedia::from_bytes(
            media_type,
            filename,
            bytes,
            self.boundary(),
            &self.inner.limits,
        )?;
        self.run_json(op, None, &Transfer::default(), Lane::Media)
    }

    /// Uploads a file, streamed from disk in constant memory. `filename` is the name users
    /// see (default: the file's own name). The file is re-read if WeCom asks for a retry.
    pub fn upload_path(
        &self,
        media_type: MediaType,
        path: &Path,
        filename: Option<&str>,
        transfer: Transfer<'_>,
    ) -> Result<Uploaded, Error> {
        let file = FileUpload::open(path, filename)?;
        let mut source = PayloadSource::File(file.file);
        let op = UploadMedia::new(
            media_type,
            &file.name,
            file.payload,
            Some(&file.prefix),
            self.boundary(),
            &self.inner.limits,
        )?;
        self.run_json(op, Some(&mut source), &transfer, Lane::Media)
    }

    /// Uploads exactly `len` bytes from a reader. A reader cannot be rewound: if the upload
    /// fails in a way that calls for resending, the call ends with [`Error::NotReplayable`].
    /// Signatures (AMR, JPEG/PNG) are not checked: the bytes are not at hand before sending.
    pub fn upload_reader(
        &self,
        media_type: MediaType,
        filename: &str,
        reader: impl Read + Send,
        len: u64,
        transfer: Transfer<'_>,
    ) -> Result<Uploaded, Error> {
        let mut source = PayloadSource::Reader(Some(Box::new(reader)));
        let payload = Payload::External {
            len,
            replay: source.replay(),
        };
        let op = UploadMedia::new(
            media_type,
            filename,
            payload,
            None,
            self.boundary(),
            &self.inner.limits,
        )?;
        self.run_json(op, Some(&mut source), &transfer, Lane::Media)
    }

    /// Uploads a JPG/PNG held in memory for a permanent URL.
    pub fn upload_image_bytes(&self, filename: &str, bytes: Bytes) -> Result<UploadedImage, Error> {
        let op = UploadImage::new(
            filename,
            Payload::Bytes(bytes),
            None,
            self.boundary(),
            &self.inner.limits,
        )?;
        self.run_json(op, None, &Transfer::default(), Lane::Media)
    }

    /// Uploads a JPG/PNG file for a permanent URL.
    pub fn upload_image_path(
        &self,
        path: &Path,
        filename: Option<&str>,
    ) -> Result<UploadedImage, Error> {
        let file = FileUpload::open(path, filename)?;
        let mut source = PayloadSource::File(file.file);
        let op = UploadImage::new(
            &file.name,
            file.payload,
            Some(&file.prefix),
            self.boundary(),
            &self.inner.limits,
        )?;
        self.run_json(op, Some(&mut source), &Transfer::default(), Lane::Media)
    }

    /// Fetches a whole media into memory (at most the configured in-memory limit; larger
    /// media fail with a decode error: use [`Client::download`]).
    pub fn get(&self, media_id: &MediaId) -> Result<Media, Error> {
        self.get_in_memory(MediaEndpoint::Media, media_id)
    }

    /// Fetches HD voice (speex 16 kHz) of a JS-SDK voice into memory.
    pub fn get_hd_voice(&self, media_id: &MediaId) -> Result<Media, Error> {
        self.get_in_memory(MediaEndpoint::HdVoice, media_id)
    }

    fn get_in_memory(&self, endpoint: MediaEndpoint, media_id: &MediaId) -> Result<Media, Error> {
        let mut buffer = Vec::new();
        let done = self.download_from(
            endpoint,
            media_id,
            &mut LimitedWriter {
                inner: &mut buffer,
                limit: self.inner.max_in_memory,
            },
            0,
            Transfer::default(),
        )?;
        Ok(Media {
            info: done.info,
            bytes: Bytes::from(buffer),
        })
    }

    /// Downloads a media into `writer`: whole when small, else in Range chunks of at most the
    /// chunk size, resuming after a broken connection from the byte reached. Only media bytes
    /// are ever written: an error answer (even on HTTP 200) is never written.
    pub fn download(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        self.download_from(MediaEndpoint::Media, media_id, writer, 0, transfer)
    }

    /// Continues a download whose first `offset` bytes the caller already has (a partial
    /// file); writes the rest into `writer`.
    pub fn download_resume(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        offset: u64,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        self.download_from(MediaEndpoint::Media, media_id, writer, offset, transfer)
    }

    /// [`Client::download`] for HD voice.
    pub fn download_hd_voice(
        &self,
        media_id: &MediaId,
        writer: &mut dyn Write,
        offset: u64,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        self.download_from(MediaEndpoint::HdVoice, media_id, writer, offset, transfer)
    }

    fn download_from(
        &self,
        endpoint: MediaEndpoint,
        media_id: &MediaId,
        writer: &mut dyn Write,
        offset: u64,
        transfer: Transfer<'_>,
    ) -> Result<Downloaded, Error> {
        let watch = transfer;
        let mut plan =
            Download::new(endpoint, media_id.clone(), self.inner.chunk_size)?.resume_from(offset);
        let mut written = 0u64;
        while let Some(request) = plan.next_request() {
            if watch.is_cancelled() {
                return Err(Error::Cancelled { bytes_written: 0 });
            }
            let outcome = self.run(
                request,
                None,
                &watch,
                Lane::Media,
                |op, response| stream_chunk(op, response, &mut plan, writer, &mut written, &watch),
                |_media| ChunkOutcome::Unexpected,
            );
            match outcome {
                Ok(ChunkOutcome::Complete) => {}
                Ok(ChunkOutcome::Interrupted(cause)) => plan.on_interrupted(cause)?,
                Ok(ChunkOutcome::Unexpected) => {
                    return Err(wecom_material_core::DecodeError::new(
                        200,
                        "media answer was not streamed",
                        b"",
                    )
                    .into());
                }
                Err(error) if plan.on_api_error(&error) => {}
                Err(error) => return Err(error),
            }
        }
        let info = plan.info().cloned().ok_or_else(|| {
            Error::from(wecom_material_core::DecodeError::new(
                0,
                "nothing to download",
                b"",
            ))
        })?;
        Ok(Downloaded {
            info,
            bytes_written: written,
            total: plan.total().unwrap_or(plan.offset()),
        })
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
        let allow_http = !self.inner.base.is_https();
        let op = UploadByUrl::new(
            media_type,
            filename,
            url,
            md5,
            &self.inner.limits,
            allow_http,
        )?;
        self.run_json(op, None, &Transfer::default(), Lane::Json)
    }

    /// Asks how an async upload job stands.
    pub fn job_result(&self, jobid: &JobId) -> Result<JobStatus, Error> {
        let op = GetUploadByUrlResult::new(jobid.clone())?;
        self.run_json(op, None, &Transfer::default(), Lane::Json)
    }

    /// Waits for an async upload job until `deadline`: polls it (at once, then with the
    /// backoff of [`ClientBuilder::job_poll_policy`](crate::ClientBuilder::job_poll_policy))
    /// and, between polls, wakes up early when a callback event for this job is fed to
    /// [`Client::job_events`]; that event's poll fetches the result.
    ///
    /// Returns the final status (`Finished` or `Failed`), or `Processing` when the deadline
    /// came first (after a last poll at the deadline). The decisions — schedule, which events
    /// matter, which failed polls are tolerated — are the core's
    /// [`JobWait`](wecom_material_core::JobWait).
    pub fn wait_job(&self, jobid: &JobId, deadline: Instant) -> Result<JobStatus, Error> {
        self.wait_job_with(jobid, deadline, self.inner.poll_policy)
    }

    /// [`Client::wait_job`] with an explicit poll policy.
    pub fn wait_job_with(
        &self,
        jobid: &JobId,
        deadline: Instant,
        policy: PollPolicy,
    ) -> Result<JobStatus, Error> {
        let mut wait = JobWait::new(jobid.clone(), deadline, policy)?;
        // Subscribed before the first poll: an event that arrives later is not missed, and a
        // job that ended earlier is seen by that poll.
        let mailbox = self.inner.job_events.subscribe();
        loop {
            for event in mailbox.take() {
                wait.on_event(&event);
            }
            match wait.next(Instant::now()) {
                JobWaitStep::Poll(op) => {
                    let result = self.run_json(op, None, &Transfer::default(), Lane::Json);
                    wait.on_poll_result(Instant::now(), result);
                }
                JobWaitStep::SleepUntil(until) => mailbox.wait_until(until),
                JobWaitStep::Done(result) => return result,
            }
        }
    }
}

/// How one download request ended.
pub(crate) enum ChunkOutcome {
    /// Every byte of the response arrived.
    Complete,
    /// The body broke: resume from the byte reached.
    Interrupted(Error),
    /// The driver produced a media value (cannot happen: media heads are streamed).
    Unexpected,
}

/// Classifies a download head; streams media into the writer, hands error answers back to the
/// driver.
fn stream_chunk(
    op: &GetMedia,
    response: http::Response<ureq::Body>,
    plan: &mut Download,
    writer: &mut dyn Write,
    written: &mut u64,
    watch: &Transfer<'_>,
) -> Result<Handled<ChunkOutcome>, SendFailure> {
    let (parts, body) = response.into_parts();
    let info = match op.classify(&parts).map_err(SendFailure::Local)? {
        MediaHead::Error => {
            let response = http::Response::from_parts(parts, body);
            let buffered = read_bounded(response, wecom_material_core::MAX_JSON_RESPONSE)?;
            // The driver parses the error and decides (refresh the token, retry, or fail).
            return Ok(Handled::Buffered(buffered));
        }
        MediaHead::Media(info) => info,
    };
    let expected = plan.on_media(&info).map_err(SendFailure::Local)?;
    let mut reader = body.into_reader();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = expected;
    while left > 0 {
        if watch.is_cancelled() {
            return Err(SendFailure::Local(Error::Cancelled { bytes_written: 0 }));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => {
                let cause = wecom_material_core::TransportError::maybe_sent(format!(
                    "body ended {left} bytes early"
                ));
                return Ok(Handled::Done(ChunkOutcome::Interrupted(Error::Transport(
                    cause,
                ))));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let cause = wecom_material_core::TransportError::maybe_sent(e.to_string());
                return Ok(Handled::Done(ChunkOutcome::Interrupted(Error::Transport(
                    cause,
                ))));
            }
        };
        writer
            .write_all(&buf[..n])
            .map_err(|e| SendFailure::Local(Error::io("writing the download", e)))?;
        plan.on_bytes(n as u64).map_err(SendFailure::Local)?;
        *written += n as u64;
        left -= n as u64;
        watch.report(plan.offset(), plan.total());
    }
    plan.on_body_end().map_err(SendFailure::Local)?;
    Ok(Handled::Done(ChunkOutcome::Complete))
}

/// A writer into memory that refuses to grow past a limit.
struct LimitedWriter<'a> {
    inner: &'a mut Vec<u8>,
    limit: u64,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.inner.len() as u64 + buf.len() as u64 > self.limit {
            return Err(io::Error::other(format!(
                "media larger than the in-memory limit of {} bytes",
                self.limit
            )));
        }
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
