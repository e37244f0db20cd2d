//! Backend (host-facing) HTTP client: how the gateway logs in to a Windows host and exchanges
//! WS-Man bodies with it.
//!
//! * [`target`]: per-host settings and TLS config.
//! * [`crypto`]: WinRM message-encryption framing (pure; shared with the emulated host).
//! * [`ntlm`]: NTLM client context and seal/unseal helpers (sspi).
//! * [`kerberos`]: Kerberos/Negotiate client context (sspi) with a vaulted password.
//! * [`kdc`]: async TCP transport for the KDC requests `sspi` hands out.
//! * [`credssp`]: CredSSP client (sspi) with its in-memory TLS tunnel and body sealing.
//! * [`delegate_env`]: the process-wide MIT Kerberos environment of `delegate` (generated
//!   krb5.conf, gateway keytab) and the person → realm principal mapping.
//! * `delegate` (feature `delegate`): S4U2Self/S4U2Proxy client contexts (MIT GSSAPI).
//! * `conn`: one authenticated HTTP/1.1 connection (hyper low-level client).
//! * `pool`: idle authenticated connections per client.
//! * [`client`]: [`BackendClient`], the only thing the proxy calls.
//!
//! This module does not parse SOAP, decide policy or read the gateway config; it never logs
//! credentials, Authorization headers or decrypted bodies.

pub mod client;
mod conn;
pub mod credssp;
pub mod crypto;
#[cfg(feature = "delegate")]
pub mod delegate;
pub mod delegate_env;
pub mod kdc;
pub mod kerberos;
pub mod ntlm;
mod pool;
pub mod sealing;
pub mod target;

#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

pub use client::{BackendClient, BackendResponse};
pub use target::{BackendAuth, BackendTls, HostTarget, Scheme};

/// The account the gateway uses on a host (the crate's one credential type).
pub use crate::secret::Credential;

/// Tunables of a [`BackendClient`]; the composition root fills them from config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendSettings {
    /// TCP connect + TLS + authentication handshake.
    pub connect_timeout: Duration,
    /// Default time for one request until the whole response body arrived. Receive long
    /// polls pass their own (OperationTimeout + margin) to
    /// [`BackendClient::send_with_timeout`].
    pub response_timeout: Duration,
    /// Idle authenticated connections kept per client for short requests.
    pub max_idle: usize,
    /// Connections open at once per client for short requests (in use + idle).
    pub max_connections: usize,
    /// Connections open at once per client for Receives (long polls), a separate lane so
    /// that sessions holding a Receive (every open PowerShell session does, for up to its
    /// OperationTimeout) never take the connections short requests need. Their idle
    /// connections are all kept (within `idle_timeout`): the next poll comes right back.
    pub max_long_polls: usize,
    /// Idle connections older than this are closed instead of reused (keep it below the
    /// host's keep-alive timeout; HTTP.sys defaults to 120 s).
    pub idle_timeout: Duration,
    /// Largest response body accepted (after decryption checks, before).
    pub max_response_bytes: usize,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(90),
            max_idle: 64,
            max_connections: 256,
            max_long_polls: 4096,
            // HTTP.sys closes idle keep-alive connections after 120 s.
            idle_timeout: Duration::from_secs(100),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What phase a timeout hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Waiting for a free connection slot (`max_connections`).
    PoolWait,
    /// TCP connect, TLS and the authentication handshake.
    Connect,
    /// Sending the request and reading the whole response.
    Response,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PoolWait => "waiting for a connection",
            Self::Connect => "connect",
            Self::Response => "response",
        })
    }
}

/// Whether a failed request may have reached the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The request never left (safe to retry).
    NotSent,
    /// The request may have been processed (do not replay it blindly).
    Maybe,
}

