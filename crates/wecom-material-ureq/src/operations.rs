//! The client's operations: each runs the task the shared part builds for it, written once
//! for both clients in the host crate.

use std::io::{Read, Write};

use wecom_material_host::batch;

use crate::client::Client;
use crate::run::Sink;

/// An upload for this client: bytes in memory, a file, or a reader read once.
pub type Upload<'a> = wecom_material_core::task::Upload<Box<dyn Read + Send + 'a>>;

wecom_material_host::client_operations!(
    Client,
    [],
    [],
    Upload<'_>,
    &mut dyn Write,
    batch::on_threads
);
