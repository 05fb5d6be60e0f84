//! The async client: the hyper client with the safe defaults, and the state its tasks share.

use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wecom_material_core::ClientSettings;
use wecom_material_core::client_settings::FromSettings;
use wecom_material_core::shared_token::AsyncTokenStore;
use wecom_material_host::Shared;

use crate::run::HttpClient;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    type Store = dyn AsyncTokenStore;

    /// Builds the client. Needs no runtime; the client's futures run on tokio.
    fn from_settings(settings: ClientSettings, store: Option<Arc<Self::Store>>) -> Client {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.json_timeout));
        // An explicit provider: rustls never has to guess between ring and aws-lc-rs.
        // rustls 0.23.48 deprecates ring's provider (no post-quantum key exchange); ring stays
        // the one provider of the tree (ureq 3's rustls uses it too; aws-lc-rs doubles the
        // TLS build time), so the warning every fresh build printed is silenced here, on
        // purpose.
        #[allow(deprecated)]
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .expect("ring supports rustls' default protocol versions");
        // Plain http only when the configured base URL is http.
        let tls = match settings.base.is_https() {
            true => tls.https_only(),
            false => tls.https_or_http(),
        };
        let connector = tls.enable_http1().wrap_connector(http);
        // The legacy client follows no redirects: the token in the query never goes elsewhere.
        let http: HttpClient = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Idle pooled connections are closed after the default 90 s, by this timer.
            .pool_timer(TokioTimer::new())
            .build(connector);
        Client(Arc::new(Inner {
            shared: Shared::new(settings, store),
            http,
        }))
    }
}

/// An async WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of tasks make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client(pub(crate) Arc<Inner>);

/// What the tasks of one client share: what every client shares (the core's state behind a
/// lock never held across an await), and the hyper client.
pub(crate) struct Inner {
    pub(crate) shared: Shared<dyn AsyncTokenStore>,
    pub(crate) http: HttpClient,
}

wecom_material_host::client_accessors!(Client);
