//! An S3 error answer (`<Error><Code>…</Code><Message>…</Message>…</Error>`) as a typed
//! [`ObjectStorageError`] naming the bucket and key.
//!
//! Only the code and the message are kept: AWS also sends `StringToSign`,
//! `CanonicalRequest` and `SignatureProvided` for a signature mismatch, which say nothing a
//! user needs and would carry the request's signature. The message is masked like every
//! excerpt ([`mask_secrets`]).

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::ObjectStorageError;
use crate::secret::mask_secrets;

/// The longest answer read for an error (S3 error documents are well below 4 KiB).
pub(crate) const ANSWER_LIMIT: usize = 64 * 1024;

/// The error for a refused `operation` on `bucket`/`key` from its status and body.
pub(crate) fn parse(
    operation: &'static str,
    bucket: &str,
    key: &str,
    status: u16,
    body: &[u8],
) -> ObjectStorageError {
    let (code, message) = match code_and_message(body) {
        Some((code, message)) => (Some(code), message),
        None => (None, excerpt(body, status)),
    };
    ObjectStorageError {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        status,
        code,
        message: mask_secrets(&message),
    }
}

/// The `Code` and `Message` of an S3 error document, if the body is one.
fn code_and_message(body: &[u8]) -> Option<(String, String)> {
    let mut reader = Reader::from_reader(body);
    let (mut path, mut code, mut message) = (Vec::<Vec<u8>>::new(), String::new(), String::new());
    loop {
        let event = reader.read_event().ok()?;
        let field = match path.as_slice() {
            [root, field] if root.as_slice() == b"Error" => match field.as_slice() {
                b"Code" => Some(&mut code),
                b"Message" => Some(&mut message),
                _ => None,
            },
            _ => None,
        };
        match event {
            Event::Start(start) => path.push(start.local_name().as_ref().to_vec()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text) => {
                if let Some(field) = field {
                    field.push_str(&text.xml10_content().ok()?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(field) = field {
                    let escaped = format!("&{};", reference.decode().ok()?);
                    field.push_str(&quick_xml::escape::unescape(&escaped).ok()?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let code = code.trim();
    (!code.is_empty()).then(|| (code.to_owned(), message.trim().to_owned()))
}

/// A short printable excerpt of an answer that is not S3 error XML (a proxy page, an empty
/// body), or the usual meaning of the status when there is no body.
fn excerpt(body: &[u8], status: u16) -> String {
    let text: String = String::from_utf8_lossy(&body[..body.len().min(200)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if !text.is_empty() {
        return text.to_owned();
    }
    match status {
        403 => "access denied (wrong credentials, clock skew, or no permission)",
        404 => "not found (does the bucket exist?)",
        _ => "",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_error_document_gives_its_code_and_message_but_not_the_signature() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key &amp; signing method.</Message>
<SignatureProvided>3f1c2a7e9b0d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6</SignatureProvided>
<StringToSign>AWS4-HMAC-SHA256 ...</StringToSign></Error>"#;
        let e = parse("PUT", "media", "p/x.mp4", 403, body);
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(
            e.to_string(),
            "object storage refused PUT s3://media/p/x.mp4 (HTTP 403 SignatureDoesNotMatch): \
             The request signature we calculated does not match the signature you provided. \
             Check your key & signing method."
        );
        assert!(!format!("{e:?}").contains("3f1c2a7e"));
    }

    /// Only the `Code` and `Message` directly under an `<Error>` root are an S3 error's.
    #[test]
    fn a_code_outside_an_error_document_is_not_taken_for_one() {
        let body = b"<Status><Code>Fine</Code><Message>all good</Message></Status>";
        let e = parse("PUT", "b", "k", 500, body);
        assert_eq!(e.code, None);
        assert_eq!(e.message, String::from_utf8_lossy(body));
        let nested = b"<Error><Detail><Code>Inner</Code></Detail><Code>Outer</Code></Error>";
        assert_eq!(
            parse("PUT", "b", "k", 500, nested).code.as_deref(),
            Some("Outer")
        );
    }

    #[test]
    fn other_answers_keep_a_masked_excerpt_or_say_what_the_status_means() {
        let e = parse("DELETE", "b", "k", 502, b"<html>bad gateway</html>");
        assert_eq!(
            (e.code, e.message.as_str()),
            (None, "<html>bad gateway</html>")
        );
        let e = parse("PUT", "b", "k", 403, b"");
        assert!(e.message.starts_with("access denied"), "{e}");
        let e = parse("HEAD", "b", "k", 404, b" \r\n");
        assert!(e.message.starts_with("not found"), "{e}");
        assert_eq!(parse("PUT", "b", "k", 500, b"").message, "");
        let e = parse(
            "PUT",
            "b",
            "k",
            400,
            b"?X-Amz-Security-Token=FwoGZXIvYXdzEJr&x=1",
        );
        assert!(!e.message.contains("FwoGZXIvYXdzEJr"), "{}", e.message);
    }
}
