//! The audit directory's exclusive lock: one writer per directory.
//!
//! Two gateways appending to the same `audit.jsonl` would each continue the chain from
//! their own last line and fork it (issue #14). The writer takes an advisory exclusive lock
//! on `hopgate.lock` in the directory before reading or writing anything there, and holds
//! it as long as the [`DirLock`] lives (the writer task's lifetime, so the process's). The
//! lock is released by the OS when the process exits, however it exits, so a crash never
//! leaves a stale lock behind. Readers (`hopgate audit verify`) do not take it.

use std::fs::TryLockError;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the audit directory; not part of the chain.
pub const LOCK_FILE: &str = "hopgate.lock";

/// Why the directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "the audit directory {dir} is in use by another hopgate process (it holds {lock}); \
         give each gateway its own audit directory"
    )]
    InUse {
        /// The audit directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock the audit directory with {lock}: {source}")]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on an audit directory, released on drop.
#[derive(Debug)]
pub struct DirLock {
    // INVARIANT: locked (exclusively) for as long as this value lives.
    file: std::fs::File,
}

// === impl DirLock ===

impl DirLock {
    /// Locks `dir` (which must exist) without waiting: [`LockError::InUse`] when another
    /// holder has it. Blocking I/O on one small file; call it at start-up.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let lock = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { file }),
            Err(TryLockError::WouldBlock) => Err(LockError::InUse {
                dir: dir.to_path_buf(),
                lock,
            }),
            Err(TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it immediate even
        // if a duplicated descriptor were alive somewhere.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::InUse { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("in use by another hopgate process"),
            "{err}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
