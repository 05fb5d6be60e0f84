//! The async reqwest example is a full transport: it passes the conformance kit, and its
//! command line does what it says against the emulator.

#[allow(dead_code)] // its `main`
#[path = "../examples/reqwest_transport.rs"]
mod example;

use std::io::Write;
use std::sync::Arc;

use wecom_material_conformance::{AsyncTransport, Io, JobEventsDelivery, Sink, Source};
use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::shared_token::AsyncTokenStore;
use wecom_material_core::{Error, Task, Transfer};
use wecom_material_mock::{Endpoint, MockConfig, MockServer};

/// The example's client as the kit's transport.
struct Reqwest(example::Stack);

impl AsyncTransport for Reqwest {
    async fn run<T: Task + Send>(
        &self,
        task: &mut T,
        io: Io<'_>,
        t: &Transfer,
    ) -> Result<T::Output, Error> {
        // The example reads a payload from a file: a one-shot reader's bytes go into one
        // (the core, not the source, decides that it is never sent twice).
        let file = io.source.map(|source| match source {
            Source::File(file) => file,
            Source::Once(bytes) => {
                let mut file = tempfile::tempfile().expect("a temporary file");
                file.write_all(&bytes).expect("written");
                file
            }
        });
        let io = match io.sink {
            Sink::None => example::io(file, std::io::empty(), t),
            Sink::Memory(out) => example::io(file, out, t),
            Sink::File(file_sink) => example::io(file, file_sink, t),
        };
        self.0.run(task, &io).await
    }
}

impl JobEventsDelivery for Reqwest {
    fn job_finished(&self, event: &CallbackEvent) {
        self.0.shared.job_events().notify(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_example_passes_the_conformance_kit() {
    wecom_material_conformance::run_async(|settings, store| {
        let store = store.map(|store| store as Arc<dyn AsyncTokenStore>);
        Reqwest(example::Stack::new(settings, store).expect("a reqwest client"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_round_trips_and_downloads_a_media_with_ranges_at_once() {
    // One answer at a time per media: a second range in flight is refused (45033), which
    // shows the ranges run at once; the download adapts and completes.
    let mock = MockServer::start(MockConfig {
        max_concurrent_per_media: Some(1),
        bandwidth: Some(50_000_000),
        ..MockConfig::default()
    });
    let media = wecom_material_mock::samples::noise(6_000_000);
    let id = mock.insert_media(media.clone(), "video/mp4", "大.mp4");
    let args = [
        mock.base_url(),
        "ww-mock-corp".into(),
        "mock-secret".into(),
        id.clone(),
    ];
    example::run(&args).await.unwrap();

    let gets = mock.requests_to(Endpoint::Get);
    let back = gets[0]
        .query_param("media_id")
        .expect("the round trip's download");
    let stored = mock.media(&back).expect("the uploaded media");
    assert_eq!(stored.filename, "样例.bin");
    assert_eq!(stored.bytes.len(), 1_000_000);
    assert_eq!(mock.count(Endpoint::Upload), 1);
    let mine = |r: &&wecom_material_mock::RecordedRequest| {
        r.query_param("media_id").as_deref() == Some(id.as_str()) && r.errcode.is_none()
    };
    let ranges: Vec<_> = gets.iter().filter(mine).collect();
    let covered: u64 = ranges.iter().map(|r| r.response_len.unwrap_or(0)).sum();
    assert_eq!(covered, media.len() as u64, "every byte once");
    assert!(ranges.iter().all(|r| r.range().is_some()), "in ranges");
    assert!(mock.throttled() >= 1, "never two ranges in flight");
}
