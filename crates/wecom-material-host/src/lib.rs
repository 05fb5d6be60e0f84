#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
#[cfg(feature = "async")]
mod body;
mod files;
mod methods;
mod running;
pub mod save;
mod shared;

#[cfg(feature = "async")]
pub use body::{BodyWatch, UploadBody};
pub use files::{FileAttempt, FileSink, Source, md5_file, open_file, open_upload};
pub use running::Running;
pub use save::{BatchNames, Overwrite, SaveJob, SaveOptions, Saved};
pub use shared::{JobEvents, Shared};

#[doc(hidden)]
pub use wecom_material_core as __core;
