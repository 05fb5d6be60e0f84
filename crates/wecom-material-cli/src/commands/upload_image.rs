//! `upload-image <PATH> [--filename NAME]`.

use serde_json::json;

use crate::cli::UploadImageArgs;
use crate::failure::Failure;
use crate::output::Output;
use crate::session::Session;
use wecom_material_ureq::Transfer;

/// Uploads a JPG/PNG and prints its permanent URL.
pub(crate) fn run(session: &Session, out: Output, args: &UploadImageArgs) -> Result<(), Failure> {
    super::check_input_file(&args.path)?;
    let upload = super::file_upload(&args.path, args.filename.as_deref());
    let transfer = Transfer {
        deadline: args.deadline.map(std::time::Duration::from_secs),
        ..Transfer::default()
    };
    let uploaded = session.client().upload_image(upload, transfer)?;
    out.emit(json!({ "url": uploaded.url }), || {
        crate::output::shown(&uploaded.url).into_owned()
    });
    Ok(())
}
