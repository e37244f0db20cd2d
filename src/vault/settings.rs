//! Vault settings as they appear in the config file (`[vault]`).
//!
//! Owns [`StoreSettings`] (which store), [`VaultSettings`] (the local file) and its
//! validation; they hold paths and variable names, never key material.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::VaultError;
use super::key::VaultKeySource;
use super::kv2::Kv2Settings;

/// Which credential store to use (`[vault] kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// The local encrypted file (`kind = "file"`, the default).
    File(VaultSettings),
    /// A Vault / OpenBao KV v2 server (`kind = "kv2"`).
    Kv2(Kv2Settings),
}

impl From<&VaultSettings> for StoreSettings {
    fn from(settings: &VaultSettings) -> Self {
        Self::File(settings.clone())
    }
}

impl From<&StoreSettings> for StoreSettings {
    fn from(settings: &StoreSettings) -> Self {
        settings.clone()
    }
}

/// Where the local vault lives and where its key comes from (`[vault]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// The encrypted vault file. Relative paths are resolved by the config loader.
    pub path: PathBuf,
    /// A file holding the 32-byte key as 64 hex digits or base64 (`hopgate vault` creates
    /// one with mode 0600). Exactly one of `key_file` and `key_env` must be set.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name of an environment variable holding the key text (hex or base64).
    /// Exactly one of `key_file` and `key_env` must be set.
    #[serde(default)]
    pub key_env: Option<String>,
}

// === impl VaultSettings ===

impl VaultSettings {
    /// The one configured key source; an error when none or both are set.
    pub fn key_source(&self) -> Result<VaultKeySource, VaultError> {
        match (&self.key_file, &self.key_env) {
            (Some(file), None) => Ok(VaultKeySource::File(file.clone())),
            (None, Some(var)) if !var.is_empty() => Ok(VaultKeySource::Env(var.clone())),
            (None, Some(_)) => Err(VaultError::KeySource {
                why: "vault.key_env is empty".to_owned(),
            }),
            (None, None) => Err(VaultError::KeySource {
                why: "set one of vault.key_file or vault.key_env".to_owned(),
            }),
            (Some(_), Some(_)) => Err(VaultError::KeySource {
                why: "set only one of vault.key_file and vault.key_env".to_owned(),
            }),
        }
    }
}
