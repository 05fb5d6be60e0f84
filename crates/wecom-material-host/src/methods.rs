//! The public methods of a client, written once for the blocking and the async client.
//!
//! A client is a tuple struct around an `Arc` of a struct with a `shared: Shared<_>` field.
//! [`client_accessors!`](crate::client_accessors) writes the methods that only reach the
//! shared part; [`client_operations!`](crate::client_operations) writes the operations: each
//! builds its task with the shared part, opens its source or sink, and runs it with the
//! client's own `drive` — the one loop of its HTTP library. The async client's methods are
//! the same with `async` and `.await`, and `upload_all`'s batch run as futures instead of on
//! threads. What differs stays in the client: `drive`, its `Sink` and `md5_file`.

/// The methods every client has that only reach the shared part (a client is a tuple struct
/// around an `Arc` of a struct with a `shared: Shared<_>` field, with a `ClientBuilder`
/// alias in scope).
#[macro_export]
macro_rules! client_accessors {
    ($client:ty) => {
        impl $client {
            /// Starts configuring a client for one app (corp id and that app's secret).
            pub fn builder(corp_id: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
                ClientBuilder::new(corp_id, secret)
            }

            /// The base URL requests go to.
            pub fn base_url(&self) -> &$crate::__core::BaseUrl {
                &self.0.shared.settings.base
            }

            /// The handle that feeds received callback events to the calls waiting in
            /// `wait_job` on this client and its clones (safe to call from any thread).
            pub fn job_events(&self) -> $crate::JobEvents {
                self.0.shared.job_events()
            }

            /// The cached token, for a store shared between processes (the CLI's token
            /// file).
            pub fn export_token(&self) -> Option<$crate::__core::StoredToken> {
                self.0.shared.export_token()
            }

            /// Seeds the cache with a token from a shared store.
            pub fn import_token(&self, stored: $crate::__core::StoredToken) {
                self.0.shared.import_token(stored);
            }
        }

        impl std::fmt::Debug for $client {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($client))
                    .field("base", self.base_url())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// The operations of a client, each once for both clients:
/// `client_operations!(Client, [async], [.await], Upload, &mut dyn AsyncWrite…,
/// host::batch::concurrently)` for the async client,
/// `client_operations!(Client, [], [], Upload<'_>, &mut dyn Write, host::batch::on_threads)`
/// for the blocking one (the last parameter runs `upload_all`'s uploads, see [`batch`](crate::batch)).
///
/// Expects in scope at the call the client's `Sink` (with variants `None`, `File(FileSink)`
/// and `Stream(W)`, `W` made from the writer type by `Into`), and a method
/// `drive(&self, &mut task, Option<Source<R>>, Sink, &Transfer)` (`R` the upload type's
/// reader) that runs a task to its end.
#[macro_export]
macro_rules! client_operations {
    ($client:ty, [$($async:tt)?], [$($await:tt)*], $upload:ty, $writer:ty, $batch:path) => {
        impl $client {
            /// Uploads temporary media (valid 3 days) and returns its media id.
            pub $($async)? fn upload(
                &self,
                kind: $crate::__core::MediaType,
                what: $upload,
                t: $crate::__core::Transfer,
            ) -> Result<$crate::__core::Uploaded, $crate::__core::Error> {
                let (input, source) = $crate::open_upload(what)?;
                let mut task = self.0.shared.upload(kind, &input)?;
                self.drive(&mut task, source, Sink::None, &t) $($await)*
            }

            /// Uploads a JPG/PNG for a permanent URL.
            pub $($async)? fn upload_image(
                &self,
                what: $upload,
                t: $crate::__core::Transfer,
            ) -> Result<$crate::__core::UploadedImage, $crate::__core::Error> {
                let (input, source) = $crate::open_upload(what)?;
                let mut task = self.0.shared.upload_image(&input)?;
                self.drive(&mut task, source, Sink::None, &t) $($await)*
            }

            /// Fetches a whole media into memory: at most `options.max_len` bytes, by default
            /// the client's in-memory limit; a larger media fails with a decode error before
            /// its body is read (use [`Client::download`]).
            pub $($async)? fn get(
                &self,
                media_id: &$crate::__core::MediaId,
                options: $crate::__core::DownloadOptions,
            ) -> Result<$crate::__core::Media, $crate::__core::Error> {
                let mut bytes = Vec::new();
                let mut task = self.0.shared.get(media_id, options)?;
                let writer: $writer = &mut bytes;
                let sink = Sink::Stream(writer.into());
                let done = self.drive(&mut task, None, sink, &Default::default()) $($await)*?;
                Ok($crate::__core::Media { info: done.info, bytes: bytes.into() })
            }

            /// Downloads a media into `writer`: whole when small, else in Range chunks,
            /// resuming after a broken connection from the byte reached (see
            /// [`DownloadOptions`](crate::DownloadOptions) for HD voice and resuming a partial
            /// file; `connections` does not apply to a stream). Only media bytes are ever
            /// written, and `writer` is flushed before this returns, also on failure and
            /// cancel.
            pub $($async)? fn download(
                &self,
                media_id: &$crate::__core::MediaId,
                writer: $writer,
                options: $crate::__core::DownloadOptions,
                t: $crate::__core::Transfer,
            ) -> Result<$crate::__core::Downloaded, $crate::__core::Error> {
                let mut task = self.0.shared.download(media_id, options)?;
                self.drive(&mut task, None, Sink::Stream(writer.into()), &t) $($await)*
            }

            /// Downloads a media into `file` with up to `options.connections` Range requests
            /// in flight, each written at its offset with a positioned write (the core's
            /// [`DownloadTask`](wecom_material_core::DownloadTask) decides the ranges and how
            /// many run at once). `record` is what a previous run left (its bytes are not
            /// fetched again); on return it holds what arrived, to keep next to the file when
            /// the download did not complete.
            pub $($async)? fn download_file(
                &self,
                id: &$crate::__core::MediaId,
                file: &std::fs::File,
                options: $crate::__core::DownloadOptions,
                record: &mut Option<$crate::__core::ResumeRecord>,
                t: $crate::__core::Transfer,
            ) -> Result<$crate::__core::Downloaded, $crate::__core::Error> {
                let mut task = self.0.shared.download_file(id, options, record.take())?;
                let sink = Sink::File($crate::FileSink::new(file));
                let result = self.drive(&mut task, None, sink, &t) $($await)*;
                *record = task.resume_record();
                result
            }

            /// Saves a media to `target`: into a directory (created when missing, or named
            /// with a trailing `/`) under the media's own sanitized filename, or at a file
            /// path. The way to save media: resumable (a later save of the same media
            /// continues what an interrupted one left, fetching only the missing bytes), with
            /// `options.connections` ranges at once, never over an existing file unless told
            /// ([`Overwrite`](crate::Overwrite)), the file moved into place only when complete
            /// and synced. See [`wecom_material_host::save`] for the files and rules;
            /// [`Client::download`] to a writer stays for streams. The file-system calls
            /// (open, lock, the record, the final sync and move) are short and run in place.
            pub $($async)? fn save(
                &self,
                media_id: &$crate::__core::MediaId,
                target: impl AsRef<std::path::Path>,
                options: $crate::SaveOptions<'_>,
            ) -> Result<$crate::Saved, $crate::__core::Error> {
                let mut job = self.0.shared.save(media_id, target.as_ref(), &options)?;
                loop {
                    let (task, sink) = job.task();
                    let result = self.drive(task, None, Sink::File(sink), &options.transfer)
                        $($await)*;
                    if let Some(saved) = job.finish(result)? {
                        return Ok(saved);
                    }
                }
            }

            /// Uploads every input with at most `jobs` at once over this client (one token,
            /// one connection pool); the results come in input order. Progress counts the
            /// payload bytes of all of them; a cancel stops those not finished. A deadline in
            /// `t` applies to each upload, from its own start.
            pub $($async)? fn upload_all(
                &self,
                kind: $crate::__core::MediaType,
                uploads: Vec<$upload>,
                jobs: usize,
                t: $crate::__core::Transfer,
            ) -> Vec<Result<$crate::__core::Uploaded, $crate::__core::Error>> {
                let batch = $crate::__core::transfer::BatchProgress::new(uploads.len(), t);
                let upload = |i, upload| self.upload(kind, upload, batch.item(i));
                $crate::__core::transfer::BatchProgress::in_order($batch(uploads, jobs, upload) $($await)*)
            }

            /// Asks WeCom to fetch a big file (≤ 200 MB) from `url` (which must support
            /// Range). `md5` is the file's MD5 ([`md5_file`](crate::md5_file) computes it
            /// from a local copy). A JSON call takes no `Transfer`: what bounds it is the
            /// retry policy's attempts, each within the JSON timeout (plus the backoffs
            /// between them).
            pub $($async)? fn upload_by_url(
                &self,
                kind: $crate::__core::MediaType,
                filename: &str,
                url: &str,
                md5: &str,
            ) -> Result<$crate::__core::UploadJob, $crate::__core::Error> {
                let mut task = self.0.shared.upload_by_url(kind, filename, url, md5)?;
                self.drive(&mut task, None, Sink::None, &Default::default()) $($await)*
            }

            /// Asks how an async upload job stands. Bounded as [`Client::upload_by_url`] is:
            /// the retry policy's attempts, each within the JSON timeout.
            pub $($async)? fn job_result(
                &self,
                jobid: &$crate::__core::JobId,
            ) -> Result<$crate::__core::JobStatus, $crate::__core::Error> {
                let mut task = self.0.shared.job_result(jobid)?;
                self.drive(&mut task, None, Sink::None, &Default::default()) $($await)*
            }

            /// Waits for an async upload job until `deadline`: polls it (at once, then with
            /// the client's poll policy, see [`ClientBuilder`](crate::ClientBuilder)) and
            /// wakes up early when a callback event for this job is fed to
            /// [`Client::job_events`]. Returns the final status, or `Processing` when the
            /// deadline came first. The decisions are the core's
            /// [`JobWaitTask`](wecom_material_core::JobWaitTask).
            pub $($async)? fn wait_job(
                &self,
                jobid: &$crate::__core::JobId,
                deadline: std::time::Instant,
            ) -> Result<$crate::__core::JobStatus, $crate::__core::Error> {
                let mut task = self.0.shared.wait_job(jobid, deadline)?;
                self.drive(&mut task, None, Sink::None, &Default::default()) $($await)*
            }

            /// Uploads the file at `path` (up to 200 MB) as `kind` (`video` or `file`)
            /// through the object storage `relay`: PUT to the bucket (streamed, its MD5
            /// computed in the same read), `upload_by_url` with a presigned GET URL, wait for
            /// the job, DELETE the object (also after a failure or a cancel through `t`)
            /// unless `options` keep it. `filename` is the name users see (by default the
            /// file's own). Progress counts the bytes of the PUT. An async call's future
            /// dropped before it ends cannot clean up: cancel through `t` instead.
            #[cfg(feature = "s3-relay")]
            pub $($async)? fn upload_via_bucket(
                &self,
                kind: $crate::__core::MediaType,
                path: &std::path::Path,
                filename: Option<&str>,
                relay: &$crate::__core::relay::BucketRelay,
                options: $crate::__core::relay::RelayOptions,
                t: $crate::__core::Transfer,
            ) -> Result<$crate::__core::relay::RelayedUpload, $crate::__core::Error> {
                let (input, file) = $crate::open_file(path, filename)?;
                let mut task = self.0.shared.relay(kind, &input, relay, options)?;
                let source = Some($crate::Source::File(file));
                self.drive(&mut task, source, Sink::None, &t) $($await)*
            }
        }
    };
}
