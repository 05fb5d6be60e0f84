//! The download head parsers on arbitrary headers: Content-Range, Content-Disposition (both
//! filename forms), the media/error classification and the download plan must never panic,
//! and every filename that comes out must be safe for a file system.
//!
//! Input layout: the bytes are split at 0xFF into a Content-Range value, a Content-Disposition
//! value, a Content-Type value, a Content-Length value and a body; the first byte picks the
//! status and whether a Range was asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wecom_material_core::MediaId;
use wecom_material_core::download::content_disposition::{
    filename_from_content_disposition, sanitize_filename,
};
use wecom_material_core::download::content_range::ByteRange;
use wecom_material_core::download::content_range::ContentRange;
use wecom_material_core::internals::Download;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::get_media::MediaHead;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0xFF);
    let content_range = parts.next().unwrap_or_default();
    let disposition = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let content_length = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    let _ = ContentRange::parse(content_range);
    if let Some(name) = filename_from_content_disposition(disposition)
        && let Some(safe) = sanitize_filename(&name)
    {
        assert!(!safe.contains('/') && !safe.contains('\\') && !safe.contains(".."));
        assert!(!safe.chars().any(char::is_control));
        assert!(!wecom_material_core::download::content_disposition::is_windows_reserved(&safe));
    }

    let status = [200u16, 206, 416, 502][usize::from(selector & 3)];
    let mut request = GetMedia::new(MediaEndpoint::Media, MediaId::new("fuzz-media")).unwrap();
    if selector & 4 != 0 {
        let start = u64::from(selector >> 3) * 1000;
        request = request
            .with_range(ByteRange {
                start,
                end_inclusive: Some(start + 19_999),
            })
            .unwrap();
    }
    let mut builder = http::Response::builder().status(status);
    for (name, value) in [
        ("content-range", content_range),
        ("content-disposition", disposition),
        ("content-type", content_type),
        ("content-length", content_length),
    ] {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            builder = builder.header(name, value);
        }
    }
    let Ok(response) = builder.body(body) else {
        return;
    };
    let (head, body) = response.into_parts();
    if let Ok(MediaHead::Media(info)) = request.classify(&head) {
        assert!(!info.filename.contains('/') && !info.filename.is_empty());
        let mut plan = Download::new(MediaEndpoint::Media, MediaId::new("fuzz-media"), 20_000)
            .unwrap()
            .resume_from(request.range().map_or(0, |r| r.start));
        if let Ok(expected) = plan.on_media(&info) {
            let _ = plan.on_bytes(expected.min(body.len() as u64));
            let _ = plan.on_body_end();
            let _ = plan.next_request();
        }
    }
    let _ = request.parse(http::Response::from_parts(head, body));
});
