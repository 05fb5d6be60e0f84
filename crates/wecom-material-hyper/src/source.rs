//! Where an upload's payload comes from when the core does not hold the bytes.

use std::io::{self, SeekFrom};

use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeekExt};
use wecom_material_core::Replay;

/// A payload the transport streams into the multipart body.
pub(crate) enum PayloadSource<'a> {
    /// A file, rewound for each attempt (replayable).
    File(File),
    /// A reader that can be read once.
    Reader(Option<Box<dyn AsyncRead + Send + Unpin + 'a>>),
}

impl<'a> PayloadSource<'a> {
    pub(crate) fn replay(&self) -> Replay {
        match self {
            PayloadSource::File(_) => Replay::Replayable,
            PayloadSource::Reader(_) => Replay::OneShot,
        }
    }

    /// Whether a longer payload than announced is an error (a file that grew), rather than
    /// the rest of a stream the caller keeps.
    pub(crate) fn must_end_at_len(&self) -> bool {
        matches!(self, PayloadSource::File(_))
    }

    /// A reader positioned at the payload's start, for one attempt.
    pub(crate) async fn open(&mut self) -> io::Result<Box<dyn AsyncRead + Send + Unpin + '_>> {
        match self {
            PayloadSource::File(file) => {
                file.seek(SeekFrom::Start(0)).await?;
                Ok(Box::new(file))
            }
            PayloadSource::Reader(reader) => reader
                .take()
                .ok_or_else(|| io::Error::other("a one-shot payload was already sent")),
        }
    }
}
