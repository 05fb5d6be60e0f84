//! Golden request tests: every operation's built request rendered to canonical text and
//! compared with the reviewed snapshot files in `tests/golden/`.
//!
//! Rendering (see [`render`]):
//! - line 1: `METHOD URI`;
//! - then one `name: value` line per header, in the order `HeaderMap::iter` yields them (the
//!   order the core inserted them, names lower case);
//! - a blank line, then the body: `\r\n` is shown as the text `\r\n` followed by a real newline,
//!   a lone `\n` as `\n` plus a newline, any other byte below 0x20, 0x7f and bytes that are not
//!   UTF-8 as `\xNN`; valid non-ASCII UTF-8 (Chinese filenames) and backslashes are kept as
//!   they are, so an escaped filename reads exactly as on the wire;
//! - a [`Payload::External`] is shown as `<external payload: N bytes, replayable|one-shot>`;
//! - a last line `<end of body: N bytes>` with the body's wire length.
//!
//! Run with `UPDATE_GOLDEN=1` to (re)write the snapshot files; review them by eye before
//! committing.

use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use wecom_material_core::body::Body;
use wecom_material_core::body::Payload;
use wecom_material_core::body::Replay;
use wecom_material_core::download::content_range::ByteRange;
use wecom_material_core::multipart::Boundary;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::gettoken::GetToken;
use wecom_material_core::ops::upload_by_url::UploadByUrl;
use wecom_material_core::ops::upload_by_url_result::GetUploadByUrlResult;
use wecom_material_core::ops::upload_image::UploadImage;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::{AccessToken, BaseUrl, CorpSecret, JobId, Limits, MediaId, MediaType};

const TOKEN: &str = "accesstoken001";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";
const AMR: &[u8] = b"#!AMR\n\x3c\x48\xf5\x1f";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42";
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

fn token() -> AccessToken {
    AccessToken::new(TOKEN).unwrap()
}

fn base() -> BaseUrl {
    BaseUrl::default()
}

fn boundary() -> Boundary {
    Boundary::from_entropy([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ])
}

/// Escapes bytes as described in the module docs.
fn escape_into(out: &mut String, bytes: &[u8]) {
    let mut i = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut chars = valid.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {
                    chars.next();
                    out.push_str("\\r\\n\n");
                }
                '\n' => out.push_str("\\n\n"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
        i += valid.len() + chunk.invalid().len();
    }
    debug_assert_eq!(i, bytes.len());
}

/// Renders a built request to canonical text.
fn render(request: &http::Request<Body>) -> String {
    let mut out = format!("{} {}\n", request.method(), request.uri());
    for (name, value) in request.headers() {
        out.push_str(name.as_str());
        out.push_str(": ");
        escape_into(&mut out, value.as_bytes());
        out.push('\n');
    }
    out.push('\n');
    match request.body() {
        Body::Empty => {}
        Body::Bytes(b) => escape_into(&mut out, b),
        Body::Upload(u) => {
            escape_into(&mut out, &u.head);
            match &u.payload {
                Payload::Bytes(b) => escape_into(&mut out, b),
                Payload::External { len, replay } => {
                    let replay = match replay {
                        Replay::Replayable => "replayable",
                        Replay::OneShot => "one-shot",
                    };
                    let _ = write!(out, "<external payload: {len} bytes, {replay}>");
                }
            }
            escape_into(&mut out, &u.tail);
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "<end of body: {} bytes>",
        request.body().content_length()
    );
    out
}

/// The wire bytes of a body whose payload is in memory.
fn wire_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b.to_vec(),
        Body::Upload(u) => {
            let payload = u.payload.bytes().expect("payload in memory");
            [&u.head[..], payload, &u.tail[..]].concat()
        }
    }
}

/// Checks what every built request must hold whatever its snapshot says.
fn check_invariants(request: &http::Request<Body>) {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    match request.body() {
        Body::Empty => assert_eq!(declared, None, "GET without Content-Length"),
        body => assert_eq!(
            declared,
            Some(body.content_length()),
            "exact Content-Length"
        ),
    }
    assert!(
        request
            .headers()
            .get(http::header::TRANSFER_ENCODING)
            .is_none(),
        "never chunked"
    );
}

fn golden(name: &str, request: &http::Request<Body>) {
    check_invariants(request);
    let rendered = render(request);
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "golden", name]
        .iter()
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        rendered,
        expected,
        "{} differs; run with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

fn upload(media_type: MediaType, filename: &str, payload: &'static [u8]) -> UploadMedia {
    UploadMedia::from_bytes(
        media_type,
        filename,
        Bytes::from_static(payload),
        boundary(),
        &Limits::default(),
    )
    .unwrap()
}

#[test]
fn gettoken_percent_encodes_the_secret() {
    let op = GetToken::new("ww0123456789abcdef", CorpSecret::new("s3c+r/e=t&x y"));
    let request = op.build(&base());
    assert_eq!(
        request.uri().query(),
        Some("corpid=ww0123456789abcdef&corpsecret=s3c%2Br%2Fe%3Dt%26x%20y")
    );
    golden("gettoken.txt", &request);
}

#[test]
fn upload_image_with_chinese_png_name() {
    let request = upload(MediaType::Image, "测试图片.png", PNG).build(&base(), &token());
    golden("upload_image_png.txt", &request);
}

#[test]
fn upload_voice_with_chinese_amr_name() {
    let request = upload(MediaType::Voice, "语音.amr", AMR).build(&base(), &token());
    golden("upload_voice_amr.txt", &request);
}

