//! Saving a media to a file, resumable: the record kept beside the partial file, the policy
//! that decides whether a partial file is continued, and the errors of a save.
//!
//! The file-system side (the part file, its lock, the no-replace move) is the host's: see
//! `wecom-material-host`'s `save` module. Everything it decides on comes from here:
//!
//! * [`ResumeDecision::decide`]: what to do with a partial file found at the part's name —
//!   continue it (same media, same endpoint, a record that passes every check), or start
//!   over with the old part set aside. A record is never trusted on its word: it must be of
//!   this [`RECORD_VERSION`], at most [`MAX_RECORD_LEN`] bytes with at most
//!   [`MAX_INTERVALS`] intervals, sorted, disjoint and inside its total, and the part must
//!   be long enough to hold the bytes it claims.
//! * The total: a resumed save first fetches one small range; a media whose size is no
//!   longer the recorded one ends the task with [`DownloadTask::total_changed`] set, and the
//!   save starts over (see [`DownloadTask::for_save`]).
//! * When to bring the record up to date while the ranges run: [`DownloadTask::record_due`]
//!   (every [`RECORD_EVERY_BYTES`] or every [`RECORD_EVERY`], whichever comes first), so a
//!   process killed at any moment loses at most that much.
//! * When the target can be checked: [`DownloadTask::media_info`] is known as soon as the
//!   first response head names the file (before its body is read).
//!
//! [`DownloadTask`]: crate::DownloadTask
//! [`DownloadTask::for_save`]: crate::DownloadTask::for_save
//! [`DownloadTask::total_changed`]: crate::DownloadTask::total_changed
//! [`DownloadTask::record_due`]: crate::DownloadTask::record_due
//! [`DownloadTask::media_info`]: crate::DownloadTask::media_info

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::media_type::MediaId;
use crate::ops::get_media::MediaEndpoint;
use crate::task::ResumeRecord;

/// The version of the record format this crate writes and reads (1 was the CLI's own
/// format, without intervals for one-stream parts; it is set aside, never trusted).
pub const RECORD_VERSION: u32 = 2;
/// The largest record read back; a longer file is set aside unread.
pub const MAX_RECORD_LEN: usize = 64 * 1024;
/// The most intervals a record may hold (a save in ranges leaves a few per connection).
pub const MAX_INTERVALS: usize = 4096;
/// The record is brought up to date at least after this many new bytes...
pub const RECORD_EVERY_BYTES: u64 = 8 * 1024 * 1024;
/// ... and at least this often while bytes arrive.
pub const RECORD_EVERY: Duration = Duration::from_secs(1);

/// What a partial save left, kept as JSON beside the part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The media saved.
    pub media_id: String,
    /// `"media"` or `"hd-voice"` ([`endpoint_name`]).
    pub endpoint: String,
    /// The media's size.
    pub total: u64,
    /// Byte intervals `[start, end)` in the part file, sorted and disjoint.
    pub done: Vec<(u64, u64)>,
}

/// The name of an endpoint in a record.
pub fn endpoint_name(endpoint: MediaEndpoint) -> &'static str {
    match endpoint {
        MediaEndpoint::Media => "media",
        MediaEndpoint::HdVoice => "hd-voice",
    }
}

impl SaveRecord {
    /// The record of `progress` of a save of `media_id` from `endpoint`.
    pub fn new(media_id: &MediaId, endpoint: MediaEndpoint, progress: &ResumeRecord) -> Self {
        Self {
            version: RECORD_VERSION,
            media_id: media_id.as_str().to_owned(),
            endpoint: endpoint_name(endpoint).to_owned(),
            total: progress.total,
            done: progress.done.clone(),
        }
    }

    /// The record as the JSON written beside the part.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail; an empty record would be set
        // aside when read back, never trusted.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record back, checking everything: size, JSON, version, interval count and
    /// intervals (sorted, disjoint, non-empty, inside the total).
    pub fn parse(bytes: &[u8]) -> Result<Self, RecordRejected> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RecordRejected(format!(
                "the record is over {MAX_RECORD_LEN} bytes"
            )));
        }
        let record: SaveRecord = serde_json::from_slice(bytes)
            .map_err(|e| RecordRejected(format!("the record is not a save record: {e}")))?;
        if record.version != RECORD_VERSION {
            return Err(RecordRejected(format!(
                "the record is of version {}, not {RECORD_VERSION}",
                record.version
            )));
        }
        if record.done.len() > MAX_INTERVALS {
            return Err(RecordRejected(format!(
                "the record lists {} intervals (at most {MAX_INTERVALS})",
                record.done.len()
            )));
        }
        record
            .progress()
            .validate()
            .map_err(|e| RecordRejected(e.to_string()))?;
        Ok(record)
    }

    /// The bytes that arrived, as the download task takes them.
    pub fn progress(&self) -> ResumeRecord {
        ResumeRecord {
            total: self.total,
            done: self.done.clone(),
        }
    }
}

/// Why a record read back is not trusted (shown in the one warning of a set-aside part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejected(pub String);

