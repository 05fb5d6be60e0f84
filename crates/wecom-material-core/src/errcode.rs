//! The WeCom `errcode` catalogue (SPEC §9) and what a client does with each code.

use std::fmt;

/// What a client should do after receiving an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// The access token is invalid or expired: drop it, fetch a new one, retry once.
    RefreshToken,
    /// A passing server condition: retry with backoff, a bounded number of times.
    Retry,
    /// A rate or quota limit: surface it, never loop.
    Throttled,
    /// Retrying cannot help.
    Fatal,
}

macro_rules! errcodes {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $disp:ident, $meaning:literal; )*) => {
        /// A WeCom error code. Codes this crate does not know keep their number in
        /// [`ErrCode::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrCode {
            $( $(#[$doc])* $name, )*
            /// A code not in the catalogue.
            Other(i64),
        }

        impl ErrCode {
            /// Every catalogued code, for tables and tests.
            pub const KNOWN: &'static [ErrCode] = &[$(ErrCode::$name),*];

            /// Looks up a numeric code.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $( $code => ErrCode::$name, )*
                    other => ErrCode::Other(other),
                }
            }

            /// The numeric code.
            pub fn code(self) -> i64 {
                match self {
                    $( ErrCode::$name => $code, )*
                    ErrCode::Other(code) => code,
                }
            }

            /// What a client does with this code.
            pub fn disposition(self) -> Disposition {
                match self {
                    $( ErrCode::$name => Disposition::$disp, )*
                    ErrCode::Other(_) => Disposition::Fatal,
                }
            }

            /// A short English description of the code.
            pub fn meaning(self) -> &'static str {
                match self {
                    $( ErrCode::$name => $meaning, )*
                    ErrCode::Other(_) => "unknown error code",
                }
            }
        }
    };
}

errcodes! {
    /// -1: system busy.
    SystemBusy = -1, Retry, "system busy";
    /// 40001: invalid secret or credential.
    InvalidCredential = 40001, Fatal, "invalid credential (secret)";
    /// 40004: invalid media type.
    InvalidMediaType = 40004, Fatal, "invalid media type";
    /// 40005: invalid file type (extension does not fit the media type).
    InvalidFileType = 40005, Fatal, "invalid file type";
    /// 40006: invalid file size.
    InvalidFileSize = 40006, Fatal, "invalid file size";
    /// 40007: invalid or expired media_id.
    InvalidMediaId = 40007, Fatal, "invalid media_id";
    /// 40009: invalid image size.
    InvalidImageSize = 40009, Fatal, "invalid image size";
    /// 40011: invalid video size.
    InvalidVideoSize = 40011, Fatal, "invalid video size";
    /// 40013: invalid corp id.
    InvalidCorpId = 40013, Fatal, "invalid corpid";
    /// 40014: invalid access_token.
    InvalidAccessToken = 40014, RefreshToken, "invalid access_token";
    /// 40058: invalid parameter (不合法的参数): a parameter does not meet the endpoint's
    /// rules (WeCom's global error-code page; e.g. a bad `scene` or `type` of
    /// upload-by-url). Fix the request; retrying cannot help.
    InvalidParameter = 40058, Fatal, "invalid parameter";
    /// 40091: secret is invalid.
    InvalidSecret = 40091, Fatal, "secret is invalid";
    /// 41001: access_token missing.
    MissingAccessToken = 41001, Fatal, "access_token missing";
    /// 41002: corpid missing.
    MissingCorpId = 41002, Fatal, "corpid missing";
    /// 41004: corpsecret missing.
    MissingSecret = 41004, Fatal, "corpsecret missing";
    /// 41005: media data missing.
    MissingMediaData = 41005, Fatal, "media data missing";
    /// 41006: media_id missing.
    MissingMediaId = 41006, Fatal, "media_id missing";
    /// 42001: access_token expired.
    AccessTokenExpired = 42001, RefreshToken, "access_token expired";
    /// 44001: empty media data.
    EmptyMedia = 44001, Fatal, "empty media data";
    /// 45001: size over the limit.
    SizeOverLimit = 45001, Fatal, "media size out of limit";
    /// 45009: API call frequency over the limit.
    RateLimited = 45009, Throttled, "api freq out of limit";
    /// 45033: too many concurrent calls.
    TooManyConcurrent = 45033, Retry, "api concurrent out of limit";
    /// 48002: API forbidden for this app.
    ApiForbidden = 48002, Fatal, "api forbidden";
    /// 60020: caller IP not in the app's trusted IP list.
    IpNotTrusted = 60020, Fatal, "not allow to access from your ip";
    /// 301017: voice is not AMR.
    VoiceNotAmr = 301017, Fatal, "voice file format must be amr";
    /// 301019: MD5 mismatch on an async upload.
    Md5Mismatch = 301019, Fatal, "md5 mismatch";
    /// 830001: the URL is invalid or does not support Range.
    UrlInvalid = 830001, Fatal, "url invalid or without Range support";
    /// 830002: media too large: fetch it with Range (at most 20 MB a chunk).
    MediaTooLarge = 830002, Fatal, "media too large, use Range";
    /// 830003: WeCom could not download from the URL.
    UrlDownloadFailed = 830003, Fatal, "download from url failed";
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

impl From<i64> for ErrCode {
    fn from(code: i64) -> Self {
        Self::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_round_trip_and_unknown_keep_number() {
        for &c in ErrCode::KNOWN {
            assert_eq!(ErrCode::from_code(c.code()), c);
        }
        assert_eq!(ErrCode::from_code(99999), ErrCode::Other(99999));
        assert_eq!(ErrCode::Other(99999).code(), 99999);
        assert_eq!(ErrCode::KNOWN.len(), 29);
    }

    #[test]
    fn dispositions_follow_the_spec_table() {
        assert_eq!(
            ErrCode::from_code(40014).disposition(),
            Disposition::RefreshToken
        );
        assert_eq!(
            ErrCode::from_code(42001).disposition(),
            Disposition::RefreshToken
        );
        assert_eq!(ErrCode::from_code(-1).disposition(), Disposition::Retry);
        assert_eq!(ErrCode::from_code(45033).disposition(), Disposition::Retry);
        assert_eq!(
            ErrCode::from_code(45009).disposition(),
            Disposition::Throttled
        );
        assert_eq!(ErrCode::from_code(60020).disposition(), Disposition::Fatal);
        assert_eq!(ErrCode::from_code(123).disposition(), Disposition::Fatal);
        assert_eq!(
            ErrCode::from_code(830002).to_string(),
            "830002 (media too large, use Range)"
        );
    }

    /// 40058 used to show as "unknown error code" though the docs use it.
    #[test]
    fn errcode_40058_is_known_as_invalid_parameter() {
        let code = ErrCode::from_code(40058);
        assert_eq!(code, ErrCode::InvalidParameter);
        assert_eq!(code.to_string(), "40058 (invalid parameter)");
        assert_eq!(code.disposition(), Disposition::Fatal);
    }
}
