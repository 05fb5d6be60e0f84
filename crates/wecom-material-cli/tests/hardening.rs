//! Issue 10 at the command line: secrets kept off the command line, rejected tokens not kept,
//! downloads that cannot corrupt. Every test runs the built binary against servers on
//! 127.0.0.1 only.

mod support;

use std::process::Command;

use support::{BIN, World, arg};
use wecom_material_mock::{Endpoint, Fault};

/// The entries of the token cache file (an empty map when the file is absent).
fn cache_entries(w: &World) -> usize {
    match std::fs::read(&w.cache) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .expect("the cache is a JSON object")
            .len(),
        Err(_) => 0,
    }
}

const CB_TOKEN: &str = "QDG6eK";
const CB_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

/// `callback decrypt` takes the callback token and AES key from the environment, and its help
/// never shows their values.
#[test]
fn callback_decrypt_reads_token_and_aes_key_from_the_environment() {
    let run: support::Run = Command::new(BIN)
        .env("WECOM_CALLBACK_TOKEN", CB_TOKEN)
        .env("WECOM_CALLBACK_AES_KEY", CB_AES_KEY)
        .args(["--json", "callback", "decrypt"])
        .args([
            "--receive-id",
            "wx5823bf96d3bd56c7",
            "--signature",
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "--timestamp",
            "1409659589",
            "--nonce",
            "263014780",
            "--echostr",
            "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["plaintext"], "1616140317555161061");

    let help: support::Run = Command::new(BIN)
        .env("WECOM_CALLBACK_TOKEN", CB_TOKEN)
        .env("WECOM_CALLBACK_AES_KEY", CB_AES_KEY)
        .args(["callback", "decrypt", "--help"])
        .output()
        .unwrap()
        .into();
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("WECOM_CALLBACK_AES_KEY"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains(CB_AES_KEY) && !help.stdout.contains(CB_TOKEN));
}

/// A run that ends with a token rejection (after its one refresh) drops the cached token, so
/// the next run fetches a fresh one instead of failing with the rejected one.
#[test]
fn a_rejected_token_is_not_kept_in_the_cache_file() {
    let w = World::new("rejected-token");
    let id = w.mock.insert_media(support::jpeg(), "image/jpeg", "a.jpg");
    let run = w.run(["get", &id, "--output", &arg(&w.dir.join("first.jpg"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(cache_entries(&w), 1);
    for (i, code) in [40001, 40014, 42001].into_iter().enumerate() {
        w.mock
            .fault(Endpoint::Get, Fault::Errcode { code, times: 2 });
        let out = w.dir.join(format!("fail-{i}.jpg"));
        let run = w.run(["get", &id, "--output", &arg(&out)]);
        assert_eq!(run.code, 1, "{code}: {}", run.stderr);
        assert!(run.stderr.contains(&code.to_string()), "{}", run.stderr);
        assert_eq!(cache_entries(&w), 0, "{code}: the rejected token was kept");
        assert!(!out.exists());
        // The next run works with a fresh token, and caches it.
        let run = w.run([
            "get",
            &id,
            "--output",
            &arg(&w.dir.join(format!("ok-{i}.jpg"))),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(cache_entries(&w), 1);
    }
}
