//! The bounded store of media and `uploadimg` images: media go when they expire on the
//! emulator's clock, when deleted, and (media and images, oldest first) when the bytes held
//! pass the budget. Every insertion gets a sequence number; two ordered indexes make each
//! eviction O(log n) instead of a scan.

use std::collections::{BTreeMap, HashMap};

use crate::state::{ServedFile, StoredMedia};

/// What a sequence number points at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Media(String),
    Image(String),
}

/// An entry the byte budget pushed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evicted {
    /// `media` or `image`.
    pub(crate) what: &'static str,
    /// Its id (media) or path (image).
    pub(crate) key: String,
    /// Its size.
    pub(crate) bytes: u64,
}

#[derive(Debug)]
struct MediaEntry {
    media: StoredMedia,
    seq: u64,
}

#[derive(Debug)]
struct ImageEntry {
    file: ServedFile,
    seq: u64,
}

/// Media and images with their indexes. `bytes` is the sum of the stored bodies.
#[derive(Debug, Default)]
pub(crate) struct MediaStore {
    media: HashMap<String, MediaEntry>,
    images: HashMap<String, ImageEntry>,
    /// Insertion order of everything, for the budget.
    order: BTreeMap<u64, Slot>,
    /// Media by (created_at, seq), for expiry (exact even when the clock was set back).
    by_created: BTreeMap<(u64, u64), String>,
    next_seq: u64,
    bytes: u64,
}

impl MediaStore {
    /// How many media are stored (expired ones not swept yet included).
    pub(crate) fn media_count(&self) -> usize {
        self.media.len()
    }

    /// How many uploadimg images are stored.
    pub(crate) fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Bytes held by media and images together.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn media(&self, id: &str) -> Option<&StoredMedia> {
        self.media.get(id).map(|e| &e.media)
    }

    pub(crate) fn image(&self, key: &str) -> Option<&ServedFile> {
        self.images.get(key).map(|e| &e.file)
    }

    /// Stores a media under a new id (the caller made it unique).
    pub(crate) fn insert_media(&mut self, id: String, media: StoredMedia) {
        let seq = self.take_seq();
        self.bytes += media.bytes.len() as u64;
        self.order.insert(seq, Slot::Media(id.clone()));
        self.by_created.insert((media.created_at, seq), id.clone());
        if let Some(old) = self.media.insert(id, MediaEntry { media, seq }) {
            self.unindex_media(&old);
        }
    }

    /// Stores an image under its path.
    pub(crate) fn insert_image(&mut self, key: String, file: ServedFile) {
        let seq = self.take_seq();
        self.bytes += file.bytes.len() as u64;
        self.order.insert(seq, Slot::Image(key.clone()));
        if let Some(old) = self.images.insert(key, ImageEntry { file, seq }) {
            self.bytes -= old.file.bytes.len() as u64;
            self.order.remove(&old.seq);
        }
    }

    /// Removes a media; whether it was there.
    pub(crate) fn remove_media(&mut self, id: &str) -> bool {
        match self.media.remove(id) {
            Some(entry) => {
                self.unindex_media(&entry);
                true
            }
            None => false,
        }
    }

    /// Removes every media created at or before `now - lifetime` (created_at + lifetime <=
    /// now); how many went.
    pub(crate) fn evict_expired(&mut self, now: u64, lifetime: u64) -> usize {
        let mut n = 0;
        while let Some((&(created_at, _), _)) = self.by_created.first_key_value() {
            if created_at.saturating_add(lifetime) > now {
                break;
            }
            let Some((_, id)) = self.by_created.pop_first() else {
                break;
            };
            if self.remove_media(&id) {
                n += 1;
            }
        }
        n
    }

    /// Removes the oldest entries until at most `budget` bytes are held; what went.
    pub(crate) fn evict_over_budget(&mut self, budget: u64) -> Vec<Evicted> {
        let mut out = Vec::new();
        while self.bytes > budget {
            let Some((_, slot)) = self.order.pop_first() else {
                break;
            };
            match slot {
                Slot::Media(id) => {
                    if let Some(entry) = self.media.remove(&id) {
                        let bytes = entry.media.bytes.len() as u64;
                        self.unindex_media(&entry);
                        out.push(Evicted {
                            what: "media",
                            key: id,
                            bytes,
                        });
                    }
                }
                Slot::Image(key) => {
                    if let Some(entry) = self.images.remove(&key) {
                        let bytes = entry.file.bytes.len() as u64;
                        self.bytes -= bytes;
                        out.push(Evicted {
                            what: "image",
                            key,
                            bytes,
                        });
                    }
                }
            }
        }
        out
    }

    fn unindex_media(&mut self, entry: &MediaEntry) {
        self.bytes -= entry.media.bytes.len() as u64;
        self.order.remove(&entry.seq);
        self.by_created.remove(&(entry.media.created_at, entry.seq));
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::config::MediaKind;

    fn media(len: usize, created_at: u64) -> StoredMedia {
        StoredMedia {
            kind: MediaKind::File,
            bytes: Bytes::from(vec![1u8; len]),
            content_type: "application/octet-stream".into(),
            filename: "a.bin".into(),
            created_at,
            corp_id: None,
        }
    }

    fn image(len: usize) -> ServedFile {
        ServedFile {
            bytes: Bytes::from(vec![2u8; len]),
            content_type: "image/png".into(),
            range_support: true,
            gate: None,
        }
    }

    #[test]
    fn expiry_removes_exactly_the_media_past_their_lifetime() {
        let mut s = MediaStore::default();
        s.insert_media("a".into(), media(10, 100));
        s.insert_media("b".into(), media(20, 200));
        s.insert_image("i.png".into(), image(5));
        assert_eq!(s.bytes(), 35);
        assert_eq!(s.evict_expired(199, 100), 0);
        assert_eq!(s.evict_expired(200, 100), 1);
        assert!(s.media("a").is_none() && s.media("b").is_some());
        assert_eq!(s.bytes(), 25);
        // Images never expire.
        assert_eq!(s.evict_expired(10_000, 100), 1);
        assert_eq!((s.media_count(), s.image_count(), s.bytes()), (0, 1, 5));
    }

    #[test]
    fn the_budget_evicts_oldest_first_across_media_and_images() {
        let mut s = MediaStore::default();
        s.insert_media("a".into(), media(10, 1));
        s.insert_image("i.png".into(), image(10));
        s.insert_media("b".into(), media(10, 1));
        let gone = s.evict_over_budget(15);
        assert_eq!(
            gone,
            vec![
                Evicted {
                    what: "media",
                    key: "a".into(),
                    bytes: 10
                },
                Evicted {
                    what: "image",
                    key: "i.png".into(),
                    bytes: 10
                },
            ]
        );
        assert_eq!((s.media_count(), s.image_count(), s.bytes()), (1, 0, 10));
        assert!(s.evict_over_budget(10).is_empty());
    }

    #[test]
    fn removal_keeps_the_indexes_consistent() {
        let mut s = MediaStore::default();
        s.insert_media("a".into(), media(10, 1));
        s.insert_media("b".into(), media(10, 2));
        assert!(s.remove_media("a"));
        assert!(!s.remove_media("a"));
        assert_eq!(s.bytes(), 10);
        assert_eq!(s.evict_expired(1_000, 1), 1);
        assert_eq!(s.bytes(), 0);
        assert!(s.order.is_empty() && s.by_created.is_empty());
    }
}
