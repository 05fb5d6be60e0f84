//! Server strings made safe to show: which characters may not reach a terminal or a file name
//! as they are, and the escaped form of a string that holds them.
//!
//! A hostile server can put terminal escape sequences (`ESC [ 31 m`), line breaks or
//! invisible Unicode format characters (general category Cf: the bidi overrides such as
//! U+202E RIGHT-TO-LEFT OVERRIDE, zero-width joiners, the BOM) into any string it answers:
//! a media id, a filename, an `errmsg`. Shown raw, `invoice\u{202e}fdp.exe` reads as
//! `invoiceexe.pdf`, and an escape sequence rewrites the user's screen.

use std::borrow::Cow;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` is a control character (Unicode Cc: C0, DEL, C1) or an invisible format
/// character (Unicode Cf: bidi controls, zero-width characters, the BOM, tags).
///
/// ```
/// use wecom_material_core::printable::is_control_or_format;
/// assert!(is_control_or_format('\u{1b}') && is_control_or_format('\u{202e}'));
/// assert!(!is_control_or_format('é') && !is_control_or_format('图'));
/// ```
pub fn is_control_or_format(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// `text` with every character of [`is_control_or_format`] written as `\u{…}` (hex); the
/// text itself when there is nothing to escape. (Backslashes are kept as they are: the
/// point is what the terminal does, not a reversible encoding.)
///
/// ```
/// use wecom_material_core::printable::escape_for_terminal;
/// assert_eq!(escape_for_terminal("abc\n\u{1b}[31mRED"), r"abc\u{a}\u{1b}[31mRED");
/// assert_eq!(escape_for_terminal("invoice\u{202e}fdp.exe"), r"invoice\u{202e}fdp.exe");
/// assert_eq!(escape_for_terminal("产品图.png"), "产品图.png");
/// ```
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control_or_format) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control_or_format(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_overrides_and_other_format_characters_are_escaped() {
        for (raw, escaped) in [
            ("a\u{0}b", r"a\u{0}b"),
            ("tab\there", r"tab\u{9}here"),
            ("c1\u{85}\u{9b}", r"c1\u{85}\u{9b}"),
            ("del\u{7f}", r"del\u{7f}"),
            (
                "rlo\u{202e}lre\u{202a}pdf\u{202c}",
                r"rlo\u{202e}lre\u{202a}pdf\u{202c}",
            ),
            ("isolates\u{2066}\u{2069}", r"isolates\u{2066}\u{2069}"),
            (
                "zw\u{200b}\u{200d}bom\u{feff}",
                r"zw\u{200b}\u{200d}bom\u{feff}",
            ),
            ("tag\u{e0041}", r"tag\u{e0041}"),
            (r"back\slash", r"back\slash"),
        ] {
            assert_eq!(escape_for_terminal(raw), escaped, "{raw:?}");
        }
        assert!(matches!(
            escape_for_terminal("plain ü 图"),
            Cow::Borrowed(_)
        ));
    }
}
