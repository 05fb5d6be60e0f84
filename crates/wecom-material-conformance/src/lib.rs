#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod scenarios;
mod store;
mod subject;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::{ClientSettings, Error, Task, Transfer};

pub use store::MemoryStore;
pub use subject::Subject;

/// Where an upload's payload comes from, as the kit hands it to [`BlockingTransport::run`]
/// and [`AsyncTransport::run`]; the transport turns it into its own source type.
#[derive(Debug)]
pub enum Source {
    /// A file: rewind it for every attempt.
    File(std::fs::File),
    /// A reader that can be read once (these bytes): a second attempt cannot resend it.
    Once(Bytes),
}

/// Where a download's bytes go.
#[derive(Debug)]
pub enum Sink<'a> {
    /// Nowhere: a JSON call or an upload.
    None,
    /// A stream (bytes in order, from lane 0 only) that records what reached it.
    Memory(&'a mut Recorder),
    /// A file, written at the offsets the task gives (any lane).
    File(&'a std::fs::File),
}

/// The upload source and the download sink of one task.
#[derive(Debug)]
pub struct Io<'a> {
    /// The upload's external payload, if any.
    pub source: Option<Source>,
    /// Where a download's bytes go.
    pub sink: Sink<'a>,
}

impl Io<'_> {
    /// No source, no sink: a JSON call or an upload from memory.
    pub fn none() -> Io<'static> {
        Io {
            source: None,
            sink: Sink::None,
        }
    }
}

/// An in-memory stream sink that records the bytes written and the flushes (blocking:
/// [`std::io::Write`] and [`std::io::Seek`] to where it is; async: [`tokio::io::AsyncWrite`]).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every byte written, in order.
    pub bytes: Vec<u8>,
    /// How many times the sink was flushed.
    pub flushes: usize,
}

impl io::Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// A stream only "seeks" to where it is: a transport that positions every write (as for a
/// file) works with it, and a write out of order is an error.
impl io::Seek for Recorder {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let here = self.bytes.len() as u64;
        match to {
            io::SeekFrom::Start(at) if at == here => Ok(here),
            io::SeekFrom::Current(0) => Ok(here),
            _ => Err(io::Error::other(format!(
                "a stream at byte {here} cannot seek"
            ))),
        }
    }
}

