//! Micro-benchmarks of the sans-IO core: what a call costs before and after the network.
//!
//! `cargo bench -p wecom-material-benches --bench core -- --quick`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use wecom_material_core::body::Payload;
use wecom_material_core::body::Replay;
use wecom_material_core::internals::TokenCache;
use wecom_material_core::multipart::Boundary;
use wecom_material_core::operation::Operation;
use wecom_material_core::ops::get_media::GetMedia;
use wecom_material_core::ops::get_media::MediaEndpoint;
use wecom_material_core::ops::upload_media::UploadMedia;
use wecom_material_core::{AccessToken, BaseUrl, Limits, MediaId, MediaType};

fn build_upload(c: &mut Criterion) {
    let base = BaseUrl::default();
    let token = AccessToken::new("a".repeat(200)).unwrap();
    let payload = Bytes::from(wecom_material_benches::sample_bytes(20_000_000));
    // Framing a 20 MB upload must cost the same as framing a tiny one: the payload is shared,
    // never copied.
    c.bench_function("build upload request, 20 MB payload in memory", |b| {
        b.iter(|| {
            let op = UploadMedia::from_bytes(
                MediaType::File,
                "报告.pdf",
                payload.clone(),
                Boundary::from_entropy([1; 16]),
                &Limits::default(),
            )
            .unwrap();
            black_box(op.build(&base, &token))
        })
    });
    c.bench_function("build upload request, 20 MB streamed from a file", |b| {
        b.iter(|| {
            let op = UploadMedia::new(
                MediaType::File,
                "报告.pdf",
                Payload::External {
                    len: 20_000_000,
                    replay: Replay::Replayable,
                },
                None,
                Boundary::from_entropy([1; 16]),
                &Limits::default(),
            )
            .unwrap();
            black_box(op.build(&base, &token))
        })
    });
}

fn classify_head(c: &mut Criterion) {
    let request = GetMedia::new(MediaEndpoint::Media, MediaId::new("m")).unwrap();
    let (head, ()) = http::Response::builder()
        .status(200)
        .header("content-type", "application/vnd.ms-excel")
        .header("content-length", "339721")
        .header(
            "content-disposition",
            http::HeaderValue::from_bytes(
                "attachment; filename*=utf-8''%E6%B5%8B%E8%AF%95.xlsx; filename=\"测试.xlsx\""
                    .as_bytes(),
            )
            .unwrap(),
        )
        .body(())
        .unwrap()
        .into_parts();
    c.bench_function("classify a media head (both filename forms)", |b| {
        b.iter(|| black_box(request.classify(black_box(&head)).unwrap()))
    });
}

fn token_lookup(c: &mut Criterion) {
    let mut cache = TokenCache::new(wecom_material_core::ops::gettoken::GetToken::new(
        "ww",
        wecom_material_core::CorpSecret::new("s"),
    ));
    let t0 = Instant::now();
    let wecom_material_core::internals::TokenLookup::Fetch(ticket) = cache.lookup(t0) else {
        unreachable!()
    };
    let answer =
        http::Response::new(&br#"{"errcode":0,"access_token":"tok","expires_in":7200}"#[..]);
    cache.complete_refresh(ticket, t0, answer).unwrap();
    let now = t0 + Duration::from_secs(60);
    c.bench_function("token cache lookup (hit)", |b| {
        b.iter(|| black_box(cache.lookup(now)))
    });
}

criterion_group!(benches, build_upload, classify_head, token_lookup);
criterion_main!(benches);
