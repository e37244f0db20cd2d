//! The authenticated person behind a request.
//!
//! Owns the [`Principal`] value that authentication produces and policy, sessions and audit
//! consume. It holds no credential material.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// How the principal proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A TLS client certificate verified by the listener against the configured client CA.
    ClientCertificate,
    /// `Authorization: Bearer <JWT>`.
    Bearer,
    /// `Authorization: Basic user:<JWT>`, for clients that can only send Basic.
    BasicToken,
    /// `Authorization: Negotiate|Kerberos` with a service ticket for the gateway.
    Kerberos,
}

// === impl AuthMethod ===

impl AuthMethod {
    /// Stable lowercase name for logs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCertificate => "client_certificate",
            Self::Bearer => "bearer",
            Self::BasicToken => "basic_token",
            Self::Kerberos => "kerberos",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// The person's name: certificate UPN / email / CN, or the token's user claim.
    pub name: String,
    /// Group names from the token's groups claim; empty for certificate logins.
    pub groups: Vec<String>,
    /// How they authenticated.
    pub method: AuthMethod,
    /// The client's IP address as seen by the listener.
    pub source_ip: IpAddr,
    /// The host the token names in its target claim, if any. Only a hint: the proxy still
    /// looks it up in the inventory and policy still decides.
    pub target: Option<String>,
}
