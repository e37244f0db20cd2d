//! Kerberos and Negotiate (SPNEGO) client contexts for backend connections, through `sspi`
//! 0.23.1 with a vaulted password.
//!
//! Owns: getting a TGT and a service ticket for `HTTP/<host>` from the KDC (the KDC traffic
//! goes through [`super::kdc`] on tokio sockets: `sspi` only hands the requests out), the
//! AP-REQ/AP-REP exchange tokens, and sealing/unsealing WinRM bodies with the established
//! context (RFC 4121 wrap tokens; the WinRM header is the `security_trailer` bytes of the
//! token, 60 for AES). One [`KerberosClient`] belongs to one TCP connection and is used in
//! order. It does no HTTP and never logs passwords, tickets or session keys.
//!
//! Negotiate is restricted to Kerberos (`kerberos,!ntlm`): a host configured for Kerberos
//! is never logged in to with NTLM behind the operator's back. The operator can allow it per
//! host (`ntlm_fallback`): the connection then does a separate NTLM login when this module
//! reports that Kerberos could not start ([`KerberosError::allows_ntlm_fallback`]).

use std::time::Duration;

use sspi::generator::GeneratorState;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, CredentialsBuffers,
    DataRepresentation, ErrorKind, Kerberos, KerberosConfig, Negotiate, NegotiateConfig,
    SecurityBuffer, SecurityStatus, Sspi, SspiImpl, Username,
};

use super::crypto::{CryptoError, EncryptionProtocol, Sealed};
use super::kdc::{self, KdcError};
use super::sealing::{seal, unseal};

/// Which GSS mechanism toward the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Raw Kerberos tokens under the HTTP `Kerberos` scheme; bodies framed as
    /// `HTTP-Kerberos-session-encrypted`.
    Kerberos,
    /// SPNEGO-wrapped Kerberos under the HTTP `Negotiate` scheme; bodies framed as
    /// `HTTP-SPNEGO-session-encrypted`.
    Negotiate,
}

// === impl Mechanism ===

impl Mechanism {
    /// The HTTP authentication scheme name.
    pub fn http_scheme(self) -> &'static str {
        match self {
            Self::Kerberos => "Kerberos",
            Self::Negotiate => "Negotiate",
        }
    }

    /// The message-encryption protocol string (PROTOCOL.md §7).
    pub fn encryption_protocol(self) -> EncryptionProtocol {
        match self {
            Self::Kerberos => EncryptionProtocol::Kerberos,
            Self::Negotiate => EncryptionProtocol::Spnego,
        }
    }
}

