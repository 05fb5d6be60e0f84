//! The client's operations: each runs the task the shared part builds for it, written once
//! for both clients in the host crate.

use tokio::io::{AsyncRead, AsyncWrite};
use wecom_material_host::batch;

use crate::client::Client;
use crate::run::Sink;

/// An upload for this client: bytes in memory, a file, or a reader read once. The reader is
/// `'static`: hyper polls the body on its connection's task.
pub type Upload = wecom_material_core::task::Upload<Box<dyn AsyncRead + Send + Unpin>>;

wecom_material_host::client_operations!(
    Client,
    [async],
    [.await],
    Upload,
    &mut (dyn AsyncWrite + Send + Unpin),
    batch::concurrently
);
