//! `POST /cgi-bin/media/get_upload_by_url_result?access_token=T` (SPEC §7).
//!
//! Body `{"jobid":"..."}`. Not JSON → 47001; a missing, unknown, or other corp's job id →
//! **40058** (invalid parameter; the real code is undocumented). Answers
//! `status` 1 (no `detail`), 2 with `detail` `{errcode 0, media_id, created_at}` (created_at a
//! JSON string, as in `media/upload`), or 3 with `detail` `{errcode X, errmsg}`.

use http::Response;

use super::Ctx;
use crate::body::{MockBody, TappedBody};
use crate::state::JobStatus;

pub(crate) async fn handle(ctx: &Ctx, mut body: TappedBody) -> Response<MockBody> {
    let app = match ctx.app() {
        Ok(app) => app,
        Err(resp) => {
            body.drain(super::super::DRAIN_LIMIT).await;
            return *resp;
        }
    };
    let Ok(raw) = body.collect(64 * 1024).await else {
        body.drain(super::super::DRAIN_LIMIT).await;
        return ctx.error(47001);
    };
    let Ok(serde_json::Value::Object(req)) = serde_json::from_slice::<serde_json::Value>(&raw)
    else {
        return ctx.error(47001);
    };
    let job_id = req.get("jobid").and_then(|v| v.as_str()).unwrap_or("");
    let corp = ctx.corp_id(app);
    let status = {
        let inner = ctx.state.lock();
        match inner.jobs.get(job_id) {
            Some(job) if job.corp_id == corp => Some(job.status.clone()),
            _ => None,
        }
    };
    let Some(status) = status else {
        return ctx.error(40058);
    };
    match status {
        JobStatus::Processing => ctx.ok(serde_json::json!({ "status": 1 })),
        JobStatus::Finished {
            media_id,
            created_at,
        } => ctx.ok(serde_json::json!({
            "status": 2,
            "detail": {
                "errcode": 0,
                "errmsg": "ok",
                "media_id": media_id,
                "created_at": created_at.to_string(),
            }
        })),
        JobStatus::Failed { errcode } => ctx.ok(serde_json::json!({
            "status": 3,
            "detail": { "errcode": errcode, "errmsg": super::errmsg(errcode) }
        })),
    }
}
