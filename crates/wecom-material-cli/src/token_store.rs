//! The access-token cache file shared by successive runs.
//!
//! One JSON object maps a key per app to the core's [`StoredToken`]. The key is built from the
//! base URL, the corp id and an MD5 of the secret (domain-separated), so the secret itself is
//! never written. The file holds access tokens in clear: it is created with mode 0600 in a
//! directory of mode 0700, and replaced atomically (write a temporary file, rename). A file
//! or directory found with a wider mode is re-created private, with one warning.
//!
//! The file is read only when it is a regular file of at most [`MAX_CACHE_FILE`] bytes
//! (`--token-cache /dev/zero` used to be read until the process was killed); anything else is
//! ignored with a warning, as an unreadable cache is.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use wecom_material_core::StoredToken;
use wecom_material_core::md5sum::Md5Hex;

/// The default cache file: `$XDG_CACHE_HOME/wecom-material/tokens.json`, else
/// `$HOME/.cache/wecom-material/tokens.json`; `None` when neither is set.
pub(crate) fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|home| home.join(".cache"))
        })?;
    Some(base.join("wecom-material").join("tokens.json"))
}

/// The cache key of one app: never the secret, only a hash of it.
pub(crate) fn cache_key(base_url: &str, corp_id: &str, secret: &str) -> String {
    let mut hasher = Md5Hex::new();
    hasher.update(b"wecom-material token cache v1\0");
    hasher.update(secret.as_bytes());
    format!("{base_url} {corp_id} {}", hasher.finish())
}

/// The largest cache file read: 16 KiB. An entry is about 700 bytes (a 512-byte token at
/// most), and expired entries are dropped at every write.
pub(crate) const MAX_CACHE_FILE: u64 = 16 * 1024;

/// The token cache file.
#[derive(Debug)]
pub(crate) struct TokenStore {
    path: PathBuf,
    /// The warning about a too-wide mode was given (once per run).
    warned_mode: std::sync::atomic::AtomicBool,
}

impl TokenStore {
    /// A store at `path` (nothing is read or created yet).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            warned_mode: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The file's bytes: `Ok(None)` when there is no file; an error for a file that is not
    /// a regular file or is over [`MAX_CACHE_FILE`] bytes (checked before it is opened, so a
    /// FIFO is never opened, and again while reading).
    fn read_bounded(&self) -> io::Result<Option<Vec<u8>>> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let too_big = || io::Error::other(format!("larger than {MAX_CACHE_FILE} bytes"));
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        if meta.len() > MAX_CACHE_FILE {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        fs::File::open(&self.path)?
            .take(MAX_CACHE_FILE + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_CACHE_FILE {
            return Err(too_big());
        }
        Ok(Some(bytes))
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry; an absent or unreadable file is an empty cache (it is only a cache).
    fn read_all(&self) -> BTreeMap<String, StoredToken> {
        match self.read_bounded() {
            Ok(Some(bytes)) => parse_cache(&bytes).unwrap_or_else(|e| {
                log::warn!(
                    "ignoring unreadable token cache {}: {e}",
                    self.path.display()
                );
                BTreeMap::new()
            }),
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                log::warn!("ignoring token cache {}: {e}", self.path.display());
                BTreeMap::new()
            }
        }
    }

    /// The token stored for `key`. A file or directory found readable by others is first
    /// re-created private (see [`TokenStore::make_private`]).
    pub(crate) fn load(&self, key: &str) -> Option<StoredToken> {
        // Only a file that is a token cache is ever re-created: a path that names something
        // else (a device, another file) is ignored, never rewritten or re-moded.
        let parsed = match self.read_bounded() {
            Ok(Some(bytes)) => parse_cache(&bytes).ok(),
            _ => None,
        };
        let Some(mut all) = parsed else {
            return self.read_all().remove(key);
        };
        self.make_private(&all);
        all.remove(key)
    }

    /// Re-creates the file with mode 0600 (and sets its directory to 0700) when either is
    /// open to group or others, with one warning. The tokens it holds may have been read by
    /// others already; the next gettoken replaces them as they expire.
    #[cfg(unix)]
    fn make_private(&self, entries: &BTreeMap<String, StoredToken>) {
        use std::os::unix::fs::PermissionsExt;
        let wide = |p: &Path, is_kind: fn(&fs::Metadata) -> bool| {
            fs::symlink_metadata(p)
                .ok()
                .filter(is_kind)
                .map(|m| m.permissions().mode() & 0o777)
                .filter(|mode| mode & 0o077 != 0)
        };
        let dir = self.dir();
        let (file_mode, dir_mode) = (
            wide(&self.path, fs::Metadata::is_file),
            wide(dir, fs::Metadata::is_dir),
        );
        if file_mode.is_none() && dir_mode.is_none() {
            return;
        }
        if !self
            .warned_mode
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let shown = |m: Option<u32>| m.map_or("private".to_owned(), |m| format!("{m:04o}"));
            log::warn!(
                "token cache {} was open to other users (file {}, directory {}); re-created \
                 private (0600, directory 0700)",
                self.path.display(),
                shown(file_mode),
                shown(dir_mode)
            );
        }
        // Only the directory this tool creates (`…/wecom-material`) is re-moded: a cache
        // given in a shared directory (`/tmp`, a home) must not change that directory.
        let ours = dir.file_name().is_some_and(|n| n == "wecom-material");
        if dir_mode.is_some()
            && ours
            && let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        {
            log::warn!("cannot make {} private: {e}", dir.display());
        }
        if file_mode.is_some() {
            let written = serde_json::to_vec_pretty(entries)
                .map_err(io::Error::other)
                .and_then(|json| self.write_private(&json));
            if let Err(e) = written {
                log::warn!("cannot re-create token cache {}: {e}", self.path.display());
            }
        }
    }

