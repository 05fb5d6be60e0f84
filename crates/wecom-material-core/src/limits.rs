//! Pre-flight validation: the one table of WeCom's upload limits (SPEC §2, §3, §6).
//!
//! | upload | size (bytes) | extensions | content | WeCom over the size |
//! |---|---|---|---|---|
//! | `media/upload` image | 6 ..= 10 MiB (10,485,760) | jpg, jpeg, png | JPEG or PNG | 40009 |
//! | `media/upload` voice | 6 ..= 2 MiB (2,097,152) | amr | `#!AMR` (else 301017) | 40006 |
//! | `media/upload` video | 6 ..= 10 MiB (10,485,760) | mp4 | — | 40011 |
//! | `media/upload` file | 6 ..= 20 MiB (20,971,520) | any | — | 45001 |
//! | `media/uploadimg` | 6 ..= 2 MiB (2,097,152) | jpg, jpeg, png | JPEG or PNG | 40009 |
//! | `media/upload_by_url` | ..= 200 MiB (209,715,200) | video: mp4 | — | 45001 (job fails) |
//!
//! Five bytes or fewer: 40006. WeCom's "MB" is read as MiB (1,048,576 bytes); a download's
//! Range chunk is at most [`crate::download::MAX_CHUNK_SIZE`] (20,000,000 bytes, else 830002). The
//! documents disagree with each other (older text says images ≤ 2 MB); the server has the last
//! word, so every number is a public field a client's builder takes new values of, and
//! [`Limits::relaxed`] turns the checks off.

use crate::error::Invalid;
use crate::media_type::MediaType;

const MIB: u64 = 1024 * 1024;

/// The limits checked before an upload is built.
///
/// `Limits::default()` is WeCom's current documentation: a file larger than 5 bytes; an image
/// up to 10 MiB (10,485,760 bytes), voice 2 MiB (2,097,152), video 10 MiB, any other file
/// 20 MiB (20,971,520); an `uploadimg` image 2 MiB; an upload by URL 200 MiB (209,715,200).
/// The errcode WeCom answers over each is in the [module docs](crate::limits). When WeCom
/// changes a limit, set the new number and give the limits to the client builder (`limits`):
///
/// ```
/// use wecom_material_core::{Limits, MediaType};
///
/// let documented = Limits::default();
/// assert_eq!(documented.max_for(MediaType::File), 20_971_520);
/// let raised = Limits { video_max: 20 * 1024 * 1024, ..Limits::default() };
/// assert!(raised.check_upload(MediaType::Video, "clip.mp4", 15_000_000, None).is_ok());
/// assert!(documented.check_upload(MediaType::Video, "clip.mp4", 15_000_000, None).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A file must be larger than this many bytes (default 5, WeCom: "> 5 bytes"; else 40006).
    pub min_exclusive: u64,
    /// Largest `image` upload (default 10 MiB, 10,485,760 bytes; WeCom: 40009 over it).
    pub image_max: u64,
    /// Largest `voice` upload (default 2 MiB, 2,097,152 bytes; WeCom: 40006 over it).
    pub voice_max: u64,
    /// Largest `video` upload (default 10 MiB, 10,485,760 bytes; WeCom: 40011 over it).
    pub video_max: u64,
    /// Largest `file` upload (default 20 MiB, 20,971,520 bytes; WeCom: 45001 over it).
    pub file_max: u64,
    /// Largest `uploadimg` image (default 2 MiB, 2,097,152 bytes; WeCom: 40009 over it).
    pub upload_image_max: u64,
    /// Largest file WeCom fetches for an async upload by URL (default 200 MiB, 209,715,200
    /// bytes; WeCom fails the job with 45001 over it). The client never sees that file, so
    /// this documents WeCom's limit and checks nothing.
    pub by_url_max: u64,
    /// Check that the filename's extension fits the type.
    pub check_extension: bool,
    /// Check the first bytes (AMR, JPEG/PNG) when the bytes are at hand.
    pub check_magic: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_exclusive: 5,
            image_max: 10 * MIB,
            voice_max: 2 * MIB,
            video_max: 10 * MIB,
            file_max: 20 * MIB,
            upload_image_max: 2 * MIB,
            by_url_max: 200 * MIB,
            check_extension: true,
            check_magic: true,
        }
    }
}