/// Why a Kerberos login failed; `reason()` is what the audit trail records.
#[derive(Debug, thiserror::Error)]
pub enum KerberosError {
    /// The user name is neither `user@REALM` nor `DOMAIN\user`.
    #[error("invalid kerberos user name (use user@REALM)")]
    Username,
    /// The KDC could not be reached or did not answer.
    #[error("kdc unreachable")]
    KdcUnreachable {
        /// The transport error.
        #[source]
        source: KdcError,
    },
    /// The KDC refused the vaulted password (pre-authentication failed or the reply did not
    /// decrypt with the password's key).
    #[error("kdc rejected the password")]
    PasswordRejected {
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// The KDC does not know the user or the service principal.
    #[error("kdc does not know the client or service principal")]
    UnknownPrincipal {
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// The KDC's clock and the gateway's differ by more than the realm allows, even after
    /// the one retry with the KDC's time the client makes on KRB_AP_ERR_SKEW.
    #[error("clock skew between the gateway and the kdc")]
    ClockSkew {
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// Any other failure of the security package at this step.
    #[error("kerberos {step} failed")]
    Sspi {
        /// Handshake step.
        step: &'static str,
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// A handshake method was called after the context was established.
    #[error("kerberos handshake step called after the context was established")]
    OutOfOrder,
}

// === impl KerberosError ===

impl KerberosError {
    /// A short reason for the audit trail (no secrets, stable wording).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Username => "invalid kerberos user name",
            Self::KdcUnreachable { .. } => "kdc unreachable",
            Self::PasswordRejected { .. } => "kdc rejected the vaulted password",
            Self::UnknownPrincipal { .. } => "kdc does not know the principal",
            Self::ClockSkew { .. } => "clock skew with the kdc",
            Self::Sspi { .. } | Self::OutOfOrder => "kerberos handshake failed",
        }
    }

    /// Whether NTLM may be tried instead (Negotiate's fallback, when configured): Kerberos
    /// could not start at all, before the host or the password was involved. A refused
    /// password or a failed handshake never falls back: that would only be a downgrade.
    pub fn allows_ntlm_fallback(&self) -> bool {
        matches!(
            self,
            Self::KdcUnreachable { .. } | Self::UnknownPrincipal { .. }
        )
    }

    /// Whether a later attempt may succeed without changing anything (the KDC was down).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::KdcUnreachable { .. })
    }
}

/// The security package behind a [`KerberosClient`].
enum Package {
    Kerberos(Box<Kerberos>),
    Negotiate(Box<Negotiate>),
}

/// Settings for one client context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerberosSettings {
    /// `tcp://host:port` of the KDC.
    pub kdc_url: String,
    /// Service principal name of the host, `HTTP/<fqdn>`.
    pub spn: String,
    /// Deadline for each KDC exchange.
    pub kdc_timeout: Duration,
}

/// What one handshake step produced.
#[derive(Debug)]
pub struct Step {
    /// Token to send to the host (may be empty when nothing is left to send).
    pub token: Vec<u8>,
    /// The context is established and can seal.
    pub done: bool,
}

/// A client Kerberos/Negotiate context: handshake first, then sealing for the life of one
/// connection.
pub struct KerberosClient {
    package: Package,
    mechanism: Mechanism,
    creds: Option<CredentialsBuffers>,
    settings: KerberosSettings,
    channel_bindings: Option<Vec<u8>>,
    established: bool,
}

impl std::fmt::Debug for KerberosClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials, tickets or keys.
        f.debug_struct("KerberosClient")
            .field("mechanism", &self.mechanism)
            .field("spn", &self.settings.spn)
            .field("established", &self.established)
            .finish_non_exhaustive()
    }
}

// === impl KerberosClient ===

impl KerberosClient {
    /// Prepares a context for `user` (`user@REALM`) and `password` toward `settings.spn`.
    /// No network traffic happens until [`KerberosClient::step`].
    pub fn new(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        settings: KerberosSettings,
    ) -> Result<Self, KerberosError> {
        // Without a realm sspi would send an AS-REQ for an empty realm: refuse early.
        if !names_a_realm(user) {
            return Err(KerberosError::Username);
        }
        let username = Username::parse(user).map_err(|_| KerberosError::Username)?;
        let identity = AuthIdentity {
            username,
            // `sspi::Secret` zeroizes on drop.
            password: String::from(password).into(),
        };
        let sspi_err = |source| KerberosError::Sspi {
            step: "prepare",
            source,
        };
        let krb_config = KerberosConfig::new_with_kdc_url(&settings.kdc_url, computer_name());
        let mut package = match mechanism {
            Mechanism::Kerberos => Package::Kerberos(Box::new(
                Kerberos::new_client_from_config(krb_config).map_err(sspi_err)?,
            )),
            Mechanism::Negotiate => Package::Negotiate(Box::new(
                Negotiate::new_client(NegotiateConfig::new(
                    Box::new(krb_config),
                    Some("kerberos,!ntlm".to_owned()),
                    computer_name(),
                ))
                .map_err(sspi_err)?,
            )),
        };
        let creds = match &mut package {
            Package::Kerberos(ctx) => acquire(ctx.as_mut(), identity),
            Package::Negotiate(ctx) => acquire(ctx.as_mut(), identity),
        }
        .map_err(sspi_err)?;
        Ok(Self {
            package,
            mechanism,
            creds,
            settings,
            channel_bindings: None,
            established: false,
        })
    }

