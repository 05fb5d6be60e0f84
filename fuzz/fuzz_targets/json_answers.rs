//! Every JSON answer parser on arbitrary bodies and statuses: none may panic, and an error
//! answer must keep its errcode number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wecom_material_core::multipart::Boundary;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::ops::upload_image::UploadImage;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::{CorpSecret, JobId, Limits, MediaType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 500, 502][usize::from(selector & 3)];
    let response = || http::Response::builder().status(status).body(body).unwrap();
    let boundary = Boundary::from_entropy([7; 16]);
    let relaxed = Limits::relaxed();

    let _ = GetToken::new("ww", CorpSecret::new("s")).parse(response());
    let upload = UploadMedia::from_bytes(
        MediaType::File,
        "a.txt",
        bytes::Bytes::from_static(b"123456"),
        boundary.clone(),
        &relaxed,
    )
    .unwrap();
    let _ = upload.parse(response());
    let image = UploadImage::new(
        "a.png",
        wecom_material_core::body::Payload::Bytes(bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\n")),
        None,
        boundary,
        &relaxed,
    )
    .unwrap();
    let _ = image.parse(response());
    let by_url = UploadByUrl::new(
        MediaType::File,
        "a.zip",
        "https://example.invalid/a.zip",
        "0123456789abcdef0123456789abcdef",
        &relaxed,
        false,
    )
    .unwrap();
    let _ = by_url.parse(response());
    let _ = GetUploadByUrlResult::new(JobId::new("j"))
        .unwrap()
        .parse(response());
});
