//! Reading the filename out of a `Content-Disposition` header, and making any server-given
//! name safe for a file system.
//!
//! WeCom sends `filename*=utf-8''<percent-encoded>` and `filename="<raw UTF-8>"` side by side
//! for non-ASCII names (SPEC §4). `filename*` wins; the quoted form is decoded as UTF-8 (not
//! Latin-1 as RFC 7230 would have it), with backslash escapes undone.

use percent_encoding::percent_decode;

/// The longest sanitized filename, in bytes (the usual file-system limit).
pub const MAX_FILENAME_BYTES: usize = 255;

/// The filename a `Content-Disposition` value carries, unsanitized: `filename*` if present and
/// decodable, else `filename`. Never panics; returns `None` when neither is usable.
pub fn filename_from_content_disposition(value: &[u8]) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for (name, value) in parameters(value) {
        if name.eq_ignore_ascii_case(b"filename*") {
            extended = extended.or_else(|| decode_ext_value(&value));
        } else if name.eq_ignore_ascii_case(b"filename") {
            plain = plain.or_else(|| String::from_utf8(value).ok());
        }
    }
    extended.or(plain).filter(|n| !n.is_empty())
}

/// Splits `disposition-type; name=value; name="quoted; value"` into (name, unescaped value)
/// pairs, skipping the disposition type and anything malformed.
fn parameters(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    // Skip the disposition type.
    while i < input.len() && input[i] != b';' {
        i += 1;
    }
    while i < input.len() {
        i += 1; // past ';'
        let name_start = i; // blanks around the name are trimmed below
        while i < input.len() && input[i] != b'=' && input[i] != b';' {
            i += 1;
        }
        let name = trim(&input[name_start..i]).to_vec();
        if i >= input.len() || input[i] == b';' {
            continue; // a parameter without value
        }
        i += 1; // past '='
        while i < input.len() && (input[i] == b' ' || input[i] == b'\t') {
            i += 1;
        }
        let mut value = Vec::new();
        if i < input.len() && input[i] == b'"' {
            i += 1;
            while i < input.len() && input[i] != b'"' {
                if input[i] == b'\\' && i + 1 < input.len() {
                    i += 1;
                }
                value.push(input[i]);
                i += 1;
            }
            // Skip the closing quote and anything up to the next ';'.
            while i < input.len() && input[i] != b';' {
                i += 1;
            }
        } else {
            let start = i;
            while i < input.len() && input[i] != b';' {
                i += 1;
            }
            value.extend_from_slice(trim(&input[start..i]));
        }
        out.push((name, value));
    }
    out
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// RFC 8187 `charset'language'percent-encoded`; UTF-8 only (and plain ASCII as its subset).
fn decode_ext_value(value: &[u8]) -> Option<String> {
    let mut parts = value.splitn(3, |&b| b == b'\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    if !(charset.eq_ignore_ascii_case(b"utf-8") || charset.eq_ignore_ascii_case(b"us-ascii")) {
        return None;
    }
    percent_decode(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Makes a server-given name safe to create in a directory: path separators, `..`, control
/// characters and characters Windows forbids become `_`; invisible Unicode format
/// characters (Cf: bidi overrides such as U+202E, which make `invoice\u{202e}fdp.exe` read
/// as `invoiceexe.pdf`, zero-width characters, the BOM) are dropped; leading and trailing
/// dots and spaces go; the name is cut to [`MAX_FILENAME_BYTES`] keeping its extension.
/// `None` when nothing usable is left.
pub fn sanitize_filename(name: &str) -> Option<String> {
    let replaced: String = name
        .chars()
        .filter(|&c| c.is_control() || !crate::printable::is_control_or_format(c))
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let mut cleaned = replaced.replace("..", "_");
    cleaned = cleaned
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_owned();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '_') {
        return None;
    }
    if is_windows_reserved(&cleaned) {
        cleaned.insert(0, '_');
    }
    if cleaned.len() > MAX_FILENAME_BYTES {
        cleaned = truncate_keeping_extension(&cleaned);
    }
    Some(cleaned)
}

/// Whether Windows reserves `name` for a device: `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`,
/// `LPT0`–`LPT9` (also with the superscript digits ¹²³), in any case, as the whole name or
/// before the first dot (`nul.txt`, `COM1.tar.gz`), trailing spaces and dots ignored
/// (`CON .txt`). Such a name is prefixed with `_` by [`sanitize_filename`].
pub fn is_windows_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.trim_end_matches([' ', '.']).to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => true,
        _ => {
            let rest = stem
                .strip_prefix("COM")
                .or_else(|| stem.strip_prefix("LPT"));
            rest.is_some_and(|d| {
                let mut chars = d.chars();
                matches!(
                    (chars.next(), chars.next()),
                    (Some('0'..='9' | '¹' | '²' | '³'), None)
                )
            })
        }
    }
}