impl tokio::io::AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(io::Write::write(self.get_mut(), buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(io::Write::flush(self.get_mut()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What every client under test does besides driving tasks: it hands a received
/// job-finished callback event to its job waits and wakes them
/// ([`ClientState::deliver_event`](wecom_material_core::ClientState::deliver_event), then a
/// wake-up of the client's waiting tasks when it returns `true`).
pub trait JobEventsDelivery: Send + Sync + 'static {
    /// Delivers `event` to this client's job waits.
    fn job_finished(&self, event: &CallbackEvent);
}

/// A blocking transport under test: one client (made by the factory given to
/// [`run_blocking`] for some [`ClientSettings`]) that drives any core [`Task`] to its end.
pub trait BlockingTransport: JobEventsDelivery {
    /// Runs `task` to its end (the loop of the core's `task` module), reading an upload's
    /// payload from `io.source` and writing a download into `io.sink`; reports progress to
    /// `transfer` and stops when its cancel flag is set.
    fn run<T: Task>(
        &self,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> Result<T::Output, Error>;
}

/// An async transport under test (see [`BlockingTransport`]); its futures run on the
/// caller's runtime (tokio, multi-threaded).
pub trait AsyncTransport: JobEventsDelivery {
    /// Runs `task` to its end (see [`BlockingTransport::run`]).
    fn run<T: Task + Send>(
        &self,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> impl Future<Output = Result<T::Output, Error>>;
}

/// How the scenarios reach a transport, blocking or async: made by [`Blocking`] and
/// [`Async`] from a factory. A scenario is written once against it.
pub trait Driver {
    /// The transport's client.
    type Client: JobEventsDelivery;

    /// A new client with `settings`, sharing its token through `store` when given (the
    /// settings then name a [`SharedTokenPolicy`](wecom_material_core::SharedTokenPolicy)).
    fn client(&self, settings: ClientSettings, store: Option<Arc<MemoryStore>>) -> Self::Client;

    /// Runs `task` on `client` to its end.
    fn run<T: Task + Send>(
        &self,
        client: &Self::Client,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> impl Future<Output = Result<T::Output, Error>>;

    /// Runs every task at once on `client` (threads for a blocking transport, futures side
    /// by side for an async one); the results in order.
    fn run_all<T: Task + Send>(
        &self,
        client: &Self::Client,
        tasks: Vec<T>,
    ) -> impl Future<Output = Vec<Result<T::Output, Error>>>
    where
        T::Output: Send;
}

/// A blocking transport's factory as a [`Driver`].
#[derive(Debug)]
pub struct Blocking<F>(pub F);

/// An async transport's factory as a [`Driver`].
#[derive(Debug)]
pub struct Async<F>(pub F);

impl<F, C> Driver for Blocking<F>
where
    F: Fn(ClientSettings, Option<Arc<MemoryStore>>) -> C,
    C: BlockingTransport,
{
    type Client = C;

    fn client(&self, settings: ClientSettings, store: Option<Arc<MemoryStore>>) -> C {
        (self.0)(settings, store)
    }

    async fn run<T: Task + Send>(
        &self,
        client: &C,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> Result<T::Output, Error> {
        client.run(task, io, transfer)
    }

    async fn run_all<T: Task + Send>(
        &self,
        client: &C,
        tasks: Vec<T>,
    ) -> Vec<Result<T::Output, Error>>
    where
        T::Output: Send,
    {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (tasks.into_iter())
                .map(|mut task| {
                    scope.spawn(move || client.run(&mut task, Io::none(), &Transfer::default()))
                })
                .collect();
            let joined = threads.into_iter().map(|thread| thread.join());
            joined
                .map(|result| result.unwrap_or_else(|_| panic!("a call panicked")))
                .collect()
        })
    }
}

impl<F, C> Driver for Async<F>
where
    F: Fn(ClientSettings, Option<Arc<MemoryStore>>) -> C,
    C: AsyncTransport,
{
    type Client = C;

    fn client(&self, settings: ClientSettings, store: Option<Arc<MemoryStore>>) -> C {
        (self.0)(settings, store)
    }

    fn run<T: Task + Send>(
        &self,
        client: &C,
        task: &mut T,
        io: Io<'_>,
        transfer: &Transfer,
    ) -> impl Future<Output = Result<T::Output, Error>> {
        client.run(task, io, transfer)
    }

    async fn run_all<T: Task + Send>(
        &self,
        client: &C,
        tasks: Vec<T>,
    ) -> Vec<Result<T::Output, Error>>
    where
        T::Output: Send,
    {
        let mut tasks = tasks;
        let none = Transfer::default();
        let running = tasks
            .iter_mut()
            .map(|task| client.run(task, Io::none(), &none));
        join_all(
            running
                .map(|f| Box::pin(f) as Pin<Box<dyn Future<Output = _>>>)
                .collect(),
        )
        .await
    }
}

/// Polls every future on the caller's task until all are done; their outputs in order.
async fn join_all<O>(mut futures: Vec<Pin<Box<dyn Future<Output = O> + '_>>>) -> Vec<O> {
    let mut outputs: Vec<Option<O>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(o) = future.as_mut().poll(cx)
            {
                *output = Some(o);
            }
        }
        match outputs.iter().all(Option::is_some) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Runs every scenario against a blocking transport made by `factory`; panics, naming the
/// scenario, at the first behaviour that differs. Prints each scenario's name and time.
pub fn run_blocking<F, C>(factory: F)
where
    F: Fn(ClientSettings, Option<Arc<MemoryStore>>) -> C,
    C: BlockingTransport,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let runtime = runtime.unwrap_or_else(|e| panic!("a runtime for the kit: {e}"));
    runtime.block_on(run_all(&Blocking(factory)));
}

/// Runs every scenario against an async transport made by `factory` (see [`run_blocking`]).
/// Call it from a multi-threaded tokio runtime with its timer enabled (`#[tokio::test]`).
pub async fn run_async<F, C>(factory: F)
where
    F: Fn(ClientSettings, Option<Arc<MemoryStore>>) -> C,
    C: AsyncTransport,
{
    run_all(&Async(factory)).await;
}

/// The longest a scenario may take (each takes a few seconds at most on a loopback).
pub const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Every scenario of [`scenarios`], in order. Their temporary files (under the system's
/// temporary directory, named after the process) are removed at the end, also after a
/// failure: run one kit at a time per process.
pub async fn run_all<D: Driver>(driver: &D) {
    let _cleanup = scenarios::TempCleanup;
    macro_rules! each {
        ($($scenario:ident),* $(,)?) => {$(
            let started = Instant::now();
            eprintln!("conformance: {} …", stringify!($scenario));
            // An async transport that ignores a wake-up fails here instead of waiting for
            // its hour-long poll (a blocking one cannot be interrupted: it hangs).
            let scenario = scenarios::$scenario(driver);
            let ended = tokio::time::timeout(SCENARIO_LIMIT, scenario).await.is_ok();
            let name = stringify!($scenario);
            assert!(ended, "{name} did not end within {SCENARIO_LIMIT:?}: a wake-up ignored?");
            eprintln!("conformance: {} ok ({:.2?})", stringify!($scenario), started.elapsed());
        )*};
    }
    each!(
        every_operation,
        upload_sources,
        rejected_token_refreshed_once_and_upload_resent,
        busy_backs_off_then_succeeds,
        quota_is_surfaced_never_retried,
        dropped_upload_replayed_only_from_a_file,
        large_media_in_range_chunks,
        broken_bodies_resume_from_the_byte_reached,
        stalled_body_ended_by_the_idle_timeout,
        stuck_calls_end_by_their_timeouts,
        error_answers_never_reach_the_sink,
        status_pages_are_data_and_redirects_not_followed,
        progress_counts_payload_bytes,
        cancel_mid_upload_and_mid_download,
        parallel_download_byte_identical_and_bounded,
        parallel_ranges_run_at_once,
        parallel_download_halves_under_45033,
        parallel_download_retries_single_ranges,
        cancelled_parallel_download_resumes_from_its_record,
        job_wait_ended_by_a_callback,
        job_wait_deadline_returns_processing,
        one_gettoken_for_32_concurrent_calls,
        shared_token_store,
    );
}
