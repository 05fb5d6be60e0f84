//! Request bodies: empty, one buffer, or an upload framed around a payload the core never
//! copies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::task::PayloadDigest;

/// The body of a request built by the core.
///
/// Cloning is cheap: every variant holds reference-counted [`Bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body (GET requests).
    Empty,
    /// A complete body, e.g. JSON.
    Bytes(Bytes),
    /// A `multipart/form-data` upload: `head ‖ payload ‖ tail`.
    Upload(UploadBody),
}

impl Body {
    /// The exact number of bytes the body will put on the wire.
    pub fn content_length(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Upload(u) => u.content_length(),
        }
    }

    /// Whether the body can be sent a second time (a one-shot reader cannot).
    pub fn is_replayable(&self) -> bool {
        match self {
            Body::Empty | Body::Bytes(_) => true,
            Body::Upload(u) => u.payload.is_replayable(),
        }
    }
}

/// An upload framed as `head ‖ payload ‖ tail` (multipart; head and tail empty for a plain
/// object PUT), with its exact length known up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadBody {
    /// Everything before the file bytes: boundary line and part headers.
    pub head: Bytes,
    /// The file bytes, or where the transport gets them.
    pub payload: Payload,
    /// Everything after the file bytes: the closing boundary.
    pub tail: Bytes,
    /// A digest the transport's meter feeds with the external payload bytes it sends (see
    /// [`PayloadDigest`]); `None` for every upload but the object-storage relay's PUT.
    pub digest: Option<PayloadDigest>,
    /// How many payload bytes the transport's frames sent in the current attempt, for the
    /// task that built the request (a cancel or deadline says how far the upload got).
    pub sent: SentBytes,
}

/// A count of payload bytes sent in an upload's current attempt, kept by the
/// [`UploadFrames`](crate::UploadFrames) of each attempt (restarted at 0) and read by the
/// task. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct SentBytes(Arc<AtomicU64>);

impl SentBytes {
    /// A count at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The payload bytes sent in the current attempt.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// Two counts are equal when they are the same shared count.
impl PartialEq for SentBytes {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SentBytes {}

impl UploadBody {
    /// `head.len() + payload.len() + tail.len()`.
    pub fn content_length(&self) -> u64 {
        self.head.len() as u64 + self.payload.len() + self.tail.len() as u64
    }

    /// Payload bytes sent in the current attempt, of the whole payload.
    pub fn progress(&self) -> crate::Progress {
        crate::Progress {
            done: self.sent.get(),
            total: Some(self.payload.len()),
        }
    }
}

/// The file bytes of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Bytes the caller gave; shared, never copied.
    Bytes(Bytes),
    /// Exactly `len` bytes that the transport streams from a file or reader it holds.
    External {
        /// The number of bytes the transport will send.
        len: u64,
        /// Whether the transport can produce the bytes again (a file can, a pipe cannot).
        replay: Replay,
    },
}

impl Payload {
    /// The number of payload bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::External { len, .. } => *len,
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the payload can be sent again.
    pub fn is_replayable(&self) -> bool {
        match self {
            Payload::Bytes(_) => true,
            Payload::External { replay, .. } => *replay == Replay::Replayable,
        }
    }

    /// The bytes, when the caller handed them to the core.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Payload::Bytes(b) => Some(b),
            Payload::External { .. } => None,
        }
    }
}

/// Whether an external payload source can be read again from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The source can be rewound (a file, a buffer).
    Replayable,
    /// The source is consumed by reading (a pipe, a socket, stdin).
    OneShot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_knows_its_length_and_whether_it_is_empty() {
        let external = |len| Payload::External {
            len,
            replay: Replay::OneShot,
        };
        assert!(Payload::Bytes(Bytes::new()).is_empty());
        assert!(!Payload::Bytes(Bytes::from_static(b"x")).is_empty());
        assert!(external(0).is_empty());
        assert!(!external(3).is_empty());
        assert_eq!(external(3).len(), 3);
    }

    /// Clones of a count are one count (the task reads what the frames wrote); two counts
    /// are different ones, whatever they hold.
    #[test]
    fn sent_bytes_clones_share_one_count() {
        let count = SentBytes::new();
        let clone = count.clone();
        clone.set(7);
        assert_eq!(count.get(), 7);
        assert_eq!(count, clone);
        assert_ne!(count, SentBytes::new());
    }
}