impl fmt::Display for RecordRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do with what is at the part's name when a save starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeDecision {
    /// Nothing worth keeping is there (no part, or an empty one): start from byte 0.
    Fresh,
    /// Continue: the part holds the bytes this record names.
    Continue(ResumeRecord),
    /// The part is not provably a partial save of this media: set it (and its record)
    /// aside, never reading from it, and start from byte 0.
    StartOver {
        /// Why, for the one warning.
        reason: String,
    },
}

impl ResumeDecision {
    /// The policy: a part of `part_len` bytes with the record `record` (its bytes as read,
    /// at most [`MAX_RECORD_LEN`] + 1 of them; `None`: no record) is continued for a save of
    /// `media_id` from `endpoint` when the record is valid, names the same media and
    /// endpoint, is not complete already and the part holds every byte it claims. HD voice
    /// is fetched in one stream and never continued. Whether the total is still the same is
    /// checked by the first range fetched ([`DownloadTask::total_changed`]).
    ///
    /// [`DownloadTask::total_changed`]: crate::DownloadTask::total_changed
    pub fn decide(
        record: Option<&[u8]>,
        part_len: u64,
        media_id: &MediaId,
        endpoint: MediaEndpoint,
    ) -> Self {
        let start_over = |reason: String| ResumeDecision::StartOver { reason };
        let Some(bytes) = record else {
            return if part_len == 0 {
                ResumeDecision::Fresh
            } else {
                start_over("it has no record of what it holds".into())
            };
        };
        if endpoint == MediaEndpoint::HdVoice {
            return start_over("HD voice is fetched in one stream, never resumed".into());
        }
        let record = match SaveRecord::parse(bytes) {
            Ok(record) => record,
            Err(rejected) => return start_over(rejected.0),
        };
        if record.media_id != media_id.as_str() || record.endpoint != endpoint_name(endpoint) {
            return start_over(format!(
                "its record is of {} media {}",
                record.endpoint, record.media_id
            ));
        }
        let progress = record.progress();
        if progress.is_complete() {
            return start_over("its record says it is complete already".into());
        }
        let claimed_end = progress.done.last().map_or(0, |&(_, end)| end);
        if claimed_end > part_len {
            return start_over(format!(
                "its record claims bytes up to {claimed_end}, the part has {part_len}"
            ));
        }
        if progress.done.is_empty() {
            return start_over("its record names no bytes".into());
        }
        ResumeDecision::Continue(progress)
    }
}