#[test]
fn upload_video_with_space_in_name() {
    let request = upload(MediaType::Video, "视频 2026.mp4", MP4).build(&base(), &token());
    golden("upload_video_mp4.txt", &request);
}

#[test]
fn upload_file_with_quote_and_backslash_escaped() {
    let request = upload(MediaType::File, "报告\"草稿\"\\备份.pdf", PDF).build(&base(), &token());
    // The wire bytes themselves, not only the rendering: `"` → `\"`, `\` → `\\`, raw UTF-8.
    let body = wire_bytes(request.body());
    let needle = "filename=\"报告\\\"草稿\\\"\\\\备份.pdf\"; filelength=15\r\n".as_bytes();
    assert!(
        body.windows(needle.len()).any(|w| w == needle),
        "{}",
        String::from_utf8_lossy(&body)
    );
    golden("upload_file_escaped_name.txt", &request);
}

#[test]
fn upload_external_payloads() {
    let op = UploadMedia::new(
        MediaType::File,
        "归档.zip",
        Payload::External {
            len: 20 * 1024 * 1024,
            replay: Replay::Replayable,
        },
        None,
        boundary(),
        &Limits::default(),
    )
    .unwrap();
    let request = op.build(&base(), &token());
    assert!(request.body().is_replayable());
    golden("upload_external_replayable.txt", &request);

    let op = UploadMedia::new(
        MediaType::Voice,
        "stdin.amr",
        Payload::External {
            len: 4096,
            replay: Replay::OneShot,
        },
        Some(AMR),
        boundary(),
        &Limits::default(),
    )
    .unwrap();
    let request = op.build(&base(), &token());
    assert!(!request.body().is_replayable());
    golden("upload_external_one_shot.txt", &request);
}

#[test]
fn uploadimg_jpeg() {
    let op = UploadImage::new(
        "产品图.jpg",
        Payload::Bytes(Bytes::from_static(JPEG)),
        None,
        boundary(),
        &Limits::default(),
    )
    .unwrap();
    golden("uploadimg_jpg.txt", &op.build(&base(), &token()));
}

#[test]
fn get_media_whole_ranged_and_hd_voice() {
    let id = MediaId::new("1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0");
    let op = GetMedia::new(MediaEndpoint::Media, id.clone()).unwrap();
    golden("get_media.txt", &op.build(&base(), &token()));

    let op = GetMedia::new(MediaEndpoint::Media, id)
        .unwrap()
        .with_range(ByteRange {
            start: 20_000_000,
            end_inclusive: Some(39_999_999),
        })
        .unwrap();
    golden("get_media_range.txt", &op.build(&base(), &token()));

    // A media id with reserved characters is percent-encoded; so is an odd token.
    let op = GetMedia::new(MediaEndpoint::HdVoice, MediaId::new("3a+b/c=d&e")).unwrap();
    let request = op.build(&base(), &AccessToken::new("tok+/=").unwrap());
    assert_eq!(
        request.uri().query(),
        Some("access_token=tok%2B%2F%3D&media_id=3a%2Bb%2Fc%3Dd%26e")
    );
    golden("get_hd_voice.txt", &request);
}

#[test]
fn upload_by_url_json() {
    let op = UploadByUrl::new(
        MediaType::Video,
        "欢迎视频.mp4",
        "https://files.example.com/welcome.mp4?sig=a%2Bb",
        "0123456789abcdef0123456789abcdef",
        &Limits::default(),
        false,
    )
    .unwrap();
    let request = op.build(&base(), &token());
    let json: serde_json::Value = serde_json::from_slice(&wire_bytes(request.body())).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "scene": 1,
            "type": "video",
            "filename": "欢迎视频.mp4",
            "url": "https://files.example.com/welcome.mp4?sig=a%2Bb",
            "md5": "0123456789abcdef0123456789abcdef",
        })
    );
    golden("upload_by_url.txt", &request);
}

#[test]
fn upload_by_url_result_json() {
    let op = GetUploadByUrlResult::new(JobId::new(
        "jobid_S0MrnndvRG5fadSlLwiBqiDDbM143UqTmKP3152FZk4",
    ))
    .unwrap();
    golden("upload_by_url_result.txt", &op.build(&base(), &token()));
}

/// SPEC §2's official example, byte for byte: `UploadMedia` with WeCom's own boundary yields
/// exactly the documented 220-byte body and headers.
#[test]
fn official_upload_example_is_byte_exact() {
    let op = UploadMedia::from_bytes(
        MediaType::File,
        "wework.txt",
        Bytes::from_static(b"mytext"),
        Boundary::new("-------------------------acebdf13572468").unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let request = op.build(&base(), &token());
    assert_eq!(
        request.uri(),
        "https://qyapi.weixin.qq.com/cgi-bin/media/upload?access_token=accesstoken001&type=file"
    );
    assert_eq!(
        request.headers()[http::header::CONTENT_TYPE],
        "multipart/form-data; boundary=-------------------------acebdf13572468"
    );
    assert_eq!(request.headers()[http::header::CONTENT_LENGTH], "220");
    let expected = "---------------------------acebdf13572468\r\n\
Content-Disposition: form-data; name=\"media\";filename=\"wework.txt\"; filelength=6\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
mytext\r\n\
---------------------------acebdf13572468--\r\n";
    let body = wire_bytes(request.body());
    assert_eq!(body, expected.as_bytes());
    assert_eq!(body.len(), 220);
    golden("upload_official_example.txt", &request);
}
