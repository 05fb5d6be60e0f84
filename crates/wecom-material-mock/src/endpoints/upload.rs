//! `POST /cgi-bin/media/upload?access_token=T&type=TYPE` (SPEC §2).
//!
//! Checks in order: token (41001/40014/42001), `type` (40004), the form (see
//! [`super::multipart`]: 44001, 41005, 40005 for an extension that does not fit the type,
//! the type's size limit, 40006 for ≤ 5 bytes), and voice must start with the AMR magic
//! `#!AMR` (301017). Success stores the bytes, the content type and the raw display name.

use http::Response;

use super::Ctx;
use super::multipart::read_media;
use crate::body::{MockBody, TappedBody};
use crate::config::MediaKind;
use crate::state::StoredMedia;

/// The AMR file magic.
const AMR_MAGIC: &[u8] = b"#!AMR";

pub(crate) async fn handle(ctx: &Ctx, mut body: TappedBody) -> Response<MockBody> {
    let app = match ctx.app() {
        Ok(app) => app,
        Err(resp) => {
            body.drain(super::super::DRAIN_LIMIT).await;
            return *resp;
        }
    };
    let Some(kind) = ctx.query("type").as_deref().and_then(MediaKind::from_wire) else {
        body.drain(super::super::DRAIN_LIMIT).await;
        return ctx.error(40004);
    };
    let rules = ctx.state.rules();
    let limits = &rules.limits;
    let part = match read_media(
        &ctx.state.slabs,
        &ctx.parts.headers,
        ctx.state.config.require_content_length,
        body,
        limits.for_kind(kind),
        limits.min_exclusive_bytes,
        |name| {
            if kind.accepts_file_name(name) {
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
    if kind == MediaKind::Voice && !part.bytes.starts_with(AMR_MAGIC) {
        return ctx.error(301017);
    }
    let created_at = ctx.state.config.clock.now_unix();
    let content_type = content_type_for(&part.filename, part.content_type.as_deref());
    let media_id = ctx.state.store_media(StoredMedia {
        kind,
        bytes: part.bytes,
        content_type,
        filename: part.filename,
        created_at,
        corp_id: Some(ctx.corp_id(app)),
    });
    ctx.ok_empty_errmsg(serde_json::json!({
        "type": kind.as_wire(),
        "media_id": media_id,
        "created_at": created_at.to_string(),
    }))
}

/// The content type media is served with: from the extension when it is a known one, else the
/// part's own type, else `application/octet-stream`.
pub(crate) fn content_type_for(filename: &str, part_type: Option<&str>) -> String {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_ext = match ext.as_str() {
        "jpg" | "jpeg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        "amr" => Some("audio/amr"),
        "mp4" => Some("video/mp4"),
        "txt" => Some("text/plain"),
        "pdf" => Some("application/pdf"),
        _ => None,
    };
    by_ext
        .or(part_type.filter(|t| !t.is_empty()))
        .unwrap_or("application/octet-stream")
        .to_owned()
}
