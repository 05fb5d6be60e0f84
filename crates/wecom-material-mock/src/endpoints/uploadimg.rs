//! `POST /cgi-bin/media/uploadimg?access_token=T` (SPEC §3).
//!
//! Token, then the daily quota (successful calls per corp per emulator-clock UTC day, 45009
//! once used up), then the form: `.jpg`/`.jpeg`/`.png` only (40005), 5 B < size ≤ 2 MiB
//! (40006 / 40009 by default). Success answers a URL on the emulator itself
//! (`{base}/mock-images/{id}.{ext}`), served by `GET` like a download.

use http::Response;

use super::Ctx;
use super::multipart::read_media;
use crate::body::{MockBody, TappedBody};
use crate::config::MediaKind;
use crate::state::ServedFile;

pub(crate) async fn handle(ctx: &Ctx, mut body: TappedBody) -> Response<MockBody> {
    let app = match ctx.app() {
        Ok(app) => app,
        Err(resp) => {
            body.drain(super::super::DRAIN_LIMIT).await;
            return *resp;
        }
    };
    let corp = ctx.corp_id(app);
    let day = ctx.state.config.clock.now_unix() / 86_400;
    let rules = ctx.state.rules();
    let quota = rules.upload_img_daily_quota;
    let used = ctx
        .state
        .lock()
        .img_quota
        .get(&(corp.clone(), day))
        .copied()
        .unwrap_or(0);
    if used >= quota {
        body.drain(super::super::DRAIN_LIMIT).await;
        return ctx.error(45009);
    }
    let limits = &rules.limits;
    let part = match read_media(
        &ctx.state.slabs,
        &ctx.parts.headers,
        ctx.state.config.require_content_length,
        body,
        limits.upload_img,
        limits.min_exclusive_bytes,
        |name| {
            if MediaKind::Image.accepts_file_name(name) {
                Ok(())
            } else {
                Err(40005)
            }
        },
    )
    .await
    {
        Ok(p) => p,
        Err(code) => return ctx.error(code),
    };
    let ext = if part.filename.to_ascii_lowercase().ends_with(".png") {
        "png"
    } else {
        "jpg"
    };
    let key = format!("{}.{ext}", ctx.state.random_id(32));
    let content_type = if ext == "png" {
        "image/png"
    } else {
        "image/jpeg"
    };
    let notes = {
        let mut inner = ctx.state.lock();
        // Re-checked under the lock: concurrent uploads must not overrun the quota.
        let used = inner.img_quota.entry((corp, day)).or_insert(0);
        if *used >= quota {
            return ctx.error(45009);
        }
        *used += 1;
        ctx.state.store_image(
            &mut inner,
            key.clone(),
            ServedFile {
                bytes: part.bytes,
                content_type: content_type.to_owned(),
                range_support: true,
                gate: None,
            },
        )
    };
    ctx.state.notes(notes);
    let url = format!("{}{}{key}", ctx.state.base_url, crate::IMAGE_PREFIX);
    ctx.ok_empty_errmsg(serde_json::json!({ "url": url }))
}