    #[cfg(not(unix))]
    fn make_private(&self, _entries: &BTreeMap<String, StoredToken>) {}

    /// The directory of the file.
    fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// Stores (or with `None` removes) the token of `key`, dropping expired entries of other
    /// apps on the way.
    pub(crate) fn save(
        &self,
        key: &str,
        token: Option<StoredToken>,
        now_unix: u64,
    ) -> io::Result<()> {
        let mut all = self.read_all();
        all.retain(|_, t| t.expires_at_unix > now_unix);
        match token {
            Some(t) => {
                all.insert(key.to_owned(), t);
            }
            None => {
                if all.remove(key).is_none() && !self.path.exists() {
                    return Ok(());
                }
            }
        }
        let json = serde_json::to_vec_pretty(&all).map_err(io::Error::other)?;
        self.write_private(&json)
    }

    /// Writes the file through a private temporary file and a rename.
    fn write_private(&self, bytes: &[u8]) -> io::Result<()> {
        let dir = self.dir();
        create_private_dir(dir)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens.json".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let result = (|| {
            let mut file = open_private(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Creates `dir` (and its parents) with mode 0700 on Unix, unless it is there already.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the file at `path` (never an existing one) with mode 0600 on Unix, for writing.
fn open_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Parses the cache file's JSON: app key → stored token. Public to the crate for the fuzz
/// target's twin and the tests; never panics on any input.
pub(crate) fn parse_cache(
    bytes: &[u8],
) -> Result<BTreeMap<String, StoredToken>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wecom-token-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn token(text: &str) -> StoredToken {
        StoredToken {
            access_token: text.into(),
            expires_at_unix: u64::MAX / 2,
            generation: 1,
        }
    }

    /// Issue 19: an existing cache file with mode 0644 in a 0755 directory was used as is.
    #[test]
    fn a_cache_open_to_others_is_re_created_private_and_still_used() {
        let dir = temp_dir("modes").join("wecom-material");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.json");
        let store = TokenStore::new(path.clone());
        store.save("app", Some(token("TOK")), 0).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let store = TokenStore::new(path.clone());
        assert_eq!(store.load("app").unwrap().access_token, "TOK");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert!(store.warned_mode.load(std::sync::atomic::Ordering::Relaxed));
        // A private cache is left alone.
        let store = TokenStore::new(path.clone());
        assert!(store.load("app").is_some());
        assert!(!store.warned_mode.load(std::sync::atomic::Ordering::Relaxed));
        // A file open to others in a private directory: the file is re-created.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        let store = TokenStore::new(path.clone());
        assert!(store.load("app").is_some());
        assert_eq!((mode(&path), mode(&dir)), (0o600, 0o700));
        assert!(store.warned_mode.load(std::sync::atomic::Ordering::Relaxed));
        // A directory the tool did not create is never re-moded (only the file is).
        let shared = temp_dir("shared-dir");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        let path = shared.join("tokens.json");
        TokenStore::new(path.clone())
            .save("app", Some(token("TOK")), 0)
            .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(TokenStore::new(path.clone()).load("app").is_some());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&shared), 0o755);
        // A file that is not a token cache is neither rewritten nor re-moded.
        let other = shared.join("notes.txt");
        fs::write(&other, "not json").unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(TokenStore::new(other.clone()).load("app").is_none());
        assert_eq!(fs::read_to_string(&other).unwrap(), "not json");
        assert_eq!(mode(&other), 0o644);
        let _ = fs::remove_dir_all(dir.parent().unwrap());
        let _ = fs::remove_dir_all(&shared);
    }