/// What refuses, stops or fails a save, beyond the download's own errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum SaveError {
    /// The target exists (a symlink there included, even a dangling one) and the save was
    /// told to refuse: nothing was moved; at most the first chunk was fetched.
    TargetExists {
        /// The target.
        path: PathBuf,
    },
    /// Another save holds the part file (the same media into the same directory).
    Busy {
        /// The part file.
        part: PathBuf,
    },
    /// The save stopped before the end (a cancel, or a failure): the part and its record
    /// keep what arrived, and the next save of the same media continues from there.
    Stopped {
        /// Bytes kept in the part.
        kept: u64,
        /// The media's size, when known.
        total: Option<u64>,
        /// The part file.
        part: PathBuf,
        /// Why it stopped ([`Error::Cancelled`] for a cancel).
        cause: Box<Error>,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::TargetExists { path } => {
                write!(f, "{} exists; refusing to replace it", path.display())
            }
            SaveError::Busy { part } => write!(
                f,
                "another save of this media is running (it holds {})",
                part.display()
            ),
            SaveError::Stopped {
                kept,
                total,
                part,
                cause,
            } => {
                write!(f, "{cause}; kept {kept}")?;
                if let Some(total) = total {
                    write!(f, " of {total}")?;
                }
                write!(f, " bytes in {} for the next run", part.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_record_shows_its_reason() {
        let why = RecordRejected("the record names another media".to_owned());
        assert_eq!(why.to_string(), "the record names another media");
    }

    fn record_json(media: &str, endpoint: &str, total: u64, done: &str) -> Vec<u8> {
        format!(
            r#"{{"version":2,"media_id":"{media}","endpoint":"{endpoint}","total":{total},"done":{done}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_record_round_trips_and_its_own_media_is_continued() {
        let id = MediaId::new("m1");
        let progress = ResumeRecord {
            total: 100,
            done: vec![(0, 10), (50, 60)],
        };
        let json = SaveRecord::new(&id, MediaEndpoint::Media, &progress).to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"version":2,"media_id":"m1","endpoint":"media","total":100,"done":[[0,10],[50,60]]}"#
        );
        let decision = ResumeDecision::decide(Some(&json), 60, &id, MediaEndpoint::Media);
        assert_eq!(decision, ResumeDecision::Continue(progress));
    }

    #[test]
    fn anything_but_a_provable_partial_save_of_this_media_starts_over() {
        let id = MediaId::new("m1");
        let media = MediaEndpoint::Media;
        assert_eq!(
            ResumeDecision::decide(None, 0, &id, media),
            ResumeDecision::Fresh
        );
        let huge_record = vec![b' '; MAX_RECORD_LEN + 1];
        let many = format!(
            "[{}]",
            (0..MAX_INTERVALS as u64 + 1)
                .map(|i| format!("[{},{}]", 2 * i, 2 * i + 1))
                .collect::<Vec<_>>()
                .join(",")
        );
        let cases: Vec<(Option<Vec<u8>>, u64, &str)> = vec![
            (None, 5, "no record"),
            (
                Some(record_json("m2", "media", 100, "[[0,10]]")),
                10,
                "media m2",
            ),
            (
                Some(record_json("m1", "hd-voice", 100, "[[0,10]]")),
                10,
                "hd-voice",
            ),
            (
                Some(record_json("m1", "media", 100, "[[0,100]]")),
                100,
                "complete",
            ),
            (
                Some(record_json("m1", "media", 100, "[[0,50]]")),
                20,
                "up to 50",
            ),
            (Some(record_json("m1", "media", 100, "[]")), 20, "no bytes"),
            (
                Some(record_json("m1", "media", 100, "[[20,30],[0,10]]")),
                30,
                "sorted",
            ),
            (
                Some(record_json("m1", "media", 100, "[[0,20],[10,30]]")),
                30,
                "disjoint",
            ),
            (
                Some(record_json("m1", "media", 100, "[[0,101]]")),
                200,
                "inside",
            ),
            (
                Some(record_json("m1", "media", 10, "[[9223372036854775808,0]]")),
                10,
                "interval 0",
            ),
            (
                Some(record_json("m1", "media", 100, "[[0,-1]]")),
                10,
                "not a save",
            ),
            (Some(b"{\"version\":1}".to_vec()), 10, "not a save"),
            (
                Some(
                    br#"{"version":1,"media_id":"m1","endpoint":"media","total":9,"done":[]}"#
                        .to_vec(),
                ),
                10,
                "version 1",
            ),
            (Some(huge_record), 10, "over 65536 bytes"),
            (
                Some(record_json("m1", "media", 1 << 40, &many)),
                1 << 40,
                "4097 intervals",
            ),
            (Some(b"\0\0\0\0".to_vec()), 10, "not a save"),
        ];
        for (record, part_len, why) in cases {
            let decision = ResumeDecision::decide(record.as_deref(), part_len, &id, media);
            let ResumeDecision::StartOver { reason } = &decision else {
                panic!("{why}: {decision:?}");
            };
            assert!(reason.contains(why), "{why}: {reason}");
        }
    }

    /// The record's limits are inclusive: exactly [`MAX_INTERVALS`] intervals in exactly
    /// [`MAX_RECORD_LEN`] bytes are read (one more of either is refused, above).
    #[test]
    fn a_record_at_both_limits_is_read() {
        let done = (0..MAX_INTERVALS as u64)
            .map(|i| format!("[{},{}]", 2 * i, 2 * i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let total = 2 * MAX_INTERVALS as u64;
        let mut json = record_json("m1", "media", total, &format!("[{done}]"));
        assert!(json.len() < MAX_RECORD_LEN);
        json.resize(MAX_RECORD_LEN, b' ');
        let record = SaveRecord::parse(&json).unwrap();
        assert_eq!(record.done.len(), MAX_INTERVALS);
    }

    #[test]
    fn hd_voice_is_never_continued() {
        let id = MediaId::new("m1");
        let json = record_json("m1", "hd-voice", 100, "[[0,10]]");
        let decision = ResumeDecision::decide(Some(&json), 10, &id, MediaEndpoint::HdVoice);
        assert!(matches!(decision, ResumeDecision::StartOver { .. }));
    }

    #[test]
    fn a_stopped_save_says_how_much_is_kept_and_where() {
        let error = SaveError::Stopped {
            kept: 4096,
            total: Some(10_000),
            part: PathBuf::from("d/.m.part"),
            cause: Box::new(Error::Cancelled {
                operation: crate::error::OperationKind::Download,
                bytes: 100,
                total: None,
            }),
        };
        assert_eq!(
            error.to_string(),
            "download cancelled by the caller; 100 bytes had reached the sink; kept 4096 of 10000 bytes in d/.m.part for the next run"
        );
    }

    /// A save stopped by WeCom's answer still tells its code (the CLI's exit status and a
    /// caller's retry decision read it); one stopped by a cancel has none.
    #[test]
    fn a_save_stopped_by_an_errcode_tells_the_code() {
        let stopped = |cause| {
            Error::Save(SaveError::Stopped {
                kept: 0,
                total: None,
                part: PathBuf::from("d/.m.part"),
                cause: Box::new(cause),
            })
        };
        let api = crate::error::ApiError {
            code: crate::ErrCode::RateLimited,
            errmsg: "api freq out of limit".into(),
        };
        let code = stopped(Error::RateLimited(api)).errcode();
        assert_eq!(code, Some(crate::ErrCode::RateLimited));
        let cancelled = Error::Cancelled {
            operation: crate::error::OperationKind::Download,
            bytes: 0,
            total: None,
        };
        assert_eq!(stopped(cancelled).errcode(), None);
    }
}
