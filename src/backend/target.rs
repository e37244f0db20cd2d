//! Backend host settings (filled by the composition root from the inventory) and the
//! per-host rustls client configuration.
//!
//! Owns: what the gateway needs to reach one Windows host (address, port, scheme, TLS trust,
//! auth method) and building the TLS config once per host. It must not read the gateway's
//! config file itself and never holds credentials.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::BackendError;

/// The WinRM listener path on Windows hosts.
pub const WSMAN_PATH: &str = "/wsman";

/// http or https toward the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain http (5985); NTLM with message encryption only.
    Http,
    /// TLS (5986).
    Https,
}

/// How the gateway authenticates to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAuth {
    /// HTTP Basic (local accounts); only allowed over https.
    Basic,
    /// NTLM (raw NTLMSSP under the `Negotiate` scheme, as pywinrm/pypsrp send it): with
    /// WinRM message encryption over http; over https with channel binding
    /// (`tls-server-end-point`) and plaintext bodies inside TLS.
    Ntlm,
    /// Kerberos (raw GSS tokens under the `Kerberos` scheme) with a ticket from
    /// [`HostTarget::kdc`]; over http bodies are sealed as `HTTP-Kerberos-session-encrypted`.
    Kerberos,
    /// SPNEGO-wrapped Kerberos under the `Negotiate` scheme (never falls back to NTLM); over
    /// http bodies are sealed as `HTTP-SPNEGO-session-encrypted`.
    Negotiate,
    /// CredSSP (`Authorization: CredSSP`, see [`super::credssp`]): NTLM inside a TLS tunnel,
    /// then the password is delegated to the host so its onward hops work; over http bodies
    /// are sealed as `HTTP-CredSSP-session-encrypted`.
    CredSsp,
    /// Constrained delegation (S4U2Self + S4U2Proxy) as the person, from the gateway's
    /// keytab ([`HostTarget::impersonator`]), then SPNEGO like [`BackendAuth::Negotiate`].
    /// Works only in a binary built with the `delegate` feature.
    Delegate,
}

// === impl BackendAuth ===

impl BackendAuth {
    /// Whether this method needs a KDC (Kerberos or Negotiate).
    pub fn uses_kerberos(self) -> bool {
        matches!(self, Self::Kerberos | Self::Negotiate)
    }
}

/// TLS trust settings toward one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendTls {
    /// PEM file with the CA certificate(s) that sign the host's certificate. Required for
    /// https unless `insecure_skip_verify` is set (no system store is consulted).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (lab use only; logged at warn when a client is built).
    pub insecure_skip_verify: bool,
    /// Name to verify the certificate against (and to send as SNI) instead of `address`.
    pub server_name: Option<String>,
}

/// One Windows host as the backend client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTarget {
    /// Inventory name (used in logs and errors).
    pub name: String,
    /// Host name or IP address from the inventory (never from a client).
    pub address: String,
    /// TCP port (5985/5986 on Windows).
    pub port: u16,
    /// http or https.
    pub scheme: Scheme,
    /// TLS settings (https only).
    pub tls: BackendTls,
    /// Authentication method.
    pub auth: BackendAuth,
    /// Listener path, normally [`WSMAN_PATH`].
    pub path: String,
    /// KDC for Kerberos/Negotiate: `tcp://host:port` (from the inventory, never a client).
    pub kdc: Option<String>,
    /// Service principal name override; default `HTTP/<tls_name()>`.
    pub spn: Option<String>,
    /// Delegate: the gateway's own principal (`HTTP/gw.example.com@REALM`) whose keytab
    /// impersonates the person; the person's principal is the client's credential user.
    pub impersonator: Option<String>,
    /// `Negotiate` only: when Kerberos cannot start (KDC unreachable, unknown service
    /// principal), log in with NTLM instead of failing. Off unless configured: it is a
    /// downgrade the operator must choose.
    pub ntlm_fallback: bool,
}

// === impl HostTarget ===

