//! `callback decrypt`: verify and decrypt a job-finished callback by hand.
//!
//! With `--echostr` it is the URL check (GET); without, the delivery's XML body is read from
//! stdin. Every failure here is about the input (bad key, signature, ciphertext): exit 2.

use std::io::Read;

use serde_json::json;
use wecom_material_core::callback::{
    CallbackEvent, EncodingAesKey, UPLOAD_MEDIA_JOB_FINISH, decrypt, parse_envelope, parse_event,
    verify_signature,
};

use crate::cli::CallbackDecryptArgs;
use crate::failure::Failure;
use crate::output::Output;

/// The largest body read from stdin (WeCom's deliveries are a few kB).
const MAX_BODY: u64 = 1024 * 1024;

/// Verifies, decrypts and prints the plaintext (and the job id of a job event).
pub(crate) fn run(out: Output, args: &CallbackDecryptArgs) -> Result<(), Failure> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Failure::usage(format!("{what}: {e}"));
    let key = EncodingAesKey::parse(args.aes_key.trim()).map_err(|e| bad("--aes-key", &e))?;
    let encrypted = match &args.echostr {
        Some(echostr) => echostr.clone(),
        None => {
            let mut body = Vec::new();
            std::io::stdin()
                .take(MAX_BODY + 1)
                .read_to_end(&mut body)
                .map_err(|e| bad("reading stdin", &e))?;
            if body.len() as u64 > MAX_BODY {
                return Err(Failure::usage("the body on stdin is larger than 1 MiB"));
            }
            parse_envelope(&body)
                .map_err(|e| bad("the body on stdin", &e))?
                .encrypt
        }
    };
    verify_signature(
        &args.token,
        &args.timestamp,
        &args.nonce,
        &encrypted,
        &args.signature,
    )
    .map_err(|e| bad("signature", &e))?;
    let plaintext = decrypt(&key, &encrypted, &args.receive_id).map_err(|e| bad("decrypt", &e))?;
    let plaintext = String::from_utf8(plaintext)
        .map_err(|_| Failure::usage("the decrypted message is not UTF-8"))?;
    let job_id = if args.echostr.is_some() {
        None
    } else {
        match parse_event(plaintext.as_bytes()).map_err(|e| bad("event", &e))? {
            CallbackEvent::UploadMediaJobFinish { job_id, .. } => Some(job_id),
            _ => None,
        }
    };
    let event = job_id.as_ref().map(|_| UPLOAD_MEDIA_JOB_FINISH);
    out.emit(
        json!({
            "plaintext": plaintext,
            "event": event,
            "job_id": job_id.as_ref().map(|j| j.as_str()),
        }),
        || match &job_id {
            Some(job) => format!("{plaintext}\n{UPLOAD_MEDIA_JOB_FINISH}: job {job}"),
            None => plaintext.clone(),
        },
    );
    Ok(())
}
