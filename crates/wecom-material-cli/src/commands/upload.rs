//! `upload <image|voice|video|file> <PATH> [--filename NAME]`.

use serde_json::json;
use wecom_material_core::MediaType;
use wecom_material_ureq::Transfer;

use crate::cli::UploadArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::progress::TransferBar;
use crate::session::Session;

/// Uploads temporary media and prints its media id.
pub(crate) fn run(session: &Session, out: Output, args: &UploadArgs) -> Result<(), Failure> {
    let size = super::check_input_file(&args.path)?;
    let media_type = MediaType::from(args.media_type);
    let bar = TransferBar::new(format!("upload {media_type}"), out.json);
    let report = |p| bar.report(p);
    let result = session.client().upload(
        media_type,
        super::file_upload(&args.path, args.filename.as_deref()),
        Transfer {
            progress: Some(&report),
            cancel: None,
        },
    );
    bar.finish();
    let uploaded = result?;
    out.emit(
        json!({
            "type": uploaded.media_type.as_str(),
            "media_id": uploaded.media_id.as_str(),
            "created_at": uploaded.created_at,
            "expires_at": uploaded.expires_at,
        }),
        || {
            format!(
                "uploaded {} ({}) as {media_type}\nmedia_id   {}\ncreated_at {}\nexpires_at {}",
                args.path.display(),
                output::size(size),
                uploaded.media_id,
                output::utc(uploaded.created_at),
                output::utc(uploaded.expires_at),
            )
        },
    );
    Ok(())
}