    /// The mechanism this context speaks.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Binds the AP-REQ to the TLS channel (RFC 5929 `tls-server-end-point`). Call before
    /// the first [`KerberosClient::step`]. Not used by the backend connection yet: MIT
    /// acceptors refuse the `KERB_AP_OPTIONS_CBT` authorization data sspi adds with it.
    pub fn set_tls_server_end_point(&mut self, server_cert_der: &[u8]) {
        let app = super::ntlm::tls_server_end_point(server_cert_der);
        self.channel_bindings = Some(sec_channel_bindings(&app));
    }

    /// Runs one handshake step: the first call (no input) talks to the KDC and returns the
    /// AP-REQ; later calls consume the host's reply token (AP-REP, SPNEGO response).
    pub async fn step(&mut self, input: Option<&[u8]>) -> Result<Step, KerberosError> {
        if self.established {
            return Err(KerberosError::OutOfOrder);
        }
        let mut input_bufs = vec![SecurityBuffer::new(
            input.map(<[u8]>::to_vec).unwrap_or_default(),
            BufferType::Token,
        )];
        if let Some(cb) = &self.channel_bindings {
            input_bufs.push(SecurityBuffer::new(cb.clone(), BufferType::ChannelBindings));
        }
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let timeout = self.settings.kdc_timeout;
        let target = self.settings.spn.clone();
        let step = if input.is_some() { "reply" } else { "initial" };
        let status = match &mut self.package {
            Package::Kerberos(ctx) => {
                init_step(
                    ctx.as_mut(),
                    &mut self.creds,
                    &target,
                    &mut input_bufs,
                    &mut output,
                    timeout,
                    step,
                )
                .await?
            }
            Package::Negotiate(ctx) => {
                init_step(
                    ctx.as_mut(),
                    &mut self.creds,
                    &target,
                    &mut input_bufs,
                    &mut output,
                    timeout,
                    step,
                )
                .await?
            }
        };
        let done = status == SecurityStatus::Ok;
        self.established = done;
        let token = output
            .into_iter()
            .next()
            .map(|b| b.buffer)
            .unwrap_or_default();
        Ok(Step { token, done })
    }

    /// Whether the handshake finished.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Seals an outgoing WinRM body: the header is the wrap token's first `security_trailer`
    /// bytes, the data the rest (what pyspnego's `unwrap_winrm` and Windows expect).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        match &mut self.package {
            Package::Kerberos(ctx) => seal(ctx.as_mut(), plaintext),
            Package::Negotiate(ctx) => seal(ctx.as_mut(), plaintext),
        }
    }

    /// Unseals an incoming WinRM body (checks integrity and the sequence number).
    pub fn unseal(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &mut self.package {
            Package::Kerberos(ctx) => unseal(ctx.as_mut(), header, data),
            Package::Negotiate(ctx) => unseal(ctx.as_mut(), header, data),
        }
    }
}

/// `user@REALM` or `DOMAIN\\user`, both parts non-empty.
fn names_a_realm(user: &str) -> bool {
    let parts = user.split_once('@').or_else(|| user.split_once('\\'));
    parts.is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
}

/// The workstation name sspi puts in the AS-REQ addresses (informational).
fn computer_name() -> String {
    "hopgate".to_owned()
}

fn acquire<S>(ctx: &mut S, identity: AuthIdentity) -> sspi::Result<Option<CredentialsBuffers>>
where
    S: Sspi
        + SspiImpl<
            CredentialsHandle = Option<CredentialsBuffers>,
            AuthenticationData = sspi::Credentials,
        >,
{
    let data: sspi::Credentials = identity.into();
    let acquired = ctx
        .acquire_credentials_handle()
        .with_credential_use(CredentialUse::Outbound)
        .with_auth_data(&data)
        .execute(ctx)?;
    Ok(acquired.credentials_handle)
}

