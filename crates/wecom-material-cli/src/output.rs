//! What a command prints on stdout: one JSON object with `--json` (one per line, JSON Lines,
//! for a command over several items), lines for people otherwise; notices on stderr unless
//! `--quiet`.

use std::io::Write;

use serde_json::Value;

/// Where results go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// `--json` was given.
    pub(crate) json: bool,
    /// `--quiet` was given: no notices, no progress.
    pub(crate) quiet: bool,
}

impl Output {
    /// Prints `json` (one line) in JSON mode (serde_json escapes control characters as JSON
    /// does), else the text `human` builds, with every control and Unicode format character
    /// but its line breaks escaped ([`terminal_lines`]).
    pub(crate) fn emit(&self, json: Value, human: impl FnOnce() -> String) {
        let mut stdout = std::io::stdout().lock();
        let text = if self.json {
            json.to_string()
        } else {
            terminal_lines(&human())
        };
        // A closed stdout (`| head`) is not worth a panic.
        let _ = writeln!(stdout, "{}", text.trim_end_matches('\n'));
        let _ = stdout.flush();
    }

    /// Prints one JSON object as one line on stdout, whatever the mode (JSON Lines items and
    /// failure objects).
    pub(crate) fn json_line(value: &Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{value}");
        let _ = stdout.flush();
    }

    /// A note for people on stderr (nothing in JSON mode or with `--quiet`).
    pub(crate) fn note(&self, text: &str) {
        if !self.json && !self.quiet {
            eprintln!("{}", terminal_lines(text));
        }
    }
}

/// A server string (media id, job id, URL, filename, content type, errmsg) as it may reach a
/// terminal: control characters (ESC, CR, LF…) and Unicode format characters (bidi overrides
/// such as U+202E, zero-width characters) written as `\u{…}`, so a hostile answer can neither
/// rewrite the screen nor disguise a name. Every server string in text output goes through it.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    wecom_material_core::printable::escape_for_terminal(text)
}

/// Text for the terminal, line by line: the line breaks the CLI put there are kept, anything
/// else [`shown`] escapes is escaped (the last guard for a server string that was not
/// passed through [`shown`]).
pub(crate) fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(wecom_material_core::printable::escape_for_terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `2026-11-25 17:09:39 UTC` for Unix seconds.
pub(crate) fn utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let rem = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `12.34 MiB` style sizes for people: the progress bar's units (binary), used everywhere.
pub(crate) fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times_and_sizes() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_380_000_000), "2013-09-24 05:20:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(45_000_000), "42.92 MiB");
        assert_eq!(size(20 * 1024 * 1024), "20.00 MiB");
    }

    /// Issue 19: a media id `abc\n\e[31mRED…` from an upload answer was printed raw, and a
    /// name with U+202E showed reversed.
    #[test]
    fn server_strings_are_escaped_for_the_terminal() {
        assert_eq!(shown("abc\n\u{1b}[31mRED"), r"abc\u{a}\u{1b}[31mRED");
        assert_eq!(shown("invoice\u{202e}fdp.exe"), r"invoice\u{202e}fdp.exe");
        assert_eq!(shown("产品图.png"), "产品图.png");
        assert_eq!(
            terminal_lines("media_id   a\u{1b}[2J\ncreated_at x\u{200f}"),
            "media_id   a\\u{1b}[2J\ncreated_at x\\u{200f}"
        );
        assert_eq!(terminal_lines(r"C:\dir\file"), r"C:\dir\file");
    }
}
