//! `rediss://`: a real redis-server that speaks TLS only, with a certificate of a private CA
//! made for the test (rcgen). The store trusts that CA when it is given one
//! (`open_with_root_ca`) and refuses the server otherwise: verification is on. Feature `tls`.

#![cfg(feature = "tls")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use wecom_material_core::{DownloadOptions, ErrCode, MediaId};
use wecom_material_mock::{App, Endpoint, MockConfig, MockServer};
use wecom_material_redis::test_server::RedisServer;
use wecom_material_redis::{
    AppKeys, LookupReply, RedisTokenStore, SharedTokenPolicy, StoreCommand, StoreReply, TokenStore,
};

const CORP: &str = "ww-tls-corp";
const SECRET: &str = "tls-SECRET-0123456789";
const TIMEOUT: Duration = Duration::from_secs(2);

/// A CA and a server certificate for 127.0.0.1 signed by it, written to a fresh folder.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("wecom-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        Pki { dir, ca_pem }
    }

    fn server(&self) -> RedisServer {
        RedisServer::start_tls(&self.dir.join("server.pem"), &self.dir.join("server.key"))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mock() -> MockServer {
    MockServer::start(MockConfig {
        apps: vec![App::new(CORP, SECRET)],
        ..MockConfig::default()
    })
}

#[test]
fn clients_share_the_token_through_a_tls_store_of_a_private_ca() {
    let pki = Pki::new("shared");
    let redis = pki.server();
    assert!(redis.url().starts_with("rediss://127.0.0.1:"));
    let mock = mock();
    let client = || {
        let builder = wecom_material_ureq::Client::builder(CORP, SECRET)
            .base_url(&mock.base_url())
            .unwrap();
        let keys = AppKeys::for_client(builder.settings());
        let store =
            RedisTokenStore::open_with_root_ca(&redis.url(), keys, TIMEOUT, pki.ca_pem.as_bytes())
                .unwrap();
        let policy = SharedTokenPolicy {
            fallback: wecom_material_redis::Fallback::Fail,
            ..SharedTokenPolicy::default()
        };
        builder.token_store(Arc::new(store), policy).build()
    };
    // Two clients ("processes"): a business call each that needs an accepted token (an
    // unknown media answers 40007 then). With `Fallback::Fail`, a store that could not be
    // reached over TLS would fail the call instead.
    for c in [client(), client()] {
        let error = c
            .get(&MediaId::new("none"), DownloadOptions::default())
            .unwrap_err();
        assert_eq!(error.errcode(), Some(ErrCode::InvalidMediaId), "{error}");
    }
    assert_eq!(mock.count(Endpoint::GetToken), 1);

    // The token is in the TLS server.
    let keys = AppKeys::from_parts(&mock.base_url(), CORP, SECRET);
    let store =
        RedisTokenStore::open_with_root_ca(&redis.url(), keys, TIMEOUT, pki.ca_pem.as_bytes())
            .unwrap();
    let lookup = store.run(StoreCommand::Lookup {
        lease: Duration::from_secs(30),
    });
    assert!(
        matches!(lookup, Ok(StoreReply::Lookup(LookupReply::Ready(_)))),
        "{lookup:?}"
    );
}

#[test]
fn a_tls_store_whose_ca_is_not_trusted_is_refused() {
    let pki = Pki::new("untrusted");
    let redis = pki.server();
    // The system's trust store does not hold the test's CA.
    let keys = AppKeys::from_parts("http://127.0.0.1:1", CORP, SECRET);
    let store = RedisTokenStore::open_with_timeout(&redis.url(), keys, TIMEOUT).unwrap();
    let error = store
        .run(StoreCommand::Lookup {
            lease: Duration::from_secs(30),
        })
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("token store: {}: ", redis.url())),
        "{text}"
    );
    assert!(text.contains("certificate"), "{text}");

    // Another CA's certificate is refused just the same.
    let other = Pki::new("other-ca");
    let keys = AppKeys::from_parts("http://127.0.0.1:1", CORP, SECRET);
    let store =
        RedisTokenStore::open_with_root_ca(&redis.url(), keys, TIMEOUT, other.ca_pem.as_bytes())
            .unwrap();
    let error = store
        .run(StoreCommand::Lookup {
            lease: Duration::from_secs(30),
        })
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
}
