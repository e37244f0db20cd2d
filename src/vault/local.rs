//! The local vault: one AES-256-GCM encrypted file (format documented in `vault/format.rs`).
//!
//! Owns opening (decrypt into memory), lookups from memory, and changes that are
//! serialised across processes by an advisory lock on a sidecar `.<file>.lock`, applied to
//! the file's current contents (so two `hopgate vault set` runs do not lose each other's
//! entry) and written atomically. It never overwrites the vault file unless it could
//! decrypt it with the key it holds, never writes a partial file, and never logs secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::VaultError;
use super::format;
use super::fsutil;
use super::key::VaultKey;
use super::settings::VaultSettings;
use super::{validate_name, Store, StoreFuture};
use crate::secret::Credential;

/// The decrypted file body.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    entries: BTreeMap<String, Credential>,
}

/// The local encrypted credential file, decrypted in memory.
pub struct LocalVault {
    path: PathBuf,
    key: VaultKey,
    entries: RwLock<BTreeMap<String, Credential>>,
}

// === impl LocalVault ===

impl LocalVault {
    /// Opens the vault at `settings.path` with the configured key; the file must exist.
    pub fn open(settings: &VaultSettings) -> Result<Self, VaultError> {
        let key = settings.key_source()?.load()?;
        Self::open_with_key(&settings.path, key, false)
    }

    /// Like [`open`](Self::open), but a missing file is an empty vault (the file is
    /// created by the first [`set`](Self::set)). For `hopgate vault set`.
    pub fn open_or_create(settings: &VaultSettings) -> Result<Self, VaultError> {
        let key = settings.key_source()?.load()?;
        Self::open_with_key(&settings.path, key, true)
    }

    /// Opens the vault at `path` with `key`. With `create`, a missing file is an empty
    /// vault; otherwise it is [`VaultError::Missing`].
    pub fn open_with_key(
        path: impl Into<PathBuf>,
        key: VaultKey,
        create: bool,
    ) -> Result<Self, VaultError> {
        let path = path.into();
        let entries = match read_entries(&path, &key)? {
            Some(entries) => entries,
            None if create => BTreeMap::new(),
            None => return Err(VaultError::Missing { path }),
        };
        Ok(Self {
            path,
            key,
            entries: RwLock::new(entries),
        })
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds or replaces an entry. Returns whether an entry was replaced.
    pub fn set(&self, name: &str, credential: Credential) -> Result<bool, VaultError> {
        validate_name(name)?;
        if credential.user.is_empty() {
            return Err(VaultError::InvalidCredential {
                why: "the user name is empty",
            });
        }
        self.modify(|entries| {
            let replaced = entries.insert(name.to_owned(), credential).is_some();
            (true, replaced)
        })
    }

    /// Removes an entry. Returns whether it existed (nothing is written if not).
    pub fn remove(&self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        self.modify(|entries| {
            let existed = entries.remove(name).is_some();
            (existed, existed)
        })
    }

    /// Re-reads the file (e.g. after `hopgate vault set` by another process). On error the
    /// entries in memory are kept.
    pub fn reload(&self) -> Result<(), VaultError> {
        let entries = read_entries(&self.path, &self.key)?.unwrap_or_default();
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = entries;
        Ok(())
    }

    /// Applies `change` to the file's current contents under the cross-process lock, writes
    /// the result atomically when `change` says it changed something (first element), then
    /// refreshes memory. Returns `change`'s second element.
    fn modify(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Credential>) -> (bool, bool),
    ) -> Result<bool, VaultError> {
        let _lock = lock_file(&self.path)?;
        // The file, not memory, is the truth: another process may have written since open.
        // A file we cannot decrypt stops here, before anything is written.
        let mut entries = read_entries(&self.path, &self.key)?.unwrap_or_default();
        let (changed, result) = change(&mut entries);
        if changed {
            let body = Body { entries };
            let plaintext =
                Zeroizing::new(serde_json::to_vec(&body).map_err(|e| VaultError::Corrupt {
                    path: self.path.clone(),
                    why: format!("cannot encode entries: {e}"),
                })?);
            fsutil::write_atomic(&self.path, &format::seal(&self.key, &plaintext))?;
            entries = body.entries;
        }
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = entries;
        Ok(result)
    }
}

/// Synchronous reads (the file is in memory); [`Store`] wraps them for the gateway.
impl LocalVault {
    /// The credential stored under `name`, or [`VaultError::NotFound`].
    pub fn get(&self, name: &str) -> Result<Credential, VaultError> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| VaultError::NotFound {
                name: name.to_owned(),
            })
    }

    /// All entry names, sorted.
    pub fn list(&self) -> Vec<String> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

impl Store for LocalVault {
    fn get<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Credential> {
        Box::pin(std::future::ready(LocalVault::get(self, name)))
    }

    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(std::future::ready(Ok(LocalVault::list(self))))
    }
}

impl fmt::Debug for LocalVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("LocalVault")
            .field("path", &self.path)
            .field("entries", &count)
            .finish_non_exhaustive()
    }
}

/// Reads and decrypts the file; `None` when it does not exist.
fn read_entries(
    path: &Path,
    key: &VaultKey,
) -> Result<Option<BTreeMap<String, Credential>>, VaultError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(VaultError::Io {
                op: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    let plaintext = format::open(key, &bytes, path)?;
    let body: Body = serde_json::from_slice(&plaintext).map_err(|e| VaultError::Corrupt {
        path: path.to_owned(),
        // serde_json errors give a line/column and an expectation; at worst they quote a
        // field name. Passwords are strings, which it never echoes for a type error here.
        why: format!("json at line {} column {}", e.line(), e.column()),
    })?;
    for name in body.entries.keys() {
        validate_name(name).map_err(|_| VaultError::Corrupt {
            path: path.to_owned(),
            why: "an entry has an invalid name".to_owned(),
        })?;
    }
    Ok(Some(body.entries))
}

/// Takes the exclusive advisory lock on `.<file>.lock` next to the vault; released when
/// the returned file is dropped.
fn lock_file(path: &Path) -> Result<File, VaultError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = fsutil::parent_dir(path).join(format!(".{name}.lock"));
    let io = |op, source| VaultError::Io {
        op,
        path: lock_path.clone(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&lock_path)
        .map_err(|e| io("open lock file", e))?;
    file.lock().map_err(|e| io("lock", e))?;
    Ok(file)
}
