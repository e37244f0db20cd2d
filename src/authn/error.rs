//! The error type of the `authn` module.
//!
//! Owns [`AuthnError`]. Messages never contain token, password or header text: at most a
//! claim name, a file path or a fixed description, so they are safe for logs and audit.

use std::path::PathBuf;

/// Why a certificate, header or token could not be turned into an identity, or why a key
/// could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The leaf certificate is not parseable X.509 DER.
    #[error("client certificate is not valid x.509 der: {why}")]
    CertificateParse {
        /// Parser description (no certificate bytes).
        why: String,
    },
    /// The certificate has none of SAN UPN, SAN email, subject CN.
    #[error("client certificate has no san upn, san email or subject cn")]
    CertificateNoName,
    /// The chosen name field is present but unusable (empty, control characters, not
    /// UTF-8, too long, or several different values).
    #[error("client certificate {field} is not a usable principal name: {why}")]
    CertificateBadName {
        /// Which field: `san upn`, `san email` or `subject cn`.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },

    /// The header value has bytes outside visible ASCII.
    #[error("authorization header is not visible ascii")]
    HeaderNotText,
    /// A known scheme with nothing after it.
    #[error("authorization header has an empty {scheme} credential")]
    EmptyCredential {
        /// `bearer` or `basic`.
        scheme: &'static str,
    },
    /// The Basic credential is not base64.
    #[error("basic credential is not valid base64")]
    BasicBase64,
    /// The decoded Basic credential is not UTF-8.
    #[error("basic credential is not valid utf-8")]
    BasicUtf8,
    /// The decoded Basic credential has no `:` separating user and password.
    #[error("basic credential has no ':' between user and password")]
    BasicNoColon,

    /// `exp` (plus leeway) is in the past.
    #[error("token has expired")]
    Expired,
    /// `exp - iat`, or `exp - now`, is longer than the configured maximum lifetime: a
    /// token valid for years is a standing credential, whoever minted it.
    #[error("token lifetime exceeds the maximum of {max_secs} s")]
    LifetimeTooLong {
        /// The configured maximum, in seconds.
        max_secs: u64,
    },
    /// `nbf` (minus leeway) is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `aud` does not contain the configured audience (or is missing when one is set).
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// The signature does not verify with the configured key.
    #[error("token signature does not verify")]
    BadSignature,
    /// The header's `alg` is not the one configured (e.g. an HS256 token against an RS256
    /// key, the classic algorithm-confusion attack).
    #[error("token algorithm is not the configured one")]
    AlgorithmNotAllowed,
    /// Not a JWT: wrong shape, bad base64url, bad JSON.
    #[error("token is malformed: {why}")]
    Malformed {
        /// Fixed description, never token content.
        why: &'static str,
    },
    /// A required claim is absent.
    #[error("token has no {0} claim")]
    MissingClaim(String),
    /// A claim has the wrong JSON type (e.g. a number where a string is needed).
    #[error("token claim {0} has the wrong type")]
    InvalidClaim(String),

    /// The key file could not be read.
    #[error("cannot read jwt key file {path}: {source}")]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key material is not usable for the configured algorithm.
    #[error("jwt key is not usable for {algorithm}: {why}")]
    KeyInvalid {
        /// `HS256`, `RS256` or `ES256`.
        algorithm: &'static str,
        /// What is wrong (never key bytes).
        why: String,
    },
    /// Signing a dev token failed.
    #[error("cannot sign token: {why}")]
    Signing {
        /// Library description.
        why: String,
    },
}
