//! `Range` requests and `Content-Range` answers (RFC 9110 §14), as WeCom's `media/get` uses
//! them (SPEC §4).

use std::fmt;

/// A byte range to request: `bytes=start-end` (inclusive) or `bytes=start-` (to the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive; `None` for "to the end".
    pub end_inclusive: Option<u64>,
}

impl ByteRange {
    /// The `Range` header value.
    pub fn header_value(&self) -> String {
        match self.end_inclusive {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }

    /// How many bytes the range asks for, if bounded (and fewer than 2^64: `bytes=0-` up to
    /// `u64::MAX` cannot be counted in a `u64`, so it is `None` too). A range that ends before
    /// it starts asks for 0 bytes.
    pub fn len(&self) -> Option<u64> {
        let end = self.end_inclusive?;
        match end.checked_sub(self.start) {
            None => Some(0),
            Some(span) => span.checked_add(1),
        }
    }

    /// Whether the range asks for no bytes at all (it ends before it starts).
    pub fn is_empty(&self) -> bool {
        self.end_inclusive.is_some_and(|end| end < self.start)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

/// A parsed `Content-Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete` (`complete` is `None` for `*`).
    Bytes {
        /// First byte sent.
        first: u64,
        /// Last byte sent, inclusive.
        last: u64,
        /// Size of the whole representation, when known.
        complete: Option<u64>,
    },
    /// `bytes */complete`, sent with 416.
    Unsatisfied {
        /// Size of the whole representation.
        complete: u64,
    },
}

impl ContentRange {
    /// Parses a `Content-Range` value; `None` for anything malformed or inconsistent
    /// (`last < first`, `last >= complete`, or a part of 2^64 bytes, whose length no `u64`
    /// holds).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?.trim();
        let rest = text.strip_prefix("bytes")?;
        let rest = rest.strip_prefix(' ')?.trim_start();
        let (range, complete) = rest.split_once('/')?;
        let complete = match complete.trim() {
            "*" => None,
            n => Some(parse_u64(n)?),
        };
        if range.trim() == "*" {
            return complete.map(|complete| ContentRange::Unsatisfied { complete });
        }
        let (first, last) = range.trim().split_once('-')?;
        let (first, last) = (parse_u64(first)?, parse_u64(last)?);
        if last < first || last - first == u64::MAX || complete.is_some_and(|c| last >= c) {
            return None;
        }
        Some(ContentRange::Bytes {
            first,
            last,
            complete,
        })
    }

    /// Number of bytes in the part, for `Bytes`.
    pub fn part_len(&self) -> Option<u64> {
        match *self {
            ContentRange::Bytes { first, last, .. } => Some(last - first + 1),
            ContentRange::Unsatisfied { .. } => None,
        }
    }

    /// The size of the whole media, when given.
    pub fn complete(&self) -> Option<u64> {
        match *self {
            ContentRange::Bytes { complete, .. } => complete,
            ContentRange::Unsatisfied { complete } => Some(complete),
        }
    }
}

/// Digits only (no sign, no spaces inside), no overflow.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            ContentRange::parse(b"bytes 0-1023/2048"),
            Some(ContentRange::Bytes {
                first: 0,
                last: 1023,
                complete: Some(2048)
            })
        );
        assert_eq!(
            ContentRange::parse(b"bytes 5-9/*"),
            Some(ContentRange::Bytes {
                first: 5,
                last: 9,
                complete: None
            })
        );
        assert_eq!(
            ContentRange::parse(b"bytes */2048"),
            Some(ContentRange::Unsatisfied { complete: 2048 })
        );
        for bad in [
            &b"bytes 9-5/10"[..],
            b"bytes 0-10/10",
            b"bytes=0-1/2",
            b"items 0-1/2",
            b"bytes -1-2/3",
            b"bytes 0-1/+2",
            b"\xff",
            b"bytes 0-99999999999999999999/1",
        ] {
            assert_eq!(
                ContentRange::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            ByteRange {
                start: 10,
                end_inclusive: Some(19)
            }
            .header_value(),
            "bytes=10-19"
        );
        assert_eq!(
            ByteRange {
                start: 10,
                end_inclusive: None
            }
            .to_string(),
            "bytes=10-"
        );
    }

    /// A range's length is what it asks for: `end - start + 1`, 0 when it ends before it
    /// starts, unknown when open or when it spans all 2^64 bytes.
    #[test]
    fn a_range_counts_what_it_asks_for() {
        let range = |start, end_inclusive| ByteRange {
            start,
            end_inclusive,
        };
        assert_eq!(range(10, Some(19)).len(), Some(10));
        assert_eq!(range(7, Some(7)).len(), Some(1));
        assert!(!range(7, Some(7)).is_empty());
        assert_eq!(range(8, Some(7)).len(), Some(0));
        assert!(range(8, Some(7)).is_empty());
        assert_eq!(range(0, None).len(), None);
        assert!(!range(0, None).is_empty());
        assert_eq!(range(0, Some(u64::MAX)).len(), None);
        assert_eq!(range(1, Some(u64::MAX)).len(), Some(u64::MAX));
    }

    /// The part's length and the whole's size, as the answer states them; a part of the
    /// largest size a `u64` counts is accepted, one byte more is not.
    #[test]
    fn an_answer_states_its_part_and_the_whole() {
        let part = ContentRange::parse(b"bytes 100-199/1000").unwrap();
        assert_eq!((part.part_len(), part.complete()), (Some(100), Some(1000)));
        let open = ContentRange::parse(b" bytes  5-5/* ").unwrap();
        assert_eq!((open.part_len(), open.complete()), (Some(1), None));
        let unsatisfied = ContentRange::parse(b"bytes */77").unwrap();
        assert_eq!(
            (unsatisfied.part_len(), unsatisfied.complete()),
            (None, Some(77))
        );
        assert_eq!(ContentRange::parse(b"bytes */*"), None);
        assert_eq!(
            ContentRange::parse(b"bytes 0-9/9"),
            None,
            "last must be below the whole"
        );
        assert_eq!(
            ContentRange::parse(b"bytes 0-8/9").and_then(|r| r.part_len()),
            Some(9)
        );
        let max = format!("bytes 1-{}/*", u64::MAX);
        assert_eq!(
            ContentRange::parse(max.as_bytes()).and_then(|r| r.part_len()),
            Some(u64::MAX)
        );
        let over = format!("bytes 0-{}/*", u64::MAX);
        assert_eq!(ContentRange::parse(over.as_bytes()), None);
        assert_eq!(ContentRange::parse(b"bytes 0-/9"), None);
        assert_eq!(ContentRange::parse(b"bytes0-1/9"), None);
    }
}
