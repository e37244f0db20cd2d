//! The listener's rustls server configuration, and its reload.
//!
//! TLS 1.2 and 1.3 only (rustls never offers older versions). When a client CA is
//! configured, client certificates are requested and verified against it (and against the
//! revocation lists of `listener.crl`, when set) but stay optional, so token-authenticated
//! clients can connect on the same port; the authn layer decides what an absent certificate
//! means.
//!
//! [`ServerTls`] holds the configuration in force behind an `ArcSwap`: each handshake takes
//! the snapshot current when it starts, so a reload changes what new connections see and
//! never touches established ones. A reload that fails keeps the configuration in force.
//! The file reading lives in `crate::tls`; this module never logs or audits (the caller
//! does, from the [`CertSummary`] and the error).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use crate::config::{ListenerConfig, MinTls};
use crate::tls::{self, TlsError};

/// What the configuration in force presents, for logs and the audit record (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject of the server certificate, as an RFC 4514 string.
    pub subject: String,
    /// `notAfter` of the server certificate, RFC 3339.
    pub not_after: String,
    /// Whether client certificates are verified (a client CA is configured).
    pub client_ca: bool,
    /// Revoked certificates listed in the configured CRLs (None: no CRL configured).
    pub crl_revoked: Option<u64>,
}

/// The listener's TLS configuration, reloadable from its files.
#[derive(Debug)]
pub struct ServerTls {
    /// Where the configuration comes from; None for a fixed one (the test host).
    files: Option<ListenerConfig>,
    current: ArcSwap<ServerConfig>,
    summary: ArcSwap<CertSummary>,
}

// === impl ServerTls ===

impl ServerTls {
    /// Loads the listener's certificate, key, client CA and CRLs.
    pub fn load(cfg: &ListenerConfig) -> Result<Self, TlsError> {
        let (config, summary) = build(cfg)?;
        Ok(Self {
            files: Some(cfg.clone()),
            current: ArcSwap::new(config),
            summary: ArcSwap::from_pointee(summary),
        })
    }

    /// A configuration that never reloads (the test host, tests).
    pub fn fixed(config: Arc<ServerConfig>, summary: CertSummary) -> Self {
        Self {
            files: None,
            current: ArcSwap::new(config),
            summary: ArcSwap::from_pointee(summary),
        }
    }

    /// The configuration for a handshake starting now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// What the configuration in force presents.
    pub fn summary(&self) -> Arc<CertSummary> {
        self.summary.load_full()
    }

    /// Reads the files again and, when they make a valid configuration, puts it in force
    /// for new handshakes. On error the configuration in force stays. Blocking (file
    /// reads): call it from `spawn_blocking`.
    pub fn reload(&self) -> Result<Arc<CertSummary>, TlsError> {
        let Some(files) = &self.files else {
            return Ok(self.summary());
        };
        let (config, summary) = build(files)?;
        let summary = Arc::new(summary);
        self.current.store(config);
        self.summary.store(summary.clone());
        Ok(summary)
    }
}

/// Builds the server configuration from the listener's files.
fn build(cfg: &ListenerConfig) -> Result<(Arc<ServerConfig>, CertSummary), TlsError> {
    let chain = tls::load_certs(&cfg.cert)?;
    let key = tls::load_key(&cfg.key)?;
    let (verifier, crl_revoked) = match &cfg.client_ca {
        None => (None, None),
        Some(ca) => {
            let roots = Arc::new(tls::load_roots(ca)?);
            let builder = WebPkiClientVerifier::builder_with_provider(roots, tls::provider())
                .allow_unauthenticated();
            let (builder, revoked) = match &cfg.crl {
                None => (builder, None),
                Some(path) => {
                    let crls = tls::load_crls(path)?;
                    let revoked = count_revoked(&crls, path)?;
                    // A certificate whose issuer no CRL covers is still accepted: the CRL
                    // file may cover only some of the CAs in the bundle.
                    let builder = builder.with_crls(crls).allow_unknown_revocation_status();
                    (builder, Some(revoked))
                }
            };
            (Some(builder.build()?), revoked)
        }
    };
    let mut summary = summarize(chain.first(), &cfg.cert)?;
    summary.client_ca = verifier.is_some();
    summary.crl_revoked = crl_revoked;
    let versions = match cfg.min_tls {
        MinTls::Tls12 => tls::TLS12_AND_13,
        MinTls::Tls13 => tls::TLS13_ONLY,
    };
    let config = tls::server_config(chain, key, verifier, versions)?;
    Ok((config, summary))
}

/// Subject and notAfter of the leaf certificate.
pub fn summarize(leaf: Option<&CertificateDer<'_>>, path: &Path) -> Result<CertSummary, TlsError> {
    let bad = |message: String| TlsError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let leaf = leaf.ok_or_else(|| TlsError::NoCertificate {
        path: path.to_path_buf(),
    })?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| bad(format!("certificate does not parse: {e}")))?;
    let not_after = cert
        .validity()
        .not_after
        .to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(e.to_string()))?;
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        not_after,
        client_ca: false,
        crl_revoked: None,
    })
}

/// Revoked entries across the CRLs (rustls checks their signatures at handshake time).
fn count_revoked(crls: &[CertificateRevocationListDer<'_>], path: &Path) -> Result<u64, TlsError> {
    let mut n = 0u64;
    for crl in crls {
        let (_, parsed) = x509_parser::parse_x509_crl(crl).map_err(|e| TlsError::Pem {
            path: PathBuf::from(path),
            message: format!("revocation list does not parse: {e}"),
        })?;
        n += u64::try_from(parsed.iter_revoked_certificates().count()).unwrap_or(u64::MAX);
    }
    Ok(n)
}