fn truncate_keeping_extension(name: &str) -> String {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) if ext.len() <= 16 => format!(".{ext}"),
        _ => String::new(),
    };
    let mut stem_end = MAX_FILENAME_BYTES - ext.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    // The cut can land right after a dot or a space: trim them, or `stem.` + `.ext` would make
    // `..` (or leave a trailing dot when there is no extension). The stem starts with neither,
    // so it never empties.
    let stem = name[..stem_end].trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    format!("{stem}{ext}")
}

/// The usual extension for a media content type, for names the server did not give.
pub fn extension_for_content_type(content_type: &str) -> Option<&'static str> {
    let essence = crate::ops::get_media::media_essence(content_type)?;
    Some(match essence.as_str() {
        "image/jpeg" | "image/jpg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "audio/amr" | "voice/amr" => "amr",
        "voice/speex" | "audio/speex" => "speex",
        "video/mp4" => "mp4",
        "text/plain" => "txt",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever follows a quoted value up to the next `;` is not a parameter: a
    /// `filename*` hidden there never replaces the quoted name.
    #[test]
    fn text_after_a_closing_quote_is_skipped_to_the_next_semicolon() {
        let header = b"attachment; filename=\"a.bin\" filename*=UTF-8''evil.exe";
        assert_eq!(
            filename_from_content_disposition(header).as_deref(),
            Some("a.bin")
        );
        let header = b"attachment;\t filename = \"b.bin\" ; filename*=UTF-8''%E6%8A%A5.pdf";
        assert_eq!(
            filename_from_content_disposition(header).as_deref(),
            Some("报.pdf")
        );
    }

    /// A header cut right after a parameter's `=` (or its blanks) names no file.
    #[test]
    fn a_header_ending_at_an_equals_sign_names_no_file() {
        for header in [&b"attachment; filename="[..], b"attachment; filename= \t"] {
            assert_eq!(filename_from_content_disposition(header), None);
        }
    }

    /// Every media content type WeCom serves names its usual extension, parameters and case
    /// aside; an unknown type names none.
    #[test]
    fn each_known_content_type_names_its_extension() {
        for (content_type, extension) in [
            ("image/jpeg", "jpg"),
            ("image/jpg", "jpg"),
            ("image/png", "png"),
            ("image/gif", "gif"),
            ("audio/amr", "amr"),
            ("voice/amr", "amr"),
            ("voice/speex", "speex"),
            ("audio/speex", "speex"),
            ("video/mp4", "mp4"),
            ("text/plain; charset=utf-8", "txt"),
            ("Application/PDF", "pdf"),
            ("application/zip", "zip"),
        ] {
            assert_eq!(
                extension_for_content_type(content_type),
                Some(extension),
                "{content_type}"
            );
        }
        assert_eq!(extension_for_content_type("application/x-unknown"), None);
    }

    /// A name of exactly 255 bytes is kept whole; one byte more is cut, keeping its extension.
    #[test]
    fn a_name_at_the_length_limit_is_kept_whole() {
        let exact = format!("{}.bin", "a".repeat(MAX_FILENAME_BYTES - 4));
        assert_eq!(sanitize_filename(&exact).as_deref(), Some(exact.as_str()));
        // Not even the blank before its extension goes, which a cut would trim.
        let exact = format!("{} .bin", "a".repeat(MAX_FILENAME_BYTES - 5));
        assert_eq!(sanitize_filename(&exact).as_deref(), Some(exact.as_str()));
        let over = format!("{}.bin", "a".repeat(MAX_FILENAME_BYTES - 3));
        let cut = sanitize_filename(&over).unwrap();
        assert!(
            cut.len() <= MAX_FILENAME_BYTES && cut.ends_with(".bin"),
            "{cut}"
        );
    }

    /// Spaces around `=` and `;` are allowed; an escape at the very end of an unterminated
    /// quoted value is kept as it is (never read past the header); the disposition type is
    /// never taken for a parameter.
    #[test]
    fn parameters_allow_spaces_and_an_unterminated_escape() {
        let name = |v: &[u8]| filename_from_content_disposition(v);
        assert_eq!(
            name(b"attachment;\t filename= \"a b.txt\"").as_deref(),
            Some("a b.txt")
        );
        assert_eq!(
            name(b"attachment; filename=  plain.txt ").as_deref(),
            Some("plain.txt")
        );
        assert_eq!(
            name(b"attachment; filename=\"abc\\").as_deref(),
            Some("abc\\")
        );
        assert_eq!(
            name(b"filename=x.txt; size=3"),
            None,
            "the first item is the type"
        );
        let typed = name(b"xfilename=evil.txt; filename=good.txt");
        assert_eq!(typed.as_deref(), Some("good.txt"));
    }

    #[test]
    fn windows_reserved_names_are_prefixed() {
        for (name, want) in [
            ("CON", "_CON"),
            ("con", "_con"),
            ("nul.txt", "_nul.txt"),
            ("COM1.jpg", "_COM1.jpg"),
            ("lpt9.tar.gz", "_lpt9.tar.gz"),
            ("AUX.", "_AUX"),
            ("PRN .txt", "_PRN .txt"),
            ("CON. .png", "_CON. .png"),
            ("  NUL  ", "_NUL"),
            ("COM¹.txt", "_COM¹.txt"),
            // Not reserved.
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("COM10.jpg", "COM10.jpg"),
            ("my nul.txt", "my nul.txt"),
            ("a.CON", "a.CON"),
        ] {
            assert_eq!(sanitize_filename(name).as_deref(), Some(want), "{name:?}");
        }
    }

    #[test]
    fn prefers_filename_star_then_raw_utf8() {
        let both = "attachment; filename*=utf-8''%E6%B5%8B%E8%AF%95.xlsx; filename=\"测试.xlsx\"";
        assert_eq!(
            filename_from_content_disposition(both.as_bytes()).as_deref(),
            Some("测试.xlsx")
        );
        let raw = "attachment; filename=\"报告 2026.pdf\"";
        assert_eq!(
            filename_from_content_disposition(raw.as_bytes()).as_deref(),
            Some("报告 2026.pdf")
        );
        let token = b"attachment; filename=MEDIA_ID.jpg";
        assert_eq!(
            filename_from_content_disposition(token).as_deref(),
            Some("MEDIA_ID.jpg")
        );
        let escaped = br#"attachment; filename="a\"b;c.txt""#;
        assert_eq!(
            filename_from_content_disposition(escaped).as_deref(),
            Some("a\"b;c.txt")
        );
        // A broken filename* falls back to filename.
        let bad_star = b"attachment; filename*=gbk''%B2%E2; filename=\"x.txt\"";
        assert_eq!(
            filename_from_content_disposition(bad_star).as_deref(),
            Some("x.txt")
        );
        assert_eq!(filename_from_content_disposition(b"attachment"), None);
        assert_eq!(
            filename_from_content_disposition(b"attachment; filename=\"\xff\xfe\""),
            None
        );
    }

    #[test]
    fn sanitizes_dangerous_names() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("____etc_passwd")
        );
        assert_eq!(sanitize_filename("..").as_deref(), None);
        assert_eq!(
            sanitize_filename("a\\b\r\n.txt").as_deref(),
            Some("a_b__.txt")
        );
        assert_eq!(sanitize_filename(" .hidden ").as_deref(), Some("hidden"));
        assert_eq!(sanitize_filename("测试.xlsx").as_deref(), Some("测试.xlsx"));
        let long = format!("{}.pdf", "长".repeat(200));
        let cut = sanitize_filename(&long).unwrap();
        assert!(
            cut.len() <= MAX_FILENAME_BYTES && cut.ends_with(".pdf"),
            "{cut}"
        );
    }

    /// `filename*=…invoice%E2%80%AEfdp.exe` was saved with the right-to-left override in the
    /// name (shown as `invoiceexe.pdf`); format characters are dropped now.
    #[test]
    fn bidi_overrides_and_other_format_characters_are_dropped_from_saved_names() {
        let header = b"attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe";
        let name = filename_from_content_disposition(header).unwrap();
        assert_eq!(name, "invoice\u{202e}fdp.exe");
        assert_eq!(sanitize_filename(&name).as_deref(), Some("invoicefdp.exe"));
        assert_eq!(
            sanitize_filename("\u{feff}a\u{200b}b\u{2066}c\u{2069}\u{e0041}.txt").as_deref(),
            Some("abc.txt")
        );
        assert_eq!(sanitize_filename("\u{202e}\u{202c}"), None);
    }
}
