//! The client's operations: each runs the task the shared part builds for it. All but
//! `upload_all` are written once for both clients, in the host crate.

use std::io::{Read, Write};
use std::sync::Mutex;

use wecom_material_core::transfer::BatchProgress;
use wecom_material_core::{Error, MediaType, Transfer, Uploaded};

use crate::client::Client;
use crate::run::Sink;

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

wecom_material_host::client_operations!(Client, [], [], Upload<'_>, &mut dyn Write);

impl Client {
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
        let (batch, n) = (BatchProgress::new(uploads.len(), t), uploads.len());
        let waiting = Mutex::new(uploads.into_iter().enumerate());
        let results = Mutex::new(Vec::new());
        let next = || waiting.lock().unwrap_or_else(|e| e.into_inner()).next();
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, n.max(1)) {
                scope.spawn(|| {
                    while let Some((i, upload)) = next() {
                        let result = self.upload(kind, upload, batch.item(i));
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
}
