//! Query-string decoding (`application/x-www-form-urlencoded`).
//!
//! `+` decodes to a space, as in a typical CGI front end: a client that puts a raw `+` of a
//! token or media id into the query without percent-encoding it gets the wrong value, which is
//! exactly the bug the emulator should expose.

use percent_encoding::percent_decode;

/// The first value of `name` in `query`, decoded; `None` if absent.
pub(crate) fn param(query: &str, name: &str) -> Option<String> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k) == name {
            return Some(decode(v));
        }
    }
    None
}

/// Query parameters whose values are never shown (the last two: a presigned URL's signature
/// and session token, in the URLs `upload_by_url` jobs fetch).
const SECRET_PARAMS: [&str; 4] = [
    "access_token",
    "corpsecret",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// `query` with the value of every secret parameter (`access_token`, `corpsecret`,
/// `X-Amz-Signature`, `X-Amz-Security-Token`) replaced by `***`
/// (the names are compared decoded, so `access%5Ftoken` is masked too).
pub(crate) fn mask_secrets(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if SECRET_PARAMS.contains(&decode(key).as_str()) {
                format!("{key}=***")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode(plus.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let q = "access_token=a%2Bb%2F%3D&type=image&x=1+2&empty=&flag";
        assert_eq!(param(q, "access_token").as_deref(), Some("a+b/="));
        assert_eq!(param(q, "type").as_deref(), Some("image"));
        assert_eq!(param(q, "x").as_deref(), Some("1 2"));
        assert_eq!(param(q, "empty").as_deref(), Some(""));
        assert_eq!(param(q, "flag").as_deref(), Some(""));
        assert_eq!(param(q, "missing"), None);
    }

    #[test]
    fn masks_token_and_secret_values() {
        assert_eq!(
            mask_secrets("access_token=abc%2B&media_id=3x&corpsecret=s&access%5Ftoken=t"),
            "access_token=***&media_id=3x&corpsecret=***&access%5Ftoken=***"
        );
        assert_eq!(mask_secrets("corpid=ww"), "corpid=ww");
    }
}