/// Errors of the backend client. `is_retryable` says whether trying the same request again
/// later can succeed without risk of running it twice.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Host settings are unusable (bad CA file, Basic over http, ...).
    #[error("backend host {host} misconfigured: {reason}")]
    Config {
        /// Inventory name.
        host: String,
        /// What is wrong.
        reason: String,
    },
    /// TCP connect failed.
    #[error("connect to {host} ({addr}) failed")]
    Connect {
        /// Inventory name.
        host: String,
        /// Address and port tried.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// TLS handshake failed (certificate not trusted, protocol mismatch, ...).
    #[error("tls handshake with {host} failed")]
    Tls {
        /// Inventory name.
        host: String,
        /// The rustls error wrapped by tokio-rustls.
        #[source]
        source: std::io::Error,
    },
    /// The host refused the credentials.
    #[error("host {host} rejected the credentials (http {status})")]
    AuthRejected {
        /// Inventory name.
        host: String,
        /// Final HTTP status (401).
        status: http::StatusCode,
    },
    /// The authentication exchange broke (no challenge offered, bad token, ...).
    #[error("authentication handshake with {host} failed: {reason}")]
    Handshake {
        /// Inventory name.
        host: String,
        /// What went wrong.
        reason: String,
        /// The NTLM error, when there is one (boxed: keeps `Result`s small).
        #[source]
        source: Option<Box<ntlm::NtlmError>>,
    },
    /// Getting a Kerberos ticket failed before the host was asked (KDC unreachable, password
    /// refused by the KDC, unknown principal).
    #[error("kerberos login to {host} failed: {reason}", reason = source.reason())]
    Kerberos {
        /// Inventory name.
        host: String,
        /// What went wrong.
        #[source]
        source: Box<kerberos::KerberosError>,
    },
    /// The CredSSP exchange or a CredSSP-sealed body failed (the host's refusal of the
    /// credentials is [`BackendError::AuthRejected`] instead).
    #[error("credssp with {host} failed")]
    CredSsp {
        /// Inventory name.
        host: String,
        /// What went wrong (boxed: keeps `Result`s small).
        #[source]
        source: Box<credssp::CredSspError>,
    },
    /// A delegated (S4U) login failed before or while the host was asked: the KDC refused
    /// the delegation, does not know the person, was unreachable, ...
    #[error("delegated kerberos login to {host} failed: {reason}", reason = source.reason())]
    Delegate {
        /// Inventory name.
        host: String,
        /// What went wrong.
        #[source]
        source: Box<delegate_env::DelegateError>,
    },
    /// Message encryption framing or sealing failed.
    #[error("message encryption with {host} failed")]
    Crypto {
        /// Inventory name.
        host: String,
        /// Framing or seal/unseal error (boxed: keeps `Result`s small).
        #[source]
        source: Box<crypto::CryptoError>,
    },
    /// The host answered something that is not valid HTTP/WinRM for this session.
    #[error("protocol error from {host}: {reason}")]
    Protocol {
        /// Inventory name.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// A phase took too long.
    #[error("{phase} to {host} timed out after {after:?}")]
    Timeout {
        /// Inventory name.
        host: String,
        /// Which phase.
        phase: TimeoutPhase,
        /// The limit that expired.
        after: Duration,
    },
    /// The connection closed or broke before a full response.
    #[error("connection to {host} closed ({delivery:?})")]
    Closed {
        /// Inventory name.
        host: String,
        /// Whether the request may have reached the host.
        delivery: Delivery,
        /// The HTTP error, when there is one.
        #[source]
        source: Option<hyper::Error>,
    },
}

// === impl BackendError ===

impl BackendError {
    /// True when the request certainly did not run on the host and a later attempt may
    /// succeed (network trouble, pool exhaustion), false for rejections and for failures after
    /// the request may have been delivered.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Timeout { phase, .. } => *phase != TimeoutPhase::Response,
            Self::Closed { delivery, .. } => *delivery == Delivery::NotSent,
            Self::Kerberos { source, .. } => source.is_transient(),
            Self::Delegate { source, .. } => source.is_transient(),
            Self::Config { .. }
            | Self::Tls { .. }
            | Self::AuthRejected { .. }
            | Self::Handshake { .. }
            | Self::Crypto { .. }
            | Self::CredSsp { .. }
            | Self::Protocol { .. } => false,
        }
    }
}
