//! Media types and the identifiers WeCom hands out.

use std::fmt;
use std::str::FromStr;

use crate::error::Invalid;

/// The `type` of a temporary media upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// JPG or PNG image.
    Image,
    /// AMR voice.
    Voice,
    /// MP4 video.
    Video,
    /// Any file.
    File,
}

impl MediaType {
    /// Every media type.
    pub const ALL: [MediaType; 4] = [
        MediaType::Image,
        MediaType::Voice,
        MediaType::Video,
        MediaType::File,
    ];

    /// The wire name (`image`, `voice`, `video`, `file`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Voice => "voice",
            MediaType::Video => "video",
            MediaType::File => "file",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MediaType {
    type Err = Invalid;

    /// Parses `image`, `voice`, `video` or `file`, ignoring ASCII case and a leading `:` (the
    /// seed library accepted Elixir atoms such as `:image`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().trim_start_matches(':');
        MediaType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| Invalid::UnknownMediaType {
                given: s.to_owned(),
            })
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_newtype!(
    /// A temporary media id, valid for 3 days and shared by all apps of the corp.
    MediaId
);

/// The longest media id sent: 256 bytes. WeCom's are about 40–70 characters; a longer one is
/// not a media id (and a 70,000-character one used to overflow the request URI).
pub const MAX_MEDIA_ID_LEN: usize = 256;

impl MediaId {
    /// Checks the id before it goes into a request: not empty, at most [`MAX_MEDIA_ID_LEN`]
    /// bytes, no control characters. Every download request checks it, so nothing is sent
    /// for an id that fails.
    ///
    /// ```
    /// use wecom_material_core::{Invalid, MediaId};
    /// assert!(MediaId::new("1G6nrLmr5EC3MMb_-zK1dDdzmd0p7cNliYu9V5w7o8K0").validate().is_ok());
    /// assert!(matches!(MediaId::new("a\u{1b}[31m").validate(), Err(Invalid::ControlCharacter { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), Invalid> {
        let field = "media_id";
        if self.0.is_empty() {
            return Err(Invalid::EmptyField { field });
        }
        if self.0.len() > MAX_MEDIA_ID_LEN {
            return Err(Invalid::FieldTooLong {
                field,
                len: self.0.len(),
                max: MAX_MEDIA_ID_LEN,
            });
        }
        match self.0.chars().find(|c| c.is_control()) {
            Some(ch) => Err(Invalid::ControlCharacter { field, ch }),
            None => Ok(()),
        }
    }
}
id_newtype!(
    /// The id of an async upload-by-URL job.
    JobId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_atoms() {
        assert_eq!("image".parse::<MediaType>().unwrap(), MediaType::Image);
        assert_eq!(":voice".parse::<MediaType>().unwrap(), MediaType::Voice);
        assert_eq!("VIDEO".parse::<MediaType>().unwrap(), MediaType::Video);
        assert_eq!(
            "doc".parse::<MediaType>().unwrap_err(),
            Invalid::UnknownMediaType {
                given: "doc".into()
            }
        );
        for t in MediaType::ALL {
            assert_eq!(t.to_string().parse::<MediaType>().unwrap(), t);
        }
    }

    /// A 70,000-character media id used to panic in the URI builder (and leave an empty part
    /// file); ids with control characters went into requests and onto terminals.
    #[test]
    fn media_ids_that_are_too_long_or_hold_control_characters_are_invalid() {
        let long = MediaId::new("m".repeat(70_000));
        assert_eq!(
            long.validate(),
            Err(Invalid::FieldTooLong {
                field: "media_id",
                len: 70_000,
                max: 256
            })
        );
        assert!(MediaId::new("m".repeat(256)).validate().is_ok());
        assert!(MediaId::new("m".repeat(257)).validate().is_err());
        for (id, ch) in [
            ("abc\n\u{1b}[31mRED", '\n'),
            ("a\u{7f}", '\u{7f}'),
            ("a\u{85}b", '\u{85}'),
        ] {
            assert_eq!(
                MediaId::new(id).validate(),
                Err(Invalid::ControlCharacter {
                    field: "media_id",
                    ch
                })
            );
        }
        assert_eq!(
            MediaId::new("").validate(),
            Err(Invalid::EmptyField { field: "media_id" })
        );
        assert!(MediaId::new("a+b/c=").validate().is_ok());
    }
}
