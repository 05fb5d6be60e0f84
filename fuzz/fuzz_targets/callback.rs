//! Callback verify + decrypt + parse on arbitrary input: none of it may panic.
//!
//! Input layout: byte 0 picks the method (even: POST, odd: GET); the rest is split at the
//! first 0xFF into the query string and the body. The body is also fed straight to the
//! decrypter and the event parser, so that the stages behind the signature check (which
//! random input never passes) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wecom_material_core::callback::{
    CallbackConfig, CallbackHandler, decrypt, parse_envelope, parse_event,
};

/// The official sample configuration (SPEC §8).
fn handler() -> &'static CallbackHandler {
    static HANDLER: OnceLock<CallbackHandler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let config = CallbackConfig::new(
            "QDG6eK",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
            "wx5823bf96d3bd56c7",
        )
        .expect("the sample key parses");
        CallbackHandler::new(config)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let method = if selector % 2 == 0 {
        http::Method::POST
    } else {
        http::Method::GET
    };
    let (query, body) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let handler = handler();
    let _ = handler.handle(&method, &query, body);

    let _ = parse_envelope(body);
    let _ = parse_event(body);
    let config = handler.config();
    let _ = decrypt(&config.aes_key, &query, &config.receive_id);
});
