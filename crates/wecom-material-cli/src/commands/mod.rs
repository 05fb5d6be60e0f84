//! One module per command.

pub(crate) mod callback;
pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod get;
pub(crate) mod job;
pub(crate) mod mock;
pub(crate) mod upload;
pub(crate) mod upload_by_url;
pub(crate) mod upload_image;

use std::path::Path;

use crate::failure::Failure;

/// Checks that an input file exists and is a regular file, before anything is sent (exit 2).
pub(crate) fn check_input_file(path: &Path) -> Result<u64, Failure> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(meta.len()),
        Ok(_) => Err(Failure::usage(format!("{} is not a file", path.display()))),
        Err(e) => Err(Failure::usage(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// A file to upload, shown as `filename` when given, else under its own name.
pub(crate) fn file_upload(
    path: &std::path::Path,
    filename: Option<&str>,
) -> wecom_material_ureq::Upload<'static> {
    let upload = wecom_material_ureq::Upload::path(path);
    match filename {
        Some(name) => upload.named(name),
        None => upload,
    }
}
