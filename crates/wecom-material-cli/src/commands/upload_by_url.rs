//! `upload-by-url <video|file> --url URL --filename NAME (--md5 HEX | --md5-of PATH) [--wait]`.

use serde_json::json;
use wecom_material_core::{JobStatus, MediaType};

use crate::cli::UploadByUrlArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::session::Session;

/// Starts an async upload; with `--wait`, polls until it ends and prints the media id.
pub(crate) fn run(session: &Session, out: Output, args: &UploadByUrlArgs) -> Result<(), Failure> {
    let md5 = match (&args.md5, &args.md5_of) {
        (Some(hex), _) => hex.clone(),
        (None, Some(path)) => {
            super::check_input_file(path)?;
            wecom_material_ureq::md5_file(path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
        }
        (None, None) => return Err(Failure::usage("pass --md5 or --md5-of")),
    };
    let job = session.client().upload_by_url(
        MediaType::from(args.media_type),
        &args.filename,
        &args.url,
        &md5,
    )?;
    if !args.wait {
        out.emit(json!({ "jobid": job.jobid.as_str() }), || {
            format!("job started: {}", job.jobid)
        });
        return Ok(());
    }
    out.note(&format!("job {} started; waiting", job.jobid));
    match super::job::wait(session, &job.jobid, args.timeout)? {
        JobStatus::Finished {
            media_id,
            created_at,
            expires_at,
        } => {
            out.emit(
                json!({
                    "status": "finished",
                    "media_id": media_id.as_str(),
                    "created_at": created_at,
                }),
                || {
                    format!(
                        "job {}: finished\nmedia_id   {media_id}\ncreated_at {}\nexpires_at {}",
                        job.jobid,
                        output::utc(created_at),
                        output::utc(expires_at)
                    )
                },
            );
            Ok(())
        }
        JobStatus::Failed { errcode, errmsg } => Err(Failure::other(format!(
            "job {} failed: WeCom errcode {} ({}){}",
            job.jobid,
            errcode.code(),
            errcode.meaning(),
            if errmsg.is_empty() {
                String::new()
            } else {
                format!(": {errmsg}")
            }
        ))),
        JobStatus::Processing => Err(super::job::still_processing(&job.jobid, args.timeout)),
    }
}
