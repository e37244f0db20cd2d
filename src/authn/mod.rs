//! Client authentication: who is the person behind a request.
//!
//! Owns the mapping of a verified TLS client certificate to a principal name ([`mtls`]),
//! JWT validation and dev-token minting ([`jwt`], [`mint`]), parsing of the HTTP
//! `Authorization` header ([`header`]) and the decision that combines them into a
//! [`Principal`] ([`authenticate`]).
//!
//! It must not do network or socket I/O, must not depend on `config` (the lead fills the
//! plain settings structs here from the config file) nor on hyper types beyond
//! `http::HeaderValue`, and must never log or display tokens, passwords or header values.
//! Reading the JWT key file once at startup is the only file access.

pub mod authenticate;
pub mod error;
pub mod header;
pub mod jwt;
pub mod kerberos;
pub mod keytab;
pub mod mint;
pub mod mtls;
pub mod principal;

#[cfg(test)]
mod authenticate_tests;
#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod jwt_tests;
#[cfg(test)]
mod test_keys;

pub use authenticate::{Authenticator, AuthnFailure};
pub use error::AuthnError;
pub use header::{
    claimed_basic_user, parse_authorization, ClientCredential, WSMAN_MUTUAL_CERT_PROFILE,
};
pub use jwt::{Claims, JwtAlgorithm, JwtSettings, JwtValidator};
pub use mint::{write_hs256_secret_file, TokenMinter};
pub use mtls::principal_name_from_cert;
pub use principal::{AuthMethod, Principal};
