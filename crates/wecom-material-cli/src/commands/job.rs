//! `job <JOBID> [--wait]`: the state of an async upload job.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wecom_material_core::{JobId, JobStatus};

use crate::cli::JobArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::session::Session;

/// Asks (or, with `--wait`, polls until the end) and prints the job's state. Exits 0 whenever
/// the state was obtained, except that `--wait` exits 1 when the job failed or is still
/// processing at the deadline.
pub(crate) fn run(session: &Session, out: Output, args: &JobArgs) -> Result<(), Failure> {
    let jobid = job_id(&args.jobid)?;
    let status = if args.wait {
        wait(session, &jobid, args.timeout)?
    } else {
        session.client().job_result(&jobid)?
    };
    out.emit(status_json(&status), || status_text(&jobid, &status));
    match status {
        JobStatus::Failed { errcode, .. } if args.wait => Err(Failure::other(format!(
            "job {jobid} failed: WeCom errcode {} ({})",
            errcode.code(),
            errcode.meaning()
        ))),
        JobStatus::Processing if args.wait => Err(still_processing(&jobid, args.timeout)),
        _ => Ok(()),
    }
}

/// A non-empty job id (exit 2 otherwise).
pub(crate) fn job_id(text: &str) -> Result<JobId, Failure> {
    if text.trim().is_empty() {
        return Err(Failure::usage("the job id is empty"));
    }
    Ok(JobId::new(text))
}

/// Polls with the client's backoff until the job ends or `timeout_secs` pass.
pub(crate) fn wait(
    session: &Session,
    jobid: &JobId,
    timeout_secs: u64,
) -> Result<JobStatus, Failure> {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    Ok(session.client().wait_job(jobid, deadline)?)
}

/// The error of a `--wait` that ran out of time.
pub(crate) fn still_processing(jobid: &JobId, timeout_secs: u64) -> Failure {
    Failure::other(format!(
        "job {jobid} still processing after {timeout_secs} s"
    ))
}

/// `{"status","media_id","errcode","errmsg"}`.
pub(crate) fn status_json(status: &JobStatus) -> Value {
    match status {
        JobStatus::Processing => json!({
            "status": "processing", "media_id": null, "errcode": null, "errmsg": null,
        }),
        JobStatus::Finished { media_id, .. } => json!({
            "status": "finished", "media_id": media_id.as_str(), "errcode": 0, "errmsg": "ok",
        }),
        JobStatus::Failed { errcode, errmsg } => json!({
            "status": "failed", "media_id": null, "errcode": errcode.code(), "errmsg": errmsg,
        }),
    }
}

fn status_text(jobid: &JobId, status: &JobStatus) -> String {
    match status {
        JobStatus::Processing => format!("job {jobid}: processing"),
        JobStatus::Finished {
            media_id,
            created_at,
            expires_at,
        } => format!(
            "job {jobid}: finished\nmedia_id   {media_id}\ncreated_at {}\nexpires_at {}",
            output::utc(*created_at),
            output::utc(*expires_at)
        ),
        JobStatus::Failed { errcode, errmsg } => format!(
            "job {jobid}: failed with WeCom errcode {} ({}){}",
            errcode.code(),
            errcode.meaning(),
            if errmsg.is_empty() {
                String::new()
            } else {
                format!(": {errmsg}")
            }
        ),
    }
}
