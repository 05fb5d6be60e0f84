//! Where an upload's payload comes from when the core does not hold the bytes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use wecom_material_core::Replay;

/// A payload the transport streams into the multipart body.
pub(crate) enum PayloadSource<'a> {
    /// A file, rewound for each attempt (replayable).
    File(File),
    /// A reader that can be read once.
    Reader(Option<Box<dyn Read + Send + 'a>>),
}

impl<'a> PayloadSource<'a> {
    pub(crate) fn replay(&self) -> Replay {
        match self {
            PayloadSource::File(_) => Replay::Replayable,
            PayloadSource::Reader(_) => Replay::OneShot,
        }
    }

    /// A reader positioned at the payload's start, for one attempt.
    pub(crate) fn open(&mut self) -> io::Result<Box<dyn Read + Send + '_>> {
        match self {
            PayloadSource::File(file) => {
                file.seek(SeekFrom::Start(0))?;
                Ok(Box::new(&*file))
            }
            PayloadSource::Reader(reader) => reader
                .take()
                .ok_or_else(|| io::Error::other("a one-shot payload was already sent")),
        }
    }
}
