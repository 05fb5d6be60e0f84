//! `job <JOBID> [--wait]`: the state of an async upload job.
//!
//! `job --json` and `upload-by-url --wait --json` print the same object (the union of what
//! each printed before issue 12): `{"jobid", "status", "media_id", "created_at", "expires_at",
//! "errcode", "errmsg"}`, fields that do not apply being null. A `--wait` that ends with a
//! failed job (or runs out of time) prints that object once, with the failure fields
//! `"error"` and `"exit"` added.

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
    if args.wait {
        return report_end(out, &jobid, &status, args.timeout);
    }
    out.emit(status_json(&jobid, &status), || {
        status_text(&jobid, &status)
    });
    Ok(())
}

/// Prints the state a `--wait` ended with: a finished job is a success; a failed one, or one
/// still processing at the deadline, is a [`Failure::Job`] that carries the state (printed
/// for people here, as the failure object's fields with `--json`).
pub(crate) fn report_end(
    out: Output,
    jobid: &JobId,
    status: &JobStatus,
    timeout_secs: u64,
) -> Result<(), Failure> {
    let failure = match status {
        JobStatus::Finished { .. } => {
            out.emit(status_json(jobid, status), || status_text(jobid, status));
            return Ok(());
        }
        JobStatus::Failed { errcode, errmsg } => Failure::Job {
            message: format!(
                "job {jobid} failed: WeCom errcode {} ({}){}",
                errcode.code(),
                errcode.meaning(),
                if errmsg.is_empty() {
                    String::new()
                } else {
                    format!(": {}", output::shown(errmsg))
                }
            ),
            errcode: Some(errcode.code()),
            state: status_json(jobid, status),
        },
        JobStatus::Processing => Failure::Job {
            message: still_processing(jobid, timeout_secs),
            errcode: None,
            state: status_json(jobid, status),
        },
    };
    if !out.json {
        out.emit(Value::Null, || status_text(jobid, status));
    }
    Err(failure)
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

/// The message of a `--wait` that ran out of time.
fn still_processing(jobid: &JobId, timeout_secs: u64) -> String {
    format!("job {jobid} still processing after {timeout_secs} s")
}

/// `{"jobid","status","media_id","created_at","expires_at","errcode","errmsg"}`.
pub(crate) fn status_json(jobid: &JobId, status: &JobStatus) -> Value {
    match status {
        JobStatus::Processing => json!({
            "jobid": jobid.as_str(), "status": "processing", "media_id": null,
            "created_at": null, "expires_at": null, "errcode": null, "errmsg": null,
        }),
        JobStatus::Finished {
            media_id,
            created_at,
            expires_at,
        } => json!({
            "jobid": jobid.as_str(), "status": "finished", "media_id": media_id.as_str(),
            "created_at": created_at, "expires_at": expires_at, "errcode": 0, "errmsg": "ok",
        }),
        JobStatus::Failed { errcode, errmsg } => json!({
            "jobid": jobid.as_str(), "status": "failed", "media_id": null,
            "created_at": null, "expires_at": null, "errcode": errcode.code(), "errmsg": errmsg,
        }),
    }
}

fn status_text(jobid: &JobId, status: &JobStatus) -> String {
    let jobid = output::shown(jobid.as_str());
    match status {
        JobStatus::Processing => format!("job {jobid}: processing"),
        JobStatus::Finished {
            media_id,
            created_at,
            expires_at,
        } => format!(
            "job {jobid}: finished\nmedia_id   {}\ncreated_at {}\nexpires_at {}",
            output::shown(media_id.as_str()),
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
                format!(": {}", output::shown(errmsg))
            }
        ),
    }
}
