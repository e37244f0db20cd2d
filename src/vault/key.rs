//! The vault master key: where it comes from, how it is written down, how it is generated.
//!
//! Owns [`VaultKey`] (32 bytes, wiped on drop), [`VaultKeySource`] and
//! [`generate_key_file`]. The key never comes from the config file, never appears in an
//! error or `Debug` string, and a key file is never overwritten.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore;
use zeroize::Zeroizing;

use super::error::VaultError;
use super::fsutil;

/// Length of the master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// The 32-byte vault master key.
#[derive(Clone)]
pub struct VaultKey(Zeroizing<[u8; KEY_LEN]>);

// === impl VaultKey ===

impl VaultKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Parses key text: 64 hex digits, or standard/URL-safe base64 of 32 bytes.
    /// Surrounding whitespace (a trailing newline in a file) is ignored. `origin` names the
    /// source in errors (`file /etc/hopgate/vault.key`).
    pub fn parse(text: &str, origin: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let bad = |why| VaultError::KeyFormat {
            origin: origin.to_owned(),
            why,
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(text, key.as_mut()).map_err(|_| bad("invalid hex"))?;
            return Ok(Self(key));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .map(Zeroizing::new)
            .map_err(|_| bad("expected 64 hex digits or base64 of 32 bytes"))?;
        if decoded.len() != KEY_LEN {
            return Err(bad("base64 text does not decode to exactly 32 bytes"));
        }
        key.copy_from_slice(&decoded);
        Ok(Self(key))
    }

    /// The key text written by [`generate_key_file`]: lowercase hex.
    fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey([redacted])")
    }
}

/// Where the vault key comes from (never the config file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultKeySource {
    /// A file holding the key text (hex or base64).
    File(PathBuf),
    /// An environment variable holding the key text.
    Env(String),
}

// === impl VaultKeySource ===

impl VaultKeySource {
    /// Reads and parses the key from the process environment or the file.
    pub fn load(&self) -> Result<VaultKey, VaultError> {
        self.load_with_env(|name| std::env::var_os(name))
    }

    /// Like [`load`](Self::load) with an injectable environment (for tests; the process
    /// environment must not be mutated in tests).
    pub fn load_with_env(
        &self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<VaultKey, VaultError> {
        match self {
            Self::File(path) => {
                warn_if_shared(path);
                let text = std::fs::read_to_string(path)
                    .map(Zeroizing::new)
                    .map_err(|source| VaultError::Io {
                        op: "read the vault key file",
                        path: path.clone(),
                        source,
                    })?;
                VaultKey::parse(&text, &format!("file {}", path.display()))
            }
            Self::Env(name) => {
                let value = env(name).ok_or_else(|| VaultError::KeySource {
                    why: format!("environment variable {name} is not set"),
                })?;
                let value =
                    Zeroizing::new(value.into_string().map_err(|_| VaultError::KeyFormat {
                        origin: format!("environment variable {name}"),
                        why: "it is not valid unicode",
                    })?);
                VaultKey::parse(&value, &format!("environment variable {name}"))
            }
        }
    }
}

/// A key file others can read still works (e.g. a mounted secret), but deserves a warning.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format_args!("{:o}", mode & 0o777),
                    "Vault key file is readable by group or others"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Writes a new random key to `path` (hex, mode 0600) and returns it. Fails with
/// [`VaultError::KeyExists`] when the file exists: a key is never overwritten, since every
/// vault encrypted with it would become unreadable.
pub fn generate_key_file(path: &Path) -> Result<VaultKey, VaultError> {
    let key = VaultKey::generate();
    let io = |op, source| VaultError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let mut file = match fsutil::create_private(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(VaultError::KeyExists {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(io("create", e)),
    };
    let text = key.to_hex();
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| io("write", e))?;
    fsutil::sync_parent_dir(path)?;
    Ok(key)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parses_hex_and_base64() {
        let k = VaultKey::parse(&format!("  {HEX}\n"), "test").unwrap();
        assert_eq!(k.bytes()[31], 0x1f);
        let b64 = base64::engine::general_purpose::STANDARD.encode(k.bytes());
        assert_eq!(VaultKey::parse(&b64, "test").unwrap().bytes(), k.bytes());
        let upper = HEX.to_uppercase();
        assert_eq!(VaultKey::parse(&upper, "test").unwrap().bytes(), k.bytes());
    }

    #[test]
    fn rejects_bad_key_text() {
        for bad in ["", "abc", &HEX[..62], "zz".repeat(32).as_str(), "AAAA"] {
            assert!(
                matches!(
                    VaultKey::parse(bad, "test"),
                    Err(VaultError::KeyFormat { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn env_source_is_injectable() {
        let src = VaultKeySource::Env("HOPGATE_TEST_VAULT_KEY".to_owned());
        let k = src
            .load_with_env(|n| (n == "HOPGATE_TEST_VAULT_KEY").then(|| HEX.into()))
            .unwrap();
        assert_eq!(k.bytes()[0], 0);
        assert!(matches!(
            src.load_with_env(|_| None),
            Err(VaultError::KeySource { .. })
        ));
    }

    #[test]
    fn generated_key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        let key = generate_key_file(&path).unwrap();
        let loaded = VaultKeySource::File(path.clone()).load().unwrap();
        assert_eq!(loaded.bytes(), key.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            generate_key_file(&path),
            Err(VaultError::KeyExists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn debug_redacts() {
        let k = VaultKey::parse(HEX, "test").unwrap();
        assert_eq!(format!("{k:?}"), "VaultKey([redacted])");
    }
}
