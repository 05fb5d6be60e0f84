//! gettoken and token checks on business calls.

mod support;

use std::time::Duration;

use support::*;
use wecom_material_mock::{App, Clock, Endpoint, MockConfig, MockServer};

fn config() -> MockConfig {
    MockConfig {
        apps: vec![
            App::new("corpA", "s3cret+/="),
            App::new("corpA", "other-app"),
        ],
        clock: Clock::manual(1_700_000_000),
        ..MockConfig::default()
    }
}

#[test]
fn issues_one_token_per_app_and_checks_credentials() {
    let mock = MockServer::start(config());
    let a = mock.addr();
    let r = get(
        a,
        "/cgi-bin/gettoken?corpid=corpA&corpsecret=s3cret%2B%2F%3D",
    );
    assert_eq!(r.errcode(), 0);
    assert_eq!(r.json()["errmsg"], "ok");
    assert_eq!(r.json()["expires_in"], 7200);
    let t1 = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!t1.is_empty() && t1.len() <= 512);
    // Same token while valid.
    let again = get(
        a,
        "/cgi-bin/gettoken?corpid=corpA&corpsecret=s3cret%2B%2F%3D",
    );
    assert_eq!(again.json()["access_token"], t1.as_str());
    // The other app of the same corp has its own token.
    let other = get(a, "/cgi-bin/gettoken?corpid=corpA&corpsecret=other-app");
    assert_ne!(other.json()["access_token"], t1.as_str());
    // A raw `+` decodes to a space: wrong secret.
    assert_eq!(
        get(a, "/cgi-bin/gettoken?corpid=corpA&corpsecret=s3cret+/=").errcode(),
        40001
    );
    assert_eq!(
        get(a, "/cgi-bin/gettoken?corpid=corpA&corpsecret=nope").errcode(),
        40001
    );
    assert_eq!(
        get(a, "/cgi-bin/gettoken?corpid=corpB&corpsecret=nope").errcode(),
        40013
    );
    assert_eq!(get(a, "/cgi-bin/gettoken?corpsecret=nope").errcode(), 41002);
    assert_eq!(get(a, "/cgi-bin/gettoken?corpid=corpA").errcode(), 41004);
    assert_eq!(mock.count(Endpoint::GetToken), 8);
}

#[test]
fn business_calls_check_the_token_and_it_expires_on_the_clock() {
    let mock = MockServer::start(config());
    let a = mock.addr();
    let t = mock.access_token("corpA").unwrap();
    let id = mock.insert_media(&b"0123456789"[..], "text/plain", "a.txt");
    assert_eq!(
        get(a, &format!("/cgi-bin/media/get?media_id={}", enc(&id))).errcode(),
        41001
    );
    assert_eq!(
        get(
            a,
            &format!("/cgi-bin/media/get?access_token=&media_id={}", enc(&id))
        )
        .errcode(),
        41001
    );
    assert_eq!(
        get(
            a,
            &format!(
                "/cgi-bin/media/get?access_token=bogus&media_id={}",
                enc(&id)
            )
        )
        .errcode(),
        40014
    );
    assert_eq!(
        get(
            a,
            &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id))
        )
        .status,
        200
    );

    mock.clock().advance(Duration::from_secs(7199));
    let r = get(
        a,
        &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id)),
    );
    assert_eq!(r.body, b"0123456789");
    let left = get(
        a,
        "/cgi-bin/gettoken?corpid=corpA&corpsecret=s3cret%2B%2F%3D",
    );
    assert_eq!(left.json()["access_token"], t.as_str());
    assert_eq!(left.json()["expires_in"], 1);

    mock.clock().advance(Duration::from_secs(1));
    assert_eq!(
        get(
            a,
            &format!("/cgi-bin/media/get?access_token={t}&media_id={}", enc(&id))
        )
        .errcode(),
        42001
    );
    let fresh = mock.access_token("corpA").unwrap();
    assert_ne!(fresh, t);
    assert_eq!(
        get(
            a,
            &format!(
                "/cgi-bin/media/get?access_token={fresh}&media_id={}",
                enc(&id)
            )
        )
        .body,
        b"0123456789"
    );

    mock.revoke_tokens();
    assert_eq!(
        get(
            a,
            &format!(
                "/cgi-bin/media/get?access_token={fresh}&media_id={}",
                enc(&id)
            )
        )
        .errcode(),
        40014
    );
}

#[test]
fn configurable_lifetime_and_redacted_secret() {
    let mock = MockServer::start(MockConfig {
        token_lifetime: Duration::from_secs(60),
        ..config()
    });
    let r = get(
        mock.addr(),
        "/cgi-bin/gettoken?corpid=corpA&corpsecret=other-app",
    );
    assert_eq!(r.json()["expires_in"], 60);
    let debug = format!("{:?} {:?}", mock.config(), *mock);
    assert!(
        !debug.contains("s3cret") && !debug.contains("other-app"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
}
