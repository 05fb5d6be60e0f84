//! The client's operations: each runs the task the shared part builds for it. All but
//! `upload_all` are written once for both clients, in the host crate.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncWrite};
use wecom_material_core::transfer::BatchProgress;
use wecom_material_core::{Error, MediaType, Transfer, Uploaded};

use crate::client::Client;
use crate::run::Sink;

/// An upload for this client: bytes in memory, a file, or a reader read once.
/// The reader is `'static`: hyper polls the body on its connection's task.
pub type Upload = wecom_material_core::task::Upload<Box<dyn AsyncRead + Send + Unpin>>;

wecom_material_host::client_operations!(
    Client,
    [async],
    [.await],
    Upload,
    &mut (dyn AsyncWrite + Send + Unpin)
);

impl Client {
    /// Uploads every input with at most `jobs` at once over this client (one token, one
    /// connection pool); the results come in input order. Progress counts the payload bytes
    /// of all of them; a cancel stops those not finished. A deadline in `t` applies to each
    /// upload, from its own start.
    pub async fn upload_all(
        &self,
        kind: MediaType,
        uploads: Vec<Upload>,
        jobs: usize,
        t: Transfer,
    ) -> Vec<Result<Uploaded, Error>> {
        let batch = &BatchProgress::new(uploads.len(), t);
        let mut waiting = uploads.into_iter().enumerate();
        let (mut running, mut results) = (FuturesUnordered::new(), Vec::new());
        loop {
            while running.len() < jobs.max(1)
                && let Some((i, upload)) = waiting.next()
            {
                running.push(async move { (i, self.upload(kind, upload, batch.item(i)).await) });
            }
            match running.next().await {
                Some(done) => results.push(done),
                None => return BatchProgress::in_order(results),
            }
        }
    }
}
