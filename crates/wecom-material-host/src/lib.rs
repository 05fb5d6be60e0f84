#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod files;
mod shared;

pub use files::{FileSink, Opened, md5_file, open_upload};
pub use shared::{JobEvents, Shared};