impl HostTarget {
    /// A target with the default path `/wsman` and default TLS settings.
    pub fn new(
        name: impl Into<String>,
        address: impl Into<String>,
        port: u16,
        scheme: Scheme,
        auth: BackendAuth,
    ) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            port,
            scheme,
            tls: BackendTls::default(),
            auth,
            path: WSMAN_PATH.to_owned(),
            kdc: None,
            spn: None,
            impersonator: None,
            ntlm_fallback: false,
        }
    }

    /// The service principal the gateway asks a Kerberos ticket for: the configured `spn`,
    /// else `HTTP/<tls_name()>` (what Windows registers for WinRM).
    pub fn service_principal(&self) -> String {
        match &self.spn {
            Some(spn) => spn.clone(),
            None => format!(
                "HTTP/{}",
                self.tls_name()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
            ),
        }
    }

    /// `Host` header value (IPv6 literals in brackets).
    pub fn authority(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    /// The name used for TLS verification and the NTLM service name.
    pub fn tls_name(&self) -> &str {
        self.tls.server_name.as_deref().unwrap_or(&self.address)
    }

    /// Checks the combination of settings: Basic sends the password in clear, so it is
    /// refused over http.
    pub fn validate(&self) -> Result<(), BackendError> {
        if self.scheme == Scheme::Http && self.auth == BackendAuth::Basic {
            return Err(BackendError::Config {
                host: self.name.clone(),
                reason: "basic authentication over http would send the password in clear".into(),
            });
        }
        if self.auth.uses_kerberos() && self.kdc.is_none() {
            return Err(BackendError::Config {
                host: self.name.clone(),
                reason: "kerberos/negotiate authentication needs a kdc (tcp://host:port)".into(),
            });
        }
        if self.auth == BackendAuth::Delegate && self.impersonator.is_none() {
            return Err(BackendError::Config {
                host: self.name.clone(),
                reason: "delegate authentication needs the gateway's principal".into(),
            });
        }
        if !self.path.starts_with('/') {
            return Err(BackendError::Config {
                host: self.name.clone(),
                reason: "path must start with '/'".into(),
            });
        }
        Ok(())
    }

    /// Builds the rustls client config for this host (https only; `None` for http).
    /// TLS 1.2 and 1.3 only, ring provider, trust from `ca_file` or, when explicitly
    /// configured, no verification at all.
    pub fn client_tls_config(&self) -> Result<Option<Arc<ClientConfig>>, BackendError> {
        if self.scheme == Scheme::Http {
            return Ok(None);
        }
        let tls_err = |reason: String| BackendError::Config {
            host: self.name.clone(),
            reason,
        };
        if self.tls.insecure_skip_verify {
            tracing::warn!(host = %self.name, "Backend TLS certificate verification is disabled");
            let config = crate::tls::client_builder()
                .map_err(|e| tls_err(e.to_string()))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                    provider: crate::tls::provider(),
                }))
                .with_no_client_auth();
            return Ok(Some(Arc::new(config)));
        }
        let ca_file = self.tls.ca_file.as_ref().ok_or_else(|| {
            tls_err("https host needs tls.ca_file (or insecure_skip_verify)".into())
        })?;
        let roots = crate::tls::load_roots(ca_file).map_err(|e| tls_err(e.to_string()))?;
        crate::tls::client_config(roots, None)
            .map(Some)
            .map_err(|e| tls_err(e.to_string()))
    }

    /// The rustls server name to verify.
    pub(crate) fn server_name(&self) -> Result<ServerName<'static>, BackendError> {
        let name = self
            .tls_name()
            .trim_start_matches('[')
            .trim_end_matches(']');
        ServerName::try_from(name.to_owned()).map_err(|_| BackendError::Config {
            host: self.name.clone(),
            reason: format!("invalid tls server name {name:?}"),
        })
    }
}

/// A verifier that accepts every certificate. Constructed only when a host sets
/// `insecure_skip_verify`, and for CredSSP's inner tunnel (whose key `pubKeyAuth` binds
/// instead); handshake signatures are still checked so the session keys belong to whoever
/// holds the presented key.
#[derive(Debug)]
pub(super) struct AcceptAnyCert {
    pub(super) provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
