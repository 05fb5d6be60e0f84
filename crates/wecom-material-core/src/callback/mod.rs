//! The job-finished callback: verify, decrypt and parse WeCom's encrypted callbacks (SPEC §8).
//!
//! When an async `upload_by_url` job ends, WeCom POSTs an encrypted `upload_media_job_finish`
//! event to the app's callback URL; when the URL is configured, it first checks it with a GET.
//! This module does both sides of that exchange without I/O, clock or randomness: the caller
//! hands in the request's method, query and body (and, to *produce* events, the 16 random
//! bytes), and gets back the reply to send and the parsed event.
//!
//! # Crypto layout
//! The app configuration holds a `Token` and a 43-character `EncodingAESKey`
//! ([`CallbackConfig`]).
//!
//! - **Key** ([`EncodingAesKey`]): `base64_decode(EncodingAESKey + "=")`, 32 bytes. Real keys
//!   carry non-zero trailing bits in their 43rd character, so they are decoded with trailing
//!   bits allowed.
//! - **Signature** ([`signature`], [`verify_signature`]): lower-case hex
//!   `sha1(concat(sort_bytewise([token, timestamp, nonce, encrypted])))`, compared in constant
//!   time.
//! - **Cipher** ([`encrypt`], [`decrypt`]): AES-256-CBC, IV = the first 16 key bytes, no
//!   cipher-level padding. The plaintext is
//!   `random16 ‖ u32_be(len(msg)) ‖ msg ‖ receive_id`, padded PKCS#7-style to a multiple of
//!   **32** bytes (pad 1..=32), and travels as standard base64. Decryption checks the block
//!   alignment, every padding byte, that the declared length fits, and that the trailing
//!   receive id is the expected one (the corp id for a self-built app, the suite id for a
//!   third-party suite).
//!
//! # The handler's flow
//! [`CallbackHandler::handle`] takes `(method, query, body)`:
//!
//! ```text
//! GET  ?msg_signature=S&timestamp=T&nonce=N&echostr=E      (URL check)
//!   query values percent-decoded once
//!   verify S over (token, T, N, E)  ── mismatch ──> BadSignature
//!   decrypt E                       ── failure  ──> BadBase64 / BadPadding / ...
//!   reply 200, body = the plaintext alone (no quotes, BOM or newline), event = None
//!
//! POST ?msg_signature=S&timestamp=T&nonce=N                 (event delivery)
//!   body longer than the limit      ──> BodyTooLarge (checked before anything else)
//!   body <xml>…<Encrypt>X</Encrypt></xml> parsed ── no Encrypt ──> MissingParameter
//!   verify S over (token, T, N, X), decrypt X, parse the decrypted XML into a CallbackEvent
//!   reply 200 with an empty body, event = Some(event)
//!
//! any other method                  ──> MethodNotAllowed
//! ```
//!
//! An error's [`CallbackError::status`] is the HTTP status to answer with. WeCom retries a
//! delivery that got no 200 within 5 s (3 times), so the same job can arrive more than once:
//! feed events through a [`JobDeduplicator`].
//!
//! The reverse direction, used by the emulator and tests, is [`build_event_request`] with
//! [`event_xml_upload_media_job_finish`].
//!
//! ```
//! use wecom_material_core::callback::*;
//! use wecom_material_core::JobId;
//!
//! let config = CallbackConfig::new("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
//!     "wx5823bf96d3bd56c7").unwrap();
//! let xml = event_xml_upload_media_job_finish("wx5823bf96d3bd56c7", 1425284517,
//!     &JobId::new("jobid_1"));
//! let request = build_event_request(&config, &"http://127.0.0.1:8080/cb".parse().unwrap(),
//!     "1409659813", "1372623149", [7; 16], &xml).unwrap();
//!
//! let handler = CallbackHandler::new(config);
//! let reply = handler
//!     .handle(request.method(), request.uri().query().unwrap_or(""), request.body())
//!     .unwrap();
//! assert_eq!(reply.status, http::StatusCode::OK);
//! assert_eq!(reply.event.unwrap().job_id().unwrap().as_str(), "jobid_1");
//! ```

mod cipher;
mod config;
mod dedup;
mod error;
mod event;
mod handler;
mod signature;
mod xml;

pub use cipher::{EncodingAesKey, decrypt, encrypt};
pub use config::{CallbackConfig, CallbackToken};
pub use dedup::JobDeduplicator;
pub use error::CallbackError;
pub use event::{
    CallbackEvent, Envelope, UPLOAD_MEDIA_JOB_FINISH, envelope_xml,
    event_xml_upload_media_job_finish, parse_envelope, parse_event,
};
pub use handler::{CallbackHandler, CallbackReply, DEFAULT_MAX_BODY, build_event_request};
pub use signature::{signature, verify_signature};
