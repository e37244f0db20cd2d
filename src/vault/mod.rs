//! Credential stores: where the gateway's backend secrets live.
//!
//! Owns the [`Store`] trait the backend reads through, the [`Credential`]/[`Secret`]
//! values, per-user credential references (`admin-{user}`, [`resolve_ref`]), and the local
//! encrypted file ([`LocalVault`]) with its key handling and CLI helpers ([`cli`]).
//!
//! It must not depend on `config` (the lead fills [`VaultSettings`] from the config file),
//! must not do network I/O (an external secret server is a later `Store`), and must never
//! log or display a password or key. File access happens at open and on explicit changes.

pub mod cli;
pub mod error;
mod format;
mod fsutil;
pub mod key;
pub mod local;
pub mod secret;
pub mod settings;

#[cfg(test)]
mod tests;

use std::fmt;

pub use error::VaultError;
pub use key::{generate_key_file, VaultKey, VaultKeySource};
pub use local::LocalVault;
pub use secret::{Credential, Secret};
pub use settings::VaultSettings;

/// Longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// The placeholder a credential reference may contain.
pub const USER_PLACEHOLDER: &str = "{user}";

/// Read access to backend credentials by entry name.
pub trait Store: Send + Sync + fmt::Debug {
    /// The credential stored under `name`, or [`VaultError::NotFound`].
    fn get(&self, name: &str) -> Result<Credential, VaultError>;
    /// All entry names, sorted.
    fn list(&self) -> Vec<String>;
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
