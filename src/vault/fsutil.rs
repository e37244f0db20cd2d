//! Small file-system helpers for the vault: private file creation, atomic replace, fsync
//! of a directory. No knowledge of the vault format.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::error::VaultError;

/// Creates a new file (failing if it exists) readable and writable by the owner only.
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// fsync of the directory holding `path`, so a create or rename survives a crash.
pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), VaultError> {
    let dir = parent_dir(path);
    // Opening a directory read-only and fsyncing it is how POSIX persists its entries.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| VaultError::Io {
            op: "sync directory",
            path: dir,
            source,
        })
}

/// Replaces `path` with `bytes` atomically: a private temp file in the same directory,
/// written and fsynced, renamed over `path`, then the directory fsynced. On any error the
/// temp file is removed and `path` is left as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| VaultError::Io {
            op: "write",
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
        })?
        .to_string_lossy()
        .into_owned();
    let mut suffix = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut suffix);
    let tmp = dir.join(format!(".{name}.tmp-{}", hex::encode(suffix)));

    let result = write_and_rename(&tmp, path, bytes);
    if result.is_err() {
        // Best effort: the error being returned matters more than a failed cleanup.
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_parent_dir(path)
}

fn write_and_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let io = |op, p: &Path| {
        let p = p.to_owned();
        move |source| VaultError::Io {
            op,
            path: p,
            source,
        }
    };
    let mut file = create_private(tmp).map_err(io("create", tmp))?;
    file.write_all(bytes).map_err(io("write", tmp))?;
    file.sync_all().map_err(io("sync", tmp))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(io("replace", path))
}
