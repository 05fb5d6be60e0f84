//! The `msg_signature` of a callback request.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::error::CallbackError;

/// Computes `msg_signature`: lower-case hex SHA-1 of the byte-wise sorted concatenation of
/// `token`, `timestamp`, `nonce` and `encrypted`.
///
/// ```
/// # use wecom_material_core::callback::signature;
/// assert_eq!(
///     signature("QDG6eK", "1409659589", "263014780",
///         "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="),
///     "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
/// );
/// ```
pub fn signature(token: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypted];
    // `str`'s order is the byte-wise order of its UTF-8 bytes.
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest.iter() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Checks `given_signature` against [`signature`] of the other four values, in constant time.
///
/// Hex digits of `given_signature` are accepted in either case.
pub fn verify_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypted: &str,
    given_signature: &str,
) -> Result<(), CallbackError> {
    let expected = signature(token, timestamp, nonce, encrypted);
    let given = given_signature.to_ascii_lowercase();
    // `ct_eq` on slices of different lengths is false without looking at the contents; the
    // length (40) is public.
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(CallbackError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_url_check_signature() {
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
        assert_eq!(
            signature("QDG6eK", "1409659589", "263014780", echostr),
            "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
        );
        verify_signature(
            "QDG6eK",
            "1409659589",
            "263014780",
            echostr,
            "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3",
        )
        .unwrap();
    }

    #[test]
    fn order_of_arguments_does_not_matter_but_values_do() {
        assert_eq!(signature("a", "b", "c", "d"), signature("d", "c", "b", "a"));
        assert_ne!(signature("a", "b", "c", "d"), signature("a", "b", "c", "e"));
    }

    #[test]
    fn rejects_wrong_truncated_and_empty_signatures() {
        let good = signature("t", "1", "2", "x");
        let mut wrong = good.clone().into_bytes();
        wrong[39] = if wrong[39] == b'0' { b'1' } else { b'0' };
        for given in [
            String::from_utf8(wrong).unwrap(),
            good[..39].to_owned(),
            String::new(),
            format!("{good}0"),
        ] {
            assert_eq!(
                verify_signature("t", "1", "2", "x", &given),
                Err(CallbackError::BadSignature),
                "{given}"
            );
        }
        assert_eq!(
            verify_signature("other", "1", "2", "x", &good),
            Err(CallbackError::BadSignature)
        );
    }
}
