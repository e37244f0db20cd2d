//! A string secret (token, password) that is wiped on drop and never printed.
//!
//! Owns only the wrapper type; it must not offer `Display` or a `Debug` that shows the
//! value, so a secret cannot reach a log line by accident.

use std::fmt;

use zeroize::Zeroizing;

/// A token or password held in memory that is zeroed when dropped.
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

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
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
    }
}
