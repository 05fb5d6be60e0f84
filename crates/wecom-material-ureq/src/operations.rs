//! The client's operations: each runs the task the shared part builds for it. All but
//! `upload_batch` are written once for both clients, in the host crate.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use wecom_material_core::transfer::BatchProgress;
use wecom_material_core::{Error, MediaType, Uploaded};

use crate::client::Client;
use crate::run::Sink;

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

wecom_material_host::client_operations!(Client, [], [], Upload<'_>, &mut dyn Write);

impl Client {
    /// Runs the uploads of `upload_all` on `jobs` threads (one client: one token, one pool).
    fn upload_batch(
        &self,
        kind: MediaType,
        uploads: Vec<Upload>,
        jobs: usize,
        batch: &Arc<BatchProgress>,
    ) -> Vec<(usize, Result<Uploaded, Error>)> {
        let waiting = Mutex::new(uploads.into_iter().enumerate());
        let results = Mutex::new(Vec::new());
        let next = || waiting.lock().unwrap_or_else(|e| e.into_inner()).next();
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    while let Some((i, upload)) = next() {
                        let result = self.upload(kind, upload, batch.item(i));
                        let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                        results.push((i, result));
                    }
                });
            }
        });
        results.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}
