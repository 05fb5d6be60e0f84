//! The conformance kit against the async client: its `run` drives the kit's tasks.

use std::io::Cursor;
use std::sync::Arc;

use wecom_material_conformance::{AsyncTransport, Io, JobEventsDelivery, Sink, Source};
use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::client_settings::FromSettings;
use wecom_material_core::shared_token::AsyncTokenStore;
use wecom_material_core::{Error, Task, Transfer};
use wecom_material_hyper::{Client, FileSink};

/// The async client as the kit's transport: the kit's source and sink become its own.
struct Hyper(Client);

impl AsyncTransport for Hyper {
    fn run<T: Task + Send>(
        &self,
        task: &mut T,
        io: Io<'_>,
        t: &Transfer,
    ) -> impl Future<Output = Result<T::Output, Error>> {
        use wecom_material_hyper::{Sink as To, Source as From};
        let source = io.source.map(|source| match source {
            Source::File(file) => From::File(file),
            Source::Once(bytes) => From::Reader(Some(Box::new(Cursor::new(bytes)))),
        });
        let sink = match io.sink {
            Sink::None => To::None,
            Sink::Memory(out) => To::Stream(out),
            Sink::File(file) => To::File(FileSink::new(file)),
        };
        self.0.drive(task, source, sink, t)
    }
}

impl JobEventsDelivery for Hyper {
    fn job_finished(&self, event: &CallbackEvent) {
        self.0.job_events().notify(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_client_passes_the_conformance_kit() {
    wecom_material_conformance::run_async(|settings, store| {
        let store = store.map(|store| store as Arc<dyn AsyncTokenStore>);
        Hyper(Client::from_settings(settings, store))
    })
    .await;
}
