//! The one secret type and the one credential type of the crate.
//!
//! Owns [`Secret`] (a token, password or key text that is wiped on drop and never printed)
//! and [`Credential`] (an account name and its secret). A leaf module: it imports nothing
//! of ours, so every adapter (authn, backend, vault) may use it. It must not offer
//! `Display`, or a `Debug` that shows the value, so a secret cannot reach a log line by
//! accident. The serde impls exist only for the vault's encrypted file body; nothing else
//! may serialize them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A token, password or key held in memory that is zeroed when dropped.
///
/// `Debug` prints `Secret([redacted])`; the value is reachable only via [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

// === impl Secret ===

impl Secret {
    /// Wraps a string; the caller's `String` is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret text. Callers must not log or store it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// An account: user name and password (a vault entry, the login the gateway uses on a host).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Account name as the backend expects it (`user`, `DOMAIN\user` or a UPN).
    pub user: String,
    /// The password.
    #[serde(rename = "password")]
    pub secret: Secret,
}

// === impl Credential ===

impl Credential {
    /// A credential from a user name and password.
    pub fn new(user: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            user: user.into(),
            secret: secret.into(),
        }
    }

    /// The password text. Callers must not log or store it.
    pub fn password(&self) -> &str {
        self.secret.expose()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "hunter2");
        let c = Credential::new("alice", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.password(), "hunter2");
    }
}
