//! The one TLS helper of the crate: PEM files to rustls material (certificate chains, keys,
//! CA roots, revocation lists), client and server configs with the crate's settings (ring
//! provider, TLS 1.2 and 1.3 only), and why a handshake failed, told by rustls' error type.
//!
//! A leaf module: it imports nothing of ours, so the listener, the backend client, the vault
//! client, the audit exporters and the test host all build their TLS here. It reads files
//! with `std::fs` (callers run it at start-up or under `spawn_blocking`); a caller that has
//! the bytes already uses the `*_from_pem` forms. It never logs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WantsClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::{
    CertificateError, ClientConfig, ConfigBuilder, RootCertStore, ServerConfig,
    SupportedProtocolVersion, WantsVerifier,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use thiserror::Error;

/// TLS 1.3 and 1.2, the versions every config offers unless told otherwise.
pub const TLS12_AND_13: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
/// TLS 1.3 only.
pub const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A PEM file that cannot be used, or a config rustls refuses.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read PEM file {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no certificate revocation list")]
    NoCrl { path: PathBuf },
    #[error("CA certificate in {path} is not usable: {source}")]
    BadCa {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider of every config (ring: no cmake/aws-lc build needed).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Every PEM section of type `T` in a file.
fn load_all<T: PemObject>(path: &Path) -> Result<Vec<T>, TlsError> {
    T::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = load_all(path)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// A root store from a PEM CA bundle (at least one certificate).
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = std::fs::read(path).map_err(|e| pem_error(path, e))?;
    roots_from_pem(&pem, path)
}

/// A root store from the bytes of a PEM CA bundle; `path` names it in errors.
pub fn roots_from_pem(pem: &[u8], path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| pem_error(path, e))?;
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_path_buf(),
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(roots)
}

/// Every certificate revocation list in a PEM file (`-----BEGIN X509 CRL-----`; at least
/// one).
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls: Vec<CertificateRevocationListDer<'static>> = load_all(path)?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl {
            path: path.to_path_buf(),
        });
    }
    Ok(crls)
}

/// A client config builder with the crate's provider and TLS 1.2/1.3, before the server
/// verifier is chosen (for callers with their own verifier).
pub fn client_builder() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider()).with_protocol_versions(TLS12_AND_13)?)
}

/// A client config that trusts `roots`, optionally presenting a certificate chain and key.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder: ConfigBuilder<ClientConfig, WantsClientCert> =
        client_builder()?.with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server config presenting `chain`/`key`, verifying client certificates with `verifier`
/// when given (else none are asked for), offering `versions` and HTTP/1.1 over ALPN.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions)?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server config from PEM certificate and key files, no client certificates (the test
/// host, test fakes).
pub fn server_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_config(load_certs(cert)?, load_key(key)?, None, TLS12_AND_13)
}

/// Why a TLS handshake failed, read from the [`rustls::Error`] inside the I/O error
/// tokio-rustls returns (never from message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The peer's certificate was refused; worth an audit record.
    Certificate(CertificateProblem),
    /// The peer speaks TLS, but no version or cipher suite we offer, or misbehaved.
    Incompatible,
    /// The bytes were not TLS (plain HTTP on the TLS port, a scanner).
    NotTls,
    /// The peer sent an alert (it refused our certificate, for one).
    AlertReceived,
    /// The connection closed or failed below TLS.
    Transport,
    /// Anything else rustls reported.
    Other,
}

/// What was wrong with a peer's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Listed in a certificate revocation list.
    Revoked,
    Expired,
    NotYetValid,
    /// Not issued by a trusted CA.
    UnknownIssuer,
    /// Revocation could not be checked (the CRL expired or none covers the issuer).
    RevocationUnknown,
    /// A certificate was required and none was sent.
    Missing,
    /// Its signature does not verify against the CA of that name (a look-alike CA).
    BadSignature,
    /// Malformed, wrong signature, wrong purpose, unhandled critical extension, ...
    Invalid,
}

// === impl HandshakeFailure ===

impl HandshakeFailure {
    /// Classifies the error of a failed `TlsAcceptor::accept` / `TlsConnector::connect`.
    pub fn classify(error: &io::Error) -> Self {
        match error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            Some(e) => Self::from_rustls(e),
            None => Self::Transport,
        }
    }

    /// Classifies a rustls error.
    pub fn from_rustls(error: &rustls::Error) -> Self {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(c) => Self::Certificate(CertificateProblem::from_rustls(c)),
            E::NoCertificatesPresented => Self::Certificate(CertificateProblem::Missing),
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => Self::NotTls,
            E::PeerIncompatible(_)
            | E::PeerMisbehaved(_)
            | E::InappropriateHandshakeMessage { .. } => Self::Incompatible,
            E::AlertReceived(_) => Self::AlertReceived,
            _ => Self::Other,
        }
    }

    /// The `authn.failure` reason for failures worth recording (a refused client
    /// certificate); `None` for port scanners, plain HTTP and clients that hang up.
    pub fn audit_reason(self) -> Option<&'static str> {
        match self {
            Self::Certificate(p) => Some(p.as_str()),
            _ => None,
        }
    }
}

// === impl CertificateProblem ===

impl CertificateProblem {
    fn from_rustls(error: &CertificateError) -> Self {
        use CertificateError as C;
        match error {
            C::Revoked => Self::Revoked,
            C::Expired | C::ExpiredContext { .. } => Self::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => Self::NotYetValid,
            C::UnknownIssuer => Self::UnknownIssuer,
            C::BadSignature => Self::BadSignature,
            C::UnknownRevocationStatus
            | C::ExpiredRevocationList
            | C::ExpiredRevocationListContext { .. } => Self::RevocationUnknown,
            _ => Self::Invalid,
        }
    }

    /// The reason as written in audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "certificate revoked",
            Self::Expired => "certificate expired",
            Self::NotYetValid => "certificate not yet valid",
            Self::UnknownIssuer => "certificate from an unknown issuer",
            Self::RevocationUnknown => "certificate revocation status unknown",
            Self::Missing => "certificate missing",
            Self::BadSignature => "certificate signature invalid",
            Self::Invalid => "certificate invalid",
        }
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
