//! Secret and credential values held by the vault.
//!
//! Owns [`Secret`] (a password wiped on drop and never printed) and [`Credential`]. The
//! serde impls exist only for the encrypted file body; nothing else may serialize them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A password held in memory that is zeroed when dropped; `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

// === impl Secret ===

impl Secret {
    /// Wraps a string (moved, not copied).
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

/// A backend account: user name and password.
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
    pub fn new(user: impl Into<String>, secret: Secret) -> Self {
        Self {
            user: user.into(),
            secret,
        }
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
