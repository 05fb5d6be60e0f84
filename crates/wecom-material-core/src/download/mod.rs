//! Downloads: header parsing and the chunked, resumable download plan.

pub mod content_disposition;
pub mod content_range;
pub(crate) mod plan;

pub use plan::MAX_CHUNK_SIZE;
