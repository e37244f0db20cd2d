//! The error type of the `vault` module.
//!
//! Owns [`VaultError`]. Messages name files, entry names and environment variable names,
//! never a key, password or decrypted byte.

use std::path::PathBuf;

/// Everything that can go wrong opening, reading or changing a vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A file operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we were doing (`read`, `write`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The vault file does not exist (and creating it was not asked for).
    #[error("vault file {path} does not exist (create it with `hopgate vault set`)")]
    Missing {
        /// The expected vault file.
        path: PathBuf,
    },
    /// The file does not start with the hopgate vault magic.
    #[error("{path} is not a hopgate vault file (bad magic)")]
    NotAVault {
        /// The file.
        path: PathBuf,
    },
    /// The file's format version is newer (or older) than this build understands.
    #[error("vault file {path} has format version {version}, this build reads version 1")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// The file is shorter than a header plus an authentication tag.
    #[error("vault file {path} is truncated ({len} bytes, at least {min} expected)")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// The minimum length of a valid file.
        min: usize,
    },
    /// The key's check value does not match the file's: it was written with another key.
    #[error(
        "vault file {path} was encrypted with a different key; check the vault key_file / \
         key_env setting (the file was not changed)"
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
    /// Right key, but the AES-GCM authentication tag does not verify: the file was
    /// modified or damaged after it was written.
    #[error("vault file {path} failed authentication: it was modified or is damaged")]
    Tampered {
        /// The file.
        path: PathBuf,
    },
    /// The decrypted content is not the expected JSON.
    #[error("vault file {path} decrypted but its content is invalid: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser description (no content).
        why: String,
    },
    /// The key source is misconfigured or unavailable (e.g. the variable is unset).
    #[error("vault key unavailable: {why}")]
    KeySource {
        /// What is wrong.
        why: String,
    },
    /// The key text is not 32 bytes of hex or base64.
    #[error("vault key from {origin} is invalid: {why}")]
    KeyFormat {
        /// `file <path>` or `environment variable <NAME>`.
        origin: String,
        /// What is wrong (never key text).
        why: &'static str,
    },
    /// `generate_key_file` refuses to replace an existing key.
    #[error("key file {path} already exists; refusing to overwrite a vault key")]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// No entry with this name.
    #[error("no vault entry named {name}")]
    NotFound {
        /// The entry name.
        name: String,
    },
    /// An entry name with characters outside `A-Z a-z 0-9 . _ @ -` or a bad length.
    #[error("invalid vault entry name {name:?}: {why}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A credential reference with an unknown placeholder or stray braces.
    #[error("invalid credential reference {reference:?}: {why}")]
    InvalidReference {
        /// The reference as configured.
        reference: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The principal name cannot be substituted into `{user}` safely.
    #[error("principal name {principal:?} cannot be used in a credential reference: {why}")]
    PrincipalNotUsable {
        /// The principal name.
        principal: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The credential to store is not acceptable (e.g. empty password, mismatch on confirm).
    #[error("invalid credential: {why}")]
    InvalidCredential {
        /// What is wrong.
        why: &'static str,
    },
    /// The secret server could not be reached or did not answer in time.
    #[error("vault server {address} is unreachable: {why}")]
    Unreachable {
        /// The server's address (`https://vault.example.com:8200`).
        address: String,
        /// What failed: connect, TLS or timeout (never a token).
        why: String,
    },
    /// The secret server is sealed: nothing can be read until an operator unseals it.
    #[error(
        "vault server {address} is sealed; it must be unsealed before credentials can be read"
    )]
    Sealed {
        /// The server's address.
        address: String,
    },
    /// The server refused the token for this path (403).
    #[error(
        "vault server denied access to {path} (permission denied: check the policy of the \
         token or AppRole)"
    )]
    PermissionDenied {
        /// The API path (`secret/data/hopgate/web1`).
        path: String,
    },
    /// The login (token or AppRole) failed.
    #[error("vault login with {method} failed: {why}")]
    Login {
        /// `token` or `approle`.
        method: &'static str,
        /// The server's error text or what was missing.
        why: String,
    },
    /// The server answered with something other than the documented JSON.
    #[error("vault server answered {path} with malformed json: {why}")]
    Malformed {
        /// The API path.
        path: String,
        /// What was wrong (a parser position, never content).
        why: String,
    },
    /// A secret lacks a field the caller needs (`username`, `password`, `keytab`), or the
    /// field is not a string.
    #[error("vault secret {name} has no string field `{field}`")]
    MissingField {
        /// The entry name.
        name: String,
        /// The field.
        field: String,
    },
    /// Any other error status from the server.
    #[error("vault server answered {status} for {path}: {errors}")]
    Server {
        /// The HTTP status code.
        status: u16,
        /// The API path.
        path: String,
        /// The server's `errors` list, joined (server messages, no secrets).
        errors: String,
    },
    /// The secret server settings cannot be used (e.g. an unreadable CA file).
    #[error("vault server settings: {why}")]
    Settings {
        /// What is wrong.
        why: String,
    },
}

// === impl VaultError ===

impl VaultError {
    /// A short reason for audit records and metrics (`vault sealed`), without names or
    /// paths.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "credential not in the vault",
            Self::Unreachable { .. } => "vault unreachable",
            Self::Sealed { .. } => "vault sealed",
            Self::PermissionDenied { .. } => "vault permission denied",
            Self::Login { .. } => "vault login failed",
            Self::MissingField { .. } => "vault secret incomplete",
            Self::Malformed { .. } | Self::Server { .. } => "vault server error",
            Self::InvalidName { .. }
            | Self::InvalidReference { .. }
            | Self::PrincipalNotUsable { .. } => "credential reference not usable",
            _ => "credential unavailable",
        }
    }
}
