//! The conformance kit against the blocking client: its `run` drives the kit's tasks.

use std::io::Cursor;
use std::sync::Arc;

use wecom_material_conformance::{BlockingTransport, Io, JobEventsDelivery, Sink, Source};
use wecom_material_core::callback::CallbackEvent;
use wecom_material_core::client_settings::FromSettings;
use wecom_material_core::{Error, Task, TokenStore, Transfer};
use wecom_material_ureq::{Client, FileSink};

/// The blocking client as the kit's transport: the kit's source and sink become its own.
struct Ureq(Client);

impl BlockingTransport for Ureq {
    fn run<T: Task>(&self, task: &mut T, io: Io<'_>, t: &Transfer) -> Result<T::Output, Error> {
        use wecom_material_ureq::{Sink as To, Source as From};
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

impl JobEventsDelivery for Ureq {
    fn job_finished(&self, event: &CallbackEvent) {
        self.0.job_events().notify(event);
    }
}

#[test]
fn the_blocking_client_passes_the_conformance_kit() {
    wecom_material_conformance::run_blocking(|settings, store| {
        let store = store.map(|store| store as Arc<dyn TokenStore>);
        Ureq(Client::from_settings(settings, store))
    });
}
