//! The client's operations: each runs the task the shared part builds for it. All but
//! `upload_batch` are written once for both clients, in the host crate.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use wecom_material_core::transfer::BatchProgress;

use wecom_material_core::{Error, MediaType, Uploaded};

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
    /// Runs the uploads of `upload_all` as `jobs` futures at once on the caller's task (one
    /// client: one token, one pool).
    async fn upload_batch(
        &self,
        kind: MediaType,
        uploads: Vec<Upload>,
        jobs: usize,
        batch: &Arc<BatchProgress>,
    ) -> Vec<(usize, Result<Uploaded, Error>)> {
        let mut waiting = uploads.into_iter().enumerate();
        let (mut running, mut results) = (FuturesUnordered::new(), Vec::new());
        loop {
            while running.len() < jobs
                && let Some((i, upload)) = waiting.next()
            {
                running.push(async move { (i, self.upload(kind, upload, batch.item(i)).await) });
            }
            match running.next().await {
                Some(done) => results.push(done),
                None => return results,
            }
        }
    }
}
