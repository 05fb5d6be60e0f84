//! `upload-by-url <video|file> --url URL --filename NAME (--md5 HEX | --md5-of PATH) [--wait]`.

use serde_json::json;
use wecom_material_core::MediaType;

use crate::cli::UploadByUrlArgs;
use crate::failure::Failure;
use crate::output::Output;
use crate::session::Session;

/// Starts an async upload; with `--wait`, polls until it ends and prints the job's state as
/// `job --wait` does (the same fields).
pub(crate) fn run(session: &Session, out: Output, args: &UploadByUrlArgs) -> Result<(), Failure> {
    let md5 = match (&args.md5, &args.md5_of) {
        // Either case is accepted; WeCom is sent lowercase hex.
        (Some(hex), _) => hex.to_ascii_lowercase(),
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
            format!("job started: {}", crate::output::shown(job.jobid.as_str()))
        });
        return Ok(());
    }
    let shown = crate::output::shown(job.jobid.as_str());
    out.note(&format!("job {shown} started; waiting"));
    let status = super::job::wait(session, &job.jobid, args.timeout)?;
    super::job::report_end(out, &job.jobid, &status, args.timeout)
}
