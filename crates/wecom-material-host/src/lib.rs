#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod files;
mod running;
pub mod save;
mod shared;

pub use files::{FileSink, Opened, md5_file, open_file, open_upload};
pub use running::Running;
pub use save::{BatchNames, Overwrite, SaveJob, SaveOptions, Saved};
pub use shared::{JobEvents, Shared};

/// The methods every client has that only reach the shared part (a client is a tuple struct
/// around an `Arc` of a struct with a `shared: Shared<_>` field, with a `ClientBuilder`
/// alias in scope): written once here, for both clients.
#[macro_export]
macro_rules! client_accessors {
    ($client:ty) => {
        impl $client {
            /// Starts configuring a client for one app (corp id and that app's secret).
            pub fn builder(corp_id: impl Into<String>, secret: impl Into<String>) -> ClientBuilder {
                ClientBuilder::new(corp_id, secret)
            }

            /// The base URL requests go to.
            pub fn base_url(&self) -> &$crate::__core::BaseUrl {
                &self.0.shared.settings.base
            }

            /// The handle that feeds received callback events to the calls waiting in
            /// `wait_job` on this client and its clones (safe to call from any thread).
            pub fn job_events(&self) -> $crate::JobEvents {
                self.0.shared.job_events()
            }

            /// The cached token, for a store shared between processes (the CLI's token
            /// file).
            pub fn export_token(&self) -> Option<$crate::__core::StoredToken> {
                self.0.shared.export_token()
            }

            /// Seeds the cache with a token from a shared store.
            pub fn import_token(&self, stored: $crate::__core::StoredToken) {
                self.0.shared.import_token(stored);
            }
        }

        impl std::fmt::Debug for $client {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($client))
                    .field("base", self.base_url())
                    .finish_non_exhaustive()
            }
        }
    };
}

#[doc(hidden)]
pub use wecom_material_core as __core;
