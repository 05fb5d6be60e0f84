//! Edge cases of the download plan driven by response heads as a transport sees them.

use super::names::{Download, MediaEndpoint, MediaHead, MediaId};
use crate::download::plan::Mode;

/// A response head as a transport hands it over (also for the operations' own tests).
pub(crate) fn head(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
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

fn media_info(
    request: &super::names::GetMedia,
    parts: &http::response::Parts,
) -> super::names::MediaInfo {
    match request.classify(parts).unwrap() {
        MediaHead::Media(info) => info,
        MediaHead::Error => panic!("classified as error"),
    }
}

/// Issue 10: a 200 answer without `Content-Length` (chunked) is streamed to its end and its
/// length becomes the total.
#[test]
fn whole_media_without_content_length_is_read_to_the_end() {
    use super::names::Expect;
    let mut download = Download::new(MediaEndpoint::Media, MediaId::new("m"), 1000).unwrap();
    let request = download.next_request().unwrap();
    let info = media_info(
        &request,
        &head(
            200,
            &[
                ("content-type", "image/png"),
                ("transfer-encoding", "chunked"),
            ],
        ),
    );
    assert_eq!(download.on_media_head(&info).unwrap(), Expect::UntilEnd);
    assert!(!download.is_complete());
    download.on_bytes(4000).unwrap();
    download.on_bytes(1234).unwrap();
    assert!(!download.is_complete());
    download.on_body_end().unwrap();
    assert!(download.is_complete());
    assert_eq!(download.total(), Some(5234));
    assert!(download.next_request().is_none());
}

/// Issue 10: `Content-Range: bytes a-b/*` does not dead-end: a chunk shorter than asked is
/// the last one; a full chunk that happens to end the media is followed by a 416 naming the
/// same total, which completes the download.
#[test]
fn unknown_total_in_content_range_is_learned_from_a_short_chunk_or_a_416() {
    let mut download = Download::new(MediaEndpoint::Media, MediaId::new("m"), 10)
        .unwrap()
        .chunked();
    let mut served = 0u64;
    while let Some(request) = download.next_request() {
        let range = request.range().unwrap();
        assert_eq!(range.start, served);
        // 25 bytes in all, the total never named.
        let last = range.end_inclusive.unwrap().min(24);
        let cr = format!("bytes {}-{last}/*", range.start);
        let len = (last - range.start + 1).to_string();
        let info = media_info(
            &request,
            &head(206, &[("content-range", &cr), ("content-length", &len)]),
        );
        let n = download.on_media(&info).unwrap();
        download.on_bytes(n).unwrap();
        download.on_body_end().unwrap();
        served += n;
        assert!(served <= 25, "asked past the end");
    }
    assert_eq!((download.offset(), download.total()), (25, Some(25)));

    // 20 bytes: the second chunk ends exactly where asked; the third request gets a 416.
    let mut download = Download::new(MediaEndpoint::Media, MediaId::new("m"), 10)
        .unwrap()
        .chunked();
    for start in [0u64, 10] {
        let request = download.next_request().unwrap();
        let cr = format!("bytes {start}-{}/*", start + 9);
        let info = media_info(
            &request,
            &head(206, &[("content-range", &cr), ("content-length", "10")]),
        );
        let n = download.on_media(&info).unwrap();
        download.on_bytes(n).unwrap();
        download.on_body_end().unwrap();
    }
    assert_eq!(download.next_request().unwrap().range().unwrap().start, 20);
    // A 416 naming another total is an error; the same total completes.
    assert!(download.clone().on_range_not_satisfiable(Some(30)).is_err());
    assert!(download.clone().on_range_not_satisfiable(None).is_err());
    download.on_range_not_satisfiable(Some(20)).unwrap();
    assert!(download.is_complete());
    assert!(download.next_request().is_none());

    // A 416 completes a download only past its first byte: one to the first request is an
    // error, even naming a total of 0.
    let mut fresh = Download::new(MediaEndpoint::Media, MediaId::new("m"), 10)
        .unwrap()
        .chunked();
    assert_eq!(fresh.next_request().unwrap().range().unwrap().start, 0);
    assert!(fresh.on_range_not_satisfiable(Some(0)).is_err());
    assert!(!fresh.is_complete());
}
