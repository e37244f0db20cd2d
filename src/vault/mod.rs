//! Credential stores: where the gateway's backend secrets live.
//!
//! Owns the [`Store`] trait the backend reads through, the [`Credential`]/[`Secret`]
//! values, per-user credential references (`admin-{user}`, [`resolve_ref`]), the local
//! encrypted file ([`LocalVault`]) with its key handling, a Vault / OpenBao KV v2 server
//! ([`Kv2Store`], module [`kv2`]), and the CLI helpers ([`cli`]).
//!
//! It must not depend on `config` (the lead fills [`StoreSettings`] from the config file)
//! and must never log or display a password, key or token. File access happens at open and
//! on explicit changes; network access only in [`kv2`], only to the configured server.

pub mod cli;
pub mod error;
mod format;
mod fsutil;
pub mod key;
pub mod kv2;
pub mod local;
pub mod settings;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::secret::{Credential, Secret};
pub use error::VaultError;
pub use key::{generate_key_file, VaultKey, VaultKeySource};
pub use kv2::{Kv2Settings, Kv2Store};
pub use local::LocalVault;
pub use settings::{StoreSettings, VaultSettings};

/// Longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The placeholder a credential reference may contain.
pub const USER_PLACEHOLDER: &str = "{user}";

/// The future a [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, VaultError>> + Send + 'a>>;

/// Read access to backend credentials by entry name. Async because a store may be a
/// network service; the local file answers from memory at once.
pub trait Store: Send + Sync + fmt::Debug {
    /// The credential stored under `name`, or [`VaultError::NotFound`].
    fn get<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Credential>;

    /// One named field of entry `name` (e.g. a base64 `keytab` kept beside the password),
    /// or [`VaultError::MissingField`]. The default serves the two fields every credential
    /// has: `username` and `password`.
    fn get_field<'a>(&'a self, name: &'a str, field: &'a str) -> StoreFuture<'a, Secret> {
        Box::pin(async move {
            let credential = self.get(name).await?;
            match field {
                kv2::USERNAME_FIELD => Ok(Secret::new(credential.user)),
                kv2::PASSWORD_FIELD => Ok(credential.secret),
                _ => Err(VaultError::MissingField {
                    name: name.to_owned(),
                    field: field.to_owned(),
                }),
            }
        })
    }

    /// All entry names, sorted.
    fn list(&self) -> StoreFuture<'_, Vec<String>>;

    /// Drops anything cached for `name`, so the next read asks the source again (e.g. after
    /// a host rejected the password). The default does nothing.
    fn forget(&self, name: &str) {
        let _ = name;
    }
}

/// Opens the configured store: the local file (which must exist) or a KV v2 server.
pub fn open_store(settings: &StoreSettings) -> Result<Arc<dyn Store>, VaultError> {
    Ok(match settings {
        StoreSettings::File(file) => Arc::new(LocalVault::open(file)?),
        StoreSettings::Kv2(kv2) => Arc::new(Kv2Store::open(kv2)?),
    })
}

/// Characters allowed in entry names and in principal names substituted into them: enough
/// for `admin-alice@corp.example`, nothing that could mean a path, a pattern or a line.
fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')
}

/// Checks an entry name: 1 to 128 characters from `A-Z a-z 0-9 . _ @ -`.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_LEN {
        "it is longer than 128 characters"
    } else if !name.chars().all(allowed_char) {
        "only letters, digits and . _ @ - are allowed"
    } else {
        return Ok(());
    };
    Err(VaultError::InvalidName {
        name: name.to_owned(),
        why,
    })
}

/// Checks a configured credential reference without a principal (for config validation):
/// an entry name in which `{user}` may appear.
pub fn validate_ref(reference: &str) -> Result<(), VaultError> {
    resolve_ref(reference, "x").map(|_| ())
}

/// The entry name a configured reference means for `principal_name`: every `{user}` is
/// replaced by the principal name, which must itself consist of allowed characters (so a
/// principal cannot steer the lookup to another entry with separators or braces).
///
/// A reference without `{user}` is returned unchanged (after validation).
pub fn resolve_ref(reference: &str, principal_name: &str) -> Result<String, VaultError> {
    let bad_ref = |why| VaultError::InvalidReference {
        reference: reference.to_owned(),
        why,
    };
    let rest = reference.replace(USER_PLACEHOLDER, "");
    if rest.contains(['{', '}']) {
        return Err(bad_ref("`{user}` is the only placeholder"));
    }
    if !reference.contains(USER_PLACEHOLDER) {
        validate_name(reference)?;
        return Ok(reference.to_owned());
    }
    if principal_name.is_empty() || !principal_name.chars().all(allowed_char) {
        return Err(VaultError::PrincipalNotUsable {
            principal: principal_name.to_owned(),
            why: "only letters, digits and . _ @ - can be substituted for {user}",
        });
    }
    let resolved = reference.replace(USER_PLACEHOLDER, principal_name);
    validate_name(&resolved).map_err(|_| bad_ref("the resolved name is too long or invalid"))?;
    Ok(resolved)
}