    /// Issue 19: `--token-cache /dev/zero` was read until the OOM killer came; a 1 GiB sparse
    /// file cost 1 GB of memory. Only a regular file of at most 16 KiB is read.
    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = temp_dir("bounded");
        let store = TokenStore::new(PathBuf::from("/dev/zero"));
        assert!(matches!(store.read_bounded(), Err(e) if e.to_string() == "not a regular file"));
        assert!(store.load("app").is_none());
        let sparse = dir.join("sparse.json");
        fs::File::create(&sparse)
            .unwrap()
            .set_len(1024 * 1024 * 1024)
            .unwrap();
        let store = TokenStore::new(sparse);
        assert!(
            matches!(store.read_bounded(), Err(e) if e.to_string().contains("larger than 16384"))
        );
        assert!(store.load("app").is_none());
        let store = TokenStore::new(dir.clone());
        assert!(store.load("app").is_none());
        let store = TokenStore::new(dir.join("absent.json"));
        assert!(matches!(store.read_bounded(), Ok(None)));
        let _ = fs::remove_dir_all(&dir);
    }

    /// A save keeps the entries of other apps that are still valid at `now` and drops those
    /// expired at or before it (as the client refuses to import them); removing an entry
    /// does the same, and without a file it creates none.
    #[test]
    fn a_save_drops_the_entries_expired_at_now() {
        let dir = temp_dir("expiry");
        let path = dir.join("tokens.json");
        let at = |expires_at_unix| StoredToken {
            expires_at_unix,
            ..token("T")
        };
        let store = TokenStore::new(path.clone());
        store.save("absent", None, 100).unwrap();
        assert!(!path.exists(), "removing from no file creates one");
        for (key, expires) in [("a", 99), ("b", 100), ("c", 101)] {
            store.save(key, Some(at(expires)), 0).unwrap();
        }
        store.save("mine", Some(token("MINE")), 100).unwrap();
        let kept: Vec<String> = store.read_all().into_keys().collect();
        assert_eq!(kept, ["c", "mine"]);
        store.save("d", Some(at(150)), 0).unwrap();
        // Removing an entry that is not there still drops the expired ones.
        store.save("absent", None, 120).unwrap();
        let kept: Vec<String> = store.read_all().into_keys().collect();
        assert_eq!(kept, ["d", "mine"]);
        store.save("mine", None, 120).unwrap();
        let kept: Vec<String> = store.read_all().into_keys().collect();
        assert_eq!(kept, ["d"]);
        let _ = fs::remove_dir_all(&dir);
    }

    /// The limit is inclusive: a cache of exactly 16 KiB is read, one byte more is refused.
    /// The size is checked again while reading: a file whose size says 0 but that holds more
    /// (a /proc file) is refused too.
    #[test]
    fn a_cache_of_16_kib_is_read_and_a_larger_one_even_one_with_a_size_of_0_is_not() {
        let dir = temp_dir("limit");
        let entry = serde_json::to_vec(&BTreeMap::from([("app".to_owned(), token("TOK"))]));
        let entry = entry.unwrap();
        // Spaces first: any byte cut off the end would leave JSON that does not parse.
        let mut bytes = vec![b' '; MAX_CACHE_FILE as usize - entry.len()];
        bytes.extend_from_slice(&entry);
        let path = dir.join("tokens.json");
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            TokenStore::new(path.clone())
                .load("app")
                .unwrap()
                .access_token,
            "TOK"
        );
        bytes.insert(0, b' ');
        fs::write(&path, &bytes).unwrap();
        let store = TokenStore::new(path.clone());
        assert!(
            matches!(store.read_bounded(), Err(e) if e.to_string() == "larger than 16384 bytes")
        );
        assert!(store.load("app").is_none());
        #[cfg(target_os = "linux")]
        {
            let proc_file = PathBuf::from("/proc/self/smaps");
            assert_eq!(fs::metadata(&proc_file).unwrap().len(), 0);
            assert!(fs::read(&proc_file).unwrap().len() as u64 > MAX_CACHE_FILE + 1);
            let store = TokenStore::new(proc_file);
            assert!(
                matches!(store.read_bounded(), Err(e) if e.to_string() == "larger than 16384 bytes")
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// Tampered entries never panic the parser, and an oversized token or a lifetime of
    /// centuries in the file is refused where it enters the client (`AccessToken::new`,
    /// `TokenCache::import`).
    #[test]
    fn tampered_entries_are_parsed_safely() {
        for junk in [
            &b""[..],
            b"[]",
            b"{\"k\": 1}",
            b"{\"k\": {\"access_token\": 5}}",
            b"{\"k\": {\"access_token\": \"t\", \"expires_at_unix\": -1, \"generation\": 0}}",
            b"\xff\xfe",
        ] {
            assert!(parse_cache(junk).is_err(), "{junk:?}");
        }
        let entry = format!(
            "{{\"k\": {{\"access_token\": \"{}\", \"expires_at_unix\": 18446744073709551615, \"generation\": 0}}}}",
            "T".repeat(600)
        );
        let parsed = parse_cache(entry.as_bytes()).unwrap();
        let stored = parsed["k"].clone();
        let mut cache = wecom_material_core::ClientState::new(
            wecom_material_core::ops::gettoken::GetToken::new(
                "ww",
                wecom_material_core::CorpSecret::new("s"),
            ),
        );
        let now = std::time::Instant::now();
        let wall = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        assert!(!cache.import_token(stored.clone(), now, wall));
        let far = StoredToken {
            access_token: "T".into(),
            ..stored
        };
        assert!(!cache.import_token(far, now, wall));
    }
}
