//! Edge cases of the download plan driven by response heads as a transport sees them.

use wecom_material_core::download::plan::Mode;
use wecom_material_core::{Download, MediaEndpoint, MediaHead, MediaId};

fn head(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

/// A 200 with `Content-Length: 0` has a body that delivers no bytes, so a transport never
/// reports any: the download is complete as soon as the head is taken, and the body's end is
/// not "0 bytes early".
#[test]
fn empty_whole_media_completes_without_body_bytes() {
    let mut download = Download::new(MediaEndpoint::Media, MediaId::new("m"), 1000).unwrap();
    let request = download.next_request().unwrap();
    let parts = head(
        200,
        &[("content-type", "image/jpeg"), ("content-length", "0")],
    );
    let MediaHead::Media(info) = request.classify(&parts).unwrap() else {
        panic!("classified as error")
    };
    assert_eq!(download.on_media(&info).unwrap(), 0);
    download.on_body_end().unwrap();
    assert!(download.is_complete());
    assert!(download.next_request().is_none());
    assert_eq!(download.mode(), Mode::Whole);
}

/// A server that sends the whole media for a chunk request starting at 0 is accepted, and the
/// plan completes after that one response.
#[test]
fn whole_answer_to_a_first_chunk_completes() {
    let mut download = Download::new(MediaEndpoint::Media, MediaId::new("m"), 4)
        .unwrap()
        .chunked();
    let request = download.next_request().unwrap();
    assert_eq!(request.range().unwrap().header_value(), "bytes=0-3");
    let parts = head(
        200,
        &[("content-type", "video/mp4"), ("content-length", "10")],
    );
    let MediaHead::Media(info) = request.classify(&parts).unwrap() else {
        panic!("classified as error")
    };
    assert_eq!(download.on_media(&info).unwrap(), 10);
    download.on_bytes(10).unwrap();
    download.on_body_end().unwrap();
    assert!(download.is_complete());
    assert_eq!(download.total(), Some(10));
}
