//! The download error rule of `ops::get_media` and the secret masking of error excerpts on
//! arbitrary input: `classify_probe` never calls media what `classify` calls an error, never
//! calls a short WeCom error object media, and never panics; `mask_secrets` never panics and
//! leaves no run it masks (a long run mixing letters and digits; a very long one with `/`).
//!
//! Input layout: the bytes are split at 0xFF into an `Error-Code` value, a Content-Type value,
//! a Content-Length value and a body; the first byte picks the status and whether a
//! Content-Disposition is sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::get_media::MediaHead;
use wecom_material_core::ops::get_media::is_error_object;
use wecom_material_core::secret::{MASKED_RUN_LEN, MASKED_SLASH_RUN_LEN, mask_secrets};
use wecom_material_core::{DecodeError, MediaId};

/// Whether `text` still holds a run that `mask_secrets` masks: a run of the base64 alphabet
/// of at least `MASKED_RUN_LEN` characters mixing letters and digits, or one holding `/` of
/// at least `MASKED_SLASH_RUN_LEN` characters.
fn holds_secret_like_run(text: &str) -> bool {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-');
    text.split(|c: char| !is_b64(c)).any(|run| {
        if run.contains('/') {
            run.len() >= MASKED_SLASH_RUN_LEN
        } else {
            run.len() >= MASKED_RUN_LEN
                && run.bytes().any(|b| b.is_ascii_digit())
                && run.bytes().any(|b| b.is_ascii_alphabetic())
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let masked = mask_secrets(&text);
    assert!(!holds_secret_like_run(&masked), "{masked:?}");
    let excerpt = DecodeError::new(200, "fuzz", rest).excerpt;
    assert!(!holds_secret_like_run(&excerpt), "{excerpt:?}");

    let mut parts = rest.split(|&b| b == 0xFF);
    let error_code = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let content_length = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    let status = [200u16, 200, 206, 404][usize::from(selector & 3)];
    let mut builder = http::Response::builder().status(status);
    if selector & 4 != 0 {
        builder = builder.header("content-disposition", "attachment; filename=\"f.bin\"");
    }
    for (name, value) in [
        ("error-code", error_code),
        ("content-type", content_type),
        ("content-length", content_length),
    ] {
        if selector & 8 != 0 && name == "error-code" {
            continue;
        }
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            builder = builder.header(name, value);
        }
    }
    let Ok(response) = builder.body(body) else {
        return;
    };
    let request = GetMedia::new(MediaEndpoint::Media, MediaId::new("fuzz-media")).unwrap();
    let (head, body) = response.into_parts();
    let by_head = request.classify(&head);
    let by_probe = request.classify_probe(&head, body);
    match (&by_head, &by_probe) {
        (Ok(MediaHead::Error), Ok(MediaHead::Error)) | (Err(_), Err(_)) => {}
        (Ok(MediaHead::Media(_)), Ok(MediaHead::Error)) => {
            assert!(GetMedia::probe_limit(&head).is_some() && is_error_object(body));
        }
        (Ok(MediaHead::Media(_)), Ok(MediaHead::Media(_))) => {
            let probed = GetMedia::probe_limit(&head).is_some_and(|limit| body.len() <= limit);
            assert!(
                !(probed && is_error_object(body)),
                "an error object saved as media"
            );
        }
        other => panic!("classify and classify_probe disagree: {other:?}"),
    }
    if let Err(error) = request.parse(http::Response::from_parts(head, body)) {
        let text = error.to_string();
        if let Some((_, excerpt)) = text.split_once("body starts ") {
            assert!(!holds_secret_like_run(excerpt), "{text}");
        }
    }
});
