//! The blocking client: its agents with the safe defaults, over the state every client shares.

use std::sync::Arc;

use wecom_material_core::client_settings::FromSettings;
use wecom_material_core::{ClientSettings, TokenStore};
use wecom_material_host::Shared;

/// Configures a [`Client`]: `Client::builder(corp_id, secret)…build()`.
pub type ClientBuilder = wecom_material_core::ClientBuilder<Client>;

impl FromSettings for Client {
    type Store = dyn TokenStore;

    /// Two agents: JSON calls under one overall timeout, media transfers under an idle timeout
    /// only; neither follows redirects (the token is in the query string) nor turns HTTP
    /// statuses into errors (the core reads them).
    fn from_settings(settings: ClientSettings, store: Option<Arc<Self::Store>>) -> Client {
        let config = || {
            let agent = ureq::Agent::config_builder().http_status_as_error(false);
            agent.max_redirects(0).user_agent(USER_AGENT)
        };
        let json_agent = config().timeout_global(Some(settings.json_timeout)).build();
        let idle = Some(settings.media_idle_timeout);
        let media_agent = config().timeout_connect(Some(settings.json_timeout));
        let media_agent = media_agent
            .timeout_per_read(idle)
            .timeout_per_write(idle)
            .build();
        Client(Arc::new(Inner {
            shared: Shared::new(settings, store),
            json_agent: json_agent.into(),
            media_agent: media_agent.into(),
        }))
    }
}

const USER_AGENT: &str = concat!("wecom-material/", env!("CARGO_PKG_VERSION"), " (ureq)");

/// A blocking WeCom material client for one app. Cheap to clone; clones share the connection
/// pool and the token cache, so any number of threads make one `gettoken` call between them.
#[derive(Clone)]
pub struct Client(pub(crate) Arc<Inner>);

/// What the calls of one client share: what every client shares, and the agents.
pub(crate) struct Inner {
    pub(crate) shared: Shared<dyn TokenStore>,
    pub(crate) json_agent: ureq::Agent,
    pub(crate) media_agent: ureq::Agent,
}

wecom_material_host::client_accessors!(Client);
