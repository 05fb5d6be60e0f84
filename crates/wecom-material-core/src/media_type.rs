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
}