/// Drives one `initialize_security_context` call, sending each KDC request the package
/// yields over [`kdc::send`] and resuming it with the reply.
async fn init_step<S>(
    ctx: &mut S,
    creds: &mut Option<CredentialsBuffers>,
    target: &str,
    input: &mut [SecurityBuffer],
    output: &mut [SecurityBuffer],
    timeout: Duration,
    step: &'static str,
) -> Result<SecurityStatus, KerberosError>
where
    S: Sspi + SspiImpl<CredentialsHandle = Option<CredentialsBuffers>>,
{
    // MUTUAL_AUTH: the host proves it holds the service key (AP-REP); CONFIDENTIALITY and
    // INTEGRITY: the context must seal WinRM bodies.
    let flags = ClientRequestFlags::MUTUAL_AUTH
        | ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::SEQUENCE_DETECT
        | ClientRequestFlags::REPLAY_DETECT;
    let mut kdc_failure: Option<KdcError> = None;
    let outcome = {
        let mut builder = ctx
            .initialize_security_context()
            .with_credentials_handle(creds)
            .with_context_requirements(flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(target)
            .with_input(input)
            .with_output(output);
        let mut generator = ctx
            .initialize_security_context_impl(&mut builder)
            .map_err(|source| KerberosError::Sspi { step, source })?;
        let mut state = generator.start();
        loop {
            match state {
                GeneratorState::Suspended(request) => {
                    let reply = match kdc::send(&request, timeout).await {
                        Ok(reply) => Ok(reply),
                        Err(e) => {
                            let err = sspi::Error::new(
                                ErrorKind::NoAuthenticatingAuthority,
                                e.to_string(),
                            );
                            kdc_failure = Some(e);
                            Err(err)
                        }
                    };
                    state = generator.resume(reply);
                }
                GeneratorState::Completed(result) => break result,
            }
        }
    };
    let result = match outcome {
        Ok(result) => result,
        Err(source) => return Err(classify(source, kdc_failure, step)),
    };
    if matches!(
        result.status,
        SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
    ) {
        ctx.complete_auth_token(output)
            .map_err(|source| KerberosError::Sspi { step, source })?;
    }
    Ok(result.status)
}

/// Maps a package failure to the reason the operator needs.
fn classify(
    source: sspi::Error,
    kdc_failure: Option<KdcError>,
    step: &'static str,
) -> KerberosError {
    if let Some(source) = kdc_failure {
        return KerberosError::KdcUnreachable { source };
    }
    match source.error_type {
        ErrorKind::UnknownCredentials => KerberosError::UnknownPrincipal { source },
        ErrorKind::TimeSkew => KerberosError::ClockSkew { source },
        // KDC_ERR_PREAUTH_FAILED, or an AS-REP that does not decrypt with the password's key.
        ErrorKind::KdcInvalidRequest | ErrorKind::LogonDenied | ErrorKind::MessageAltered
            if step == "initial" =>
        {
            KerberosError::PasswordRejected { source }
        }
        _ => KerberosError::Sspi { step, source },
    }
}

/// A `SEC_CHANNEL_BINDINGS` structure holding only application data (what Windows and
/// `sspi` read): eight u32 fields, then the data at offset 32.
fn sec_channel_bindings(application_data: &[u8]) -> Vec<u8> {
    const HEADER: u32 = 32;
    let len = u32::try_from(application_data.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(application_data.len().saturating_add(32));
    // initiator type/len/offset, acceptor type/len/offset: unused.
    out.extend_from_slice(&[0u8; 24]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&HEADER.to_le_bytes());
    out.extend_from_slice(application_data);
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn channel_bindings_parse_back_in_sspi() {
        let app = b"tls-server-end-point:0123456789abcdef0123456789abcdef";
        let raw = sec_channel_bindings(app);
        let parsed = sspi::channel_bindings::ChannelBindings::from_bytes(&raw)
            .unwrap_or_else(|e| panic!("sspi rejects our SEC_CHANNEL_BINDINGS: {e}"));
        assert_eq!(parsed.application_data, app);
        assert!(parsed.initiator.is_empty() && parsed.acceptor.is_empty());
    }

    #[test]
    fn spn_is_http_slash_tls_name_unless_configured() {
        use crate::backend::{BackendAuth, BackendError, HostTarget, Scheme};
        let mut t = HostTarget::new("h", "10.0.0.5", 5985, Scheme::Http, BackendAuth::Kerberos);
        assert_eq!(t.service_principal(), "HTTP/10.0.0.5");
        t.tls.server_name = Some("web1.example.com".into());
        assert_eq!(t.service_principal(), "HTTP/web1.example.com");
        t.spn = Some("HTTP/web1-alias.example.com".into());
        assert_eq!(t.service_principal(), "HTTP/web1-alias.example.com");
        // Kerberos without a KDC cannot work: refused when the client is built.
        assert!(matches!(t.validate(), Err(BackendError::Config { .. })));
        t.kdc = Some("tcp://127.0.0.1:88".into());
        assert!(t.validate().is_ok());
        let v6 = HostTarget::new("h", "::1", 5985, Scheme::Http, BackendAuth::Negotiate);
        assert_eq!(v6.service_principal(), "HTTP/::1");
    }

    #[test]
    fn failures_are_classified_for_the_audit_trail() {
        let e = |kind| sspi::Error::new(kind, "x");
        let down = KdcError::Io {
            addr: "127.0.0.1:88".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        let k = classify(
            e(ErrorKind::NoAuthenticatingAuthority),
            Some(down),
            "initial",
        );
        assert_eq!(k.reason(), "kdc unreachable");
        assert!(k.is_transient());
        let k = classify(e(ErrorKind::KdcInvalidRequest), None, "initial");
        assert_eq!(k.reason(), "kdc rejected the vaulted password");
        assert!(!k.is_transient());
        let k = classify(e(ErrorKind::UnknownCredentials), None, "initial");
        assert_eq!(k.reason(), "kdc does not know the principal");
        // KRB_AP_ERR_SKEW that survived sspi's retry with the KDC's time.
        let k = classify(e(ErrorKind::TimeSkew), None, "initial");
        assert_eq!(k.reason(), "clock skew with the kdc");
        assert!(!k.is_transient());
        // A bad AP-REP is the host's problem, not the password's.
        let k = classify(e(ErrorKind::MessageAltered), None, "reply");
        assert_eq!(k.reason(), "kerberos handshake failed");
    }

    #[test]
    fn mechanisms_use_the_protocol_strings_of_protocol_md() {
        assert_eq!(
            Mechanism::Kerberos.encryption_protocol().as_str(),
            "application/HTTP-Kerberos-session-encrypted"
        );
        assert_eq!(
            Mechanism::Negotiate.encryption_protocol().as_str(),
            "application/HTTP-SPNEGO-session-encrypted"
        );
        assert_eq!(Mechanism::Kerberos.http_scheme(), "Kerberos");
        assert_eq!(Mechanism::Negotiate.http_scheme(), "Negotiate");
    }

    #[test]
    fn user_names_without_a_realm_form_are_refused() {
        let settings = KerberosSettings {
            kdc_url: "tcp://127.0.0.1:88".into(),
            spn: "HTTP/h.example".into(),
            kdc_timeout: Duration::from_secs(1),
        };
        assert!(
            KerberosClient::new(Mechanism::Kerberos, "alice@GW.TEST", "pw", settings.clone())
                .is_ok()
        );
        assert!(
            KerberosClient::new(Mechanism::Negotiate, "GW\\alice", "pw", settings.clone()).is_ok()
        );
        for bad in ["", "alice", "alice@", "@GW.TEST", "\\alice", "GW\\"] {
            assert!(
                matches!(
                    KerberosClient::new(Mechanism::Kerberos, bad, "pw", settings.clone()),
                    Err(KerberosError::Username)
                ),
                "{bad:?}"
            );
        }
    }
}
