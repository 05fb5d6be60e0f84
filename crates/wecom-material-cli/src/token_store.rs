//! The access-token cache file shared by successive runs.
//!
//! One JSON object maps a key per app to the core's [`StoredToken`]. The key is built from the
//! base URL, the corp id and an MD5 of the secret (domain-separated), so the secret itself is
//! never written. The file holds access tokens in clear: it is created with mode 0600 in a
//! directory of mode 0700, and replaced atomically (write a temporary file, rename).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
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

/// The token cache file.
#[derive(Debug)]
pub(crate) struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// A store at `path` (nothing is read or created yet).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry; an absent or unreadable file is an empty cache (it is only a cache).
    fn read_all(&self) -> BTreeMap<String, StoredToken> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!(
                    "ignoring unreadable token cache {}: {e}",
                    self.path.display()
                );
                BTreeMap::new()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                log::warn!("cannot read token cache {}: {e}", self.path.display());
                BTreeMap::new()
            }
        }
    }

    /// The token stored for `key`.
    pub(crate) fn load(&self, key: &str) -> Option<StoredToken> {
        self.read_all().remove(key)
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
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
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

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
