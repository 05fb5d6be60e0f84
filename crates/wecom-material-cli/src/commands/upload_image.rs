//! `upload-image <PATH> [--filename NAME]`.

use serde_json::json;

use crate::cli::UploadImageArgs;
use crate::failure::Failure;
use crate::output::Output;
use crate::session::Session;

/// Uploads a JPG/PNG and prints its permanent URL.
pub(crate) fn run(session: &Session, out: Output, args: &UploadImageArgs) -> Result<(), Failure> {
    super::check_input_file(&args.path)?;
    let uploaded = session
        .client()
        .upload_image_path(&args.path, args.filename.as_deref())?;
    out.emit(json!({ "url": uploaded.url }), || uploaded.url.clone());
    Ok(())
}
