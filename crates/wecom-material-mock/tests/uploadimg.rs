//! media/uploadimg: formats, size, daily quota, and the URL the emulator serves.

mod support;

use std::time::Duration;

use support::*;
use wecom_material_mock::{Clock, MockConfig, MockServer};

fn upload_img(mock: &MockServer, t: &str, filename: &str, data: &[u8]) -> Resp {
    let disposition = format!("form-data; name=\"media\"; filename=\"{filename}\"");
    let body = form(BOUNDARY, disposition.as_bytes(), Some("image/png"), data);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    send(
        mock.addr(),
        "POST",
        &format!("/cgi-bin/media/uploadimg?access_token={t}"),
        &[("Content-Type", ct.as_bytes())],
        &body,
    )
}

#[test]
fn url_is_served_and_quota_is_daily() {
    let mock = MockServer::start(MockConfig {
        upload_img_daily_quota: 2,
        clock: Clock::manual(1_700_006_400),
        ..MockConfig::default()
    });
    let t = mock.access_token("ww-mock-corp").unwrap();
    let png = b"\x89PNG\r\n\x1a\nimage-bytes";
    let r = upload_img(&mock, &t, "图.png", png);
    assert_eq!(r.errcode(), 0, "{}", r.json());
    let url = r.json()["url"].as_str().unwrap().to_owned();
    let path = url
        .strip_prefix(&mock.base_url())
        .expect("served by the emulator");
    let g = get(mock.addr(), path);
    assert_eq!(g.body, png);
    assert_eq!(g.header_str("content-type").unwrap(), "image/png");

    assert_eq!(upload_img(&mock, &t, "a.gif", png).errcode(), 40005);
    assert_eq!(upload_img(&mock, &t, "a.jpg", b"tiny").errcode(), 40006);
    assert_eq!(
        upload_img(&mock, &t, "a.jpg", &vec![0u8; 2 * 1024 * 1024 + 1]).errcode(),
        40009
    );
    assert_eq!(upload_img(&mock, &t, "a.JPG", png).errcode(), 0);
    assert_eq!(upload_img(&mock, &t, "a.jpg", png).errcode(), 45009);
    mock.clock().advance(Duration::from_secs(86_400));
    let t = mock.access_token("ww-mock-corp").unwrap();
    assert_eq!(upload_img(&mock, &t, "a.jpg", png).errcode(), 0);
}