/// The AMR file signature.
pub const AMR_MAGIC: &[u8] = b"#!AMR";
/// The JPEG signature.
pub const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
/// The PNG signature.
pub const PNG_MAGIC: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// The filename extensions each type accepts (empty: any).
pub fn allowed_extensions(media_type: MediaType) -> &'static [&'static str] {
    match media_type {
        MediaType::Image => &["jpg", "jpeg", "png"],
        MediaType::Voice => &["amr"],
        MediaType::Video => &["mp4"],
        MediaType::File => &[],
    }
}

/// The lowercase extension of `filename`, if any.
pub(crate) fn extension(filename: &str) -> Option<String> {
    let (stem, ext) = filename.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

impl Limits {
    /// No size limits, extension or content checks (the filename rules still hold: they
    /// protect the request's headers). An empty file is still refused: WeCom answers 44001
    /// to an empty part whatever the limits.
    pub fn relaxed() -> Self {
        Self {
            min_exclusive: 0,
            image_max: u64::MAX,
            voice_max: u64::MAX,
            video_max: u64::MAX,
            file_max: u64::MAX,
            upload_image_max: u64::MAX,
            by_url_max: u64::MAX,
            check_extension: false,
            check_magic: false,
        }
    }

    /// The largest `media/upload` of this type.
    pub fn max_for(&self, media_type: MediaType) -> u64 {
        match media_type {
            MediaType::Image => self.image_max,
            MediaType::Voice => self.voice_max,
            MediaType::Video => self.video_max,
            MediaType::File => self.file_max,
        }
    }

    /// Checks a `media/upload` of `size` bytes named `filename`. `first_bytes` are the start of
    /// the file when they are at hand (at least 8 bytes, or the whole file).
    pub fn check_upload(
        &self,
        media_type: MediaType,
        filename: &str,
        size: u64,
        first_bytes: Option<&[u8]>,
    ) -> Result<(), Invalid> {
        if size <= self.min_exclusive {
            return Err(Invalid::TooSmall {
                media_type,
                size,
                min_exclusive: self.min_exclusive,
            });
        }
        let max = self.max_for(media_type);
        if size > max {
            return Err(Invalid::TooLarge {
                media_type: Some(media_type),
                size,
                max,
            });
        }
        self.check_extension(media_type, filename)?;
        if let Some(bytes) = first_bytes {
            self.check_magic(media_type, bytes)?;
        }
        Ok(())
    }

    /// Checks a `media/uploadimg` image.
    pub fn check_upload_image(
        &self,
        filename: &str,
        size: u64,
        first_bytes: Option<&[u8]>,
    ) -> Result<(), Invalid> {
        let media_type = MediaType::Image;
        if size <= self.min_exclusive {
            return Err(Invalid::TooSmall {
                media_type,
                size,
                min_exclusive: self.min_exclusive,
            });
        }
        if size > self.upload_image_max {
            return Err(Invalid::TooLarge {
                media_type: Some(media_type),
                size,
                max: self.upload_image_max,
            });
        }
        self.check_extension(media_type, filename)?;
        if let Some(bytes) = first_bytes {
            self.check_magic(media_type, bytes)?;
        }
        Ok(())
    }

    /// Checks that `filename`'s extension fits `media_type`.
    pub fn check_extension(&self, media_type: MediaType, filename: &str) -> Result<(), Invalid> {
        let allowed = allowed_extensions(media_type);
        if !self.check_extension || allowed.is_empty() {
            return Ok(());
        }
        match extension(filename) {
            Some(ext) if allowed.contains(&ext.as_str()) => Ok(()),
            _ => Err(Invalid::ExtensionMismatch {
                media_type,
                filename: filename.to_owned(),
                allowed,
            }),
        }
    }

    /// Checks the file signature of voice (AMR) and image (JPEG/PNG) content.
    pub fn check_magic(&self, media_type: MediaType, first_bytes: &[u8]) -> Result<(), Invalid> {
        if !self.check_magic {
            return Ok(());
        }
        match media_type {
            MediaType::Voice if !first_bytes.starts_with(AMR_MAGIC) => Err(Invalid::WrongFormat {
                media_type,
                expected: "AMR (starting with #!AMR)",
            }),
            MediaType::Image
                if !first_bytes.starts_with(JPEG_MAGIC) && !first_bytes.starts_with(PNG_MAGIC) =>
            {
                Err(Invalid::WrongFormat {
                    media_type,
                    expected: "JPEG or PNG",
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `uploadimg` takes a JPG/PNG of more than 5 bytes and at most 2 MiB (inclusive).
    #[test]
    fn an_upload_image_is_checked_against_its_own_limit() {
        let l = Limits::default();
        let png = Some(&b"\x89PNG\r\n\x1a\n"[..]);
        assert!(l.check_upload_image("a.png", 2 * MIB, png).is_ok());
        assert_eq!(
            l.check_upload_image("a.png", 2 * MIB + 1, png),
            Err(Invalid::TooLarge {
                media_type: Some(MediaType::Image),
                size: 2 * MIB + 1,
                max: 2 * MIB
            })
        );
        assert!(matches!(
            l.check_upload_image("a.png", 5, png),
            Err(Invalid::TooSmall { size: 5, .. })
        ));
        assert!(l.check_upload_image("a.gif", 100, None).is_err());
    }

    #[test]
    fn sizes_are_checked_against_the_table() {
        let l = Limits::default();
        assert_eq!(
            l.check_upload(MediaType::File, "a.txt", 5, None),
            Err(Invalid::TooSmall {
                media_type: MediaType::File,
                size: 5,
                min_exclusive: 5
            })
        );
        assert!(l.check_upload(MediaType::File, "a.txt", 6, None).is_ok());
        assert_eq!(
            l.check_upload(MediaType::Voice, "a.amr", 2 * MIB + 1, None),
            Err(Invalid::TooLarge {
                media_type: Some(MediaType::Voice),
                size: 2 * MIB + 1,
                max: 2 * MIB
            })
        );
        assert!(l.check_upload(MediaType::File, "a", 20 * MIB, None).is_ok());
        assert!(
            Limits::relaxed()
                .check_upload(MediaType::Voice, "x.mp3", 1, Some(b"ID3"))
                .is_ok()
        );
    }

    #[test]
    fn extension_and_magic() {
        let l = Limits::default();
        assert!(matches!(
            l.check_upload(MediaType::Image, "movie.mp4", 100, None),
            Err(Invalid::ExtensionMismatch {
                allowed: &["jpg", "jpeg", "png"],
                ..
            })
        ));
        assert!(
            l.check_upload(
                MediaType::Image,
                "照片.JPG",
                100,
                Some(&[0xFF, 0xD8, 0xFF, 0xE0])
            )
            .is_ok()
        );
        assert!(matches!(
            l.check_upload(MediaType::Image, "a.png", 100, Some(b"GIF89a")),
            Err(Invalid::WrongFormat { .. })
        ));
        assert!(matches!(
            l.check_upload(MediaType::Voice, "a.amr", 100, Some(b"ID3\x03")),
            Err(Invalid::WrongFormat {
                media_type: MediaType::Voice,
                ..
            })
        ));
        assert!(
            l.check_upload(MediaType::Voice, "a.amr", 100, Some(b"#!AMR\n"))
                .is_ok()
        );
        assert!(matches!(
            l.check_upload(MediaType::Video, ".mp4", 100, None),
            Err(Invalid::ExtensionMismatch { .. })
        ));
    }
}
