//! Kerberos and Negotiate sign-in at the gateway: the gateway as the acceptor for
//! `HTTP/<gateway name>` (issue #15), through `sspi` 0.23.1's server side.
//!
//! Owns: the service keys (from a keytab, [`super::keytab`]), one accept context per client
//! connection (WinRM authenticates the connection, not each request), the replay cache that
//! spans connections, mapping the ticket's client name to a [`Principal`](super::Principal),
//! and sealing/unsealing bodies with the established context for WinRM message encryption.
//! No I/O: the KDC is never contacted (an AP-REQ carries everything the acceptor needs).
//!
//! What the client sends decides the mechanism, not the HTTP scheme: pyspnego and Windows
//! put raw Kerberos GSS tokens under `Negotiate` as well as under `Kerberos`, and SPNEGO
//! tokens under `Negotiate`. NTLM is never accepted here (SPNEGO is restricted to Kerberos).
//!
//! Never logs tickets, keys, tokens or session keys.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sspi::kerberos::ServerProperties;
use sspi::{
    BufferType, CredentialUse, DataRepresentation, Kerberos, KerberosConfig, KerberosServerConfig,
    Negotiate, NegotiateConfig, SecurityBuffer, SecurityStatus, ServerRequestFlags, Sspi, SspiImpl,
};

use crate::backend::crypto::{CryptoError, Sealed};
use crate::backend::sealing::{seal, unseal};

use super::keytab::KeytabEntry;

/// DER prefix of a GSS-API initial context token (RFC 2743 §3.1): `[APPLICATION 0]`.
const GSS_INITIAL: u8 = 0x60;
/// The Kerberos 5 mechanism OID 1.2.840.113554.1.2.2, DER-encoded with its tag and length.
const KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];
/// SPNEGO 1.3.6.1.5.5.2.
const SPNEGO_OID: &[u8] = &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// Encryption types we take service keys of, strongest first (RFC 3962).
const AES256: i32 = 18;
const AES128: i32 = 17;

/// What the acceptor needs, filled from `[authn.kerberos]` by the lead.
#[derive(Clone)]
pub struct AcceptorSettings {
    /// The service principal without realm: `HTTP/gw.example.com`.
    pub service: String,
    /// The realm of the service (and the default realm of people).
    pub realm: String,
    /// Keys read from the keytab; those of `service` are used.
    pub keys: Vec<ServiceKeyInput>,
    /// Largest clock difference accepted, and how long an authenticator is remembered.
    pub max_skew: Duration,
    /// Group names per principal (`alice@REALM`), since tickets' PACs are not read.
    pub groups: BTreeMap<String, Vec<String>>,
}

/// One key as read from a keytab.
#[derive(Clone)]
pub struct ServiceKeyInput {
    pub principal: String,
    pub kvno: u32,
    pub enctype: i32,
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ServiceKeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("ServiceKeyInput")
            .field("principal", &self.principal)
            .field("kvno", &self.kvno)
            .field("enctype", &self.enctype)
            .finish_non_exhaustive()
    }
}

impl From<&KeytabEntry> for ServiceKeyInput {
    fn from(e: &KeytabEntry) -> Self {
        Self {
            principal: e.principal(),
            kvno: e.kvno,
            enctype: e.enctype,
            key: e.key.clone(),
        }
    }
}

impl std::fmt::Debug for AcceptorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptorSettings")
            .field("service", &self.service)
            .field("realm", &self.realm)
            .field("keys", &self.keys.len())
            .field("max_skew", &self.max_skew)
            .finish_non_exhaustive()
    }
}

/// Why a Kerberos sign-in failed; `reason()` is what the audit trail records.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("the keytab holds no AES key for {service}")]
    NoKey { service: String },
    #[error("the service principal {0:?} is not of the form SERVICE/host")]
    ServiceName(String),
    #[error("the token is neither a Kerberos nor an SPNEGO token")]
    UnknownMechanism,
    #[error("the authenticator was seen before (replay)")]
    Replay,
    #[error("the ticket was refused: {0}")]
    Refused(sspi::Error),
    #[error("the handshake needs more steps than a Kerberos AP exchange")]
    TooManySteps,
    #[error("the context names no client")]
    NoClient,
}

impl AcceptError {
    /// A short, stable reason for audit events (no ticket contents).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoKey { .. } | Self::ServiceName(_) => "kerberos_not_configured",
            Self::UnknownMechanism => "kerberos_unknown_mechanism",
            Self::Replay => "kerberos_replay",
            Self::Refused(e) => match e.error_type {
                sspi::ErrorKind::TimeSkew => "kerberos_clock_skew",
                _ if e.description.contains("expired") => "kerberos_ticket_expired",
                _ if e.description.contains("service name") => "kerberos_wrong_service",
                _ => "kerberos_ticket_refused",
            },
            Self::TooManySteps => "kerberos_handshake",
            Self::NoClient => "kerberos_no_client",
        }
    }
}

/// The gateway's acceptor: its keys and the replay cache, shared by all connections.
pub struct Acceptor {
    settings: AcceptorSettings,
    key: zeroize::Zeroizing<Vec<u8>>,
    components: Vec<String>,
    /// SHA-256 of every accepted initial token, for `max_skew` after it was seen: a
    /// replayed AP-REQ is byte-identical, on whichever connection it comes back.
    replay: moka::sync::Cache<[u8; 32], ()>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("service", &self.settings.service)
            .finish_non_exhaustive()
    }
}

/// One handshake step's outcome.
#[derive(Debug)]
pub enum AcceptStep {
    /// Send this token back (`WWW-Authenticate: <scheme> <token>`) with a 401 and wait.
    Continue(Vec<u8>),
    /// Signed in: the client's name (`user@REALM`) and the final token to return (AP-REP
    /// for mutual authentication; may be empty).
    Done { client: String, token: Vec<u8> },
}

enum Package {
    Kerberos(Box<Kerberos>),
    Negotiate(Box<Negotiate>),
}

/// One connection's accept context.
pub struct AcceptContext {
    package: Package,
    steps: u8,
    client: Option<String>,
}

impl std::fmt::Debug for AcceptContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptContext")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

// === impl Acceptor ===

impl Acceptor {
    /// Picks the service's strongest key (highest key version) and prepares the cache.
    pub fn new(settings: AcceptorSettings) -> Result<Self, AcceptError> {
        let components: Vec<String> = settings.service.split('/').map(str::to_string).collect();
        if components.len() != 2 || components.iter().any(String::is_empty) {
            return Err(AcceptError::ServiceName(settings.service.clone()));
        }
        let wanted = format!("{}@{}", settings.service, settings.realm);
        let key = [AES256, AES128]
            .iter()
            .find_map(|etype| {
                settings
                    .keys
                    .iter()
                    .filter(|k| k.enctype == *etype && k.principal.eq_ignore_ascii_case(&wanted))
                    .max_by_key(|k| k.kvno)
            })
            .map(|k| k.key.clone())
            .ok_or_else(|| AcceptError::NoKey {
                service: wanted.clone(),
            })?;
        let replay = moka::sync::Cache::builder()
            .time_to_live(settings.max_skew.saturating_mul(2))
            .max_capacity(1_000_000)
            .build();
        Ok(Self {
            settings,
            key,
            components,
            replay,
        })
    }

    /// The service principal, for logs and the CLI.
    pub fn service(&self) -> &str {
        &self.settings.service
    }

    /// Groups configured for a signed-in client.
    pub fn groups_of(&self, client: &str) -> Vec<String> {
        self.settings
            .groups
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(client))
            .map(|(_, g)| g.clone())
            .unwrap_or_default()
    }

    /// A fresh context for the first token of a connection; the token's mechanism picks
    /// raw Kerberos or SPNEGO.
    pub fn begin(&self, first_token: &[u8]) -> Result<AcceptContext, AcceptError> {
        let server = self.server_properties()?;
        let krb = KerberosConfig::new_with_kdc_url("tcp://127.0.0.1:88", computer_name());
        let package = match mechanism_of(first_token) {
            Some(Mech::Kerberos) => Package::Kerberos(Box::new(
                Kerberos::new_server_from_config(krb, server).map_err(AcceptError::Refused)?,
            )),
            Some(Mech::Spnego) => Package::Negotiate(Box::new(
                Negotiate::new_server(
                    NegotiateConfig::new(
                        Box::new(KerberosServerConfig {
                            kerberos_config: krb,
                            server_properties: server,
                        }),
                        Some("kerberos,!ntlm".to_owned()),
                        computer_name(),
                    ),
                    Vec::new(),
                )
                .map_err(AcceptError::Refused)?,
            )),
            None => return Err(AcceptError::UnknownMechanism),
        };
        Ok(AcceptContext {
            package,
            steps: 0,
            client: None,
        })
    }

    /// Runs one step of `ctx` with the client's token.
    pub fn step(&self, ctx: &mut AcceptContext, token: &[u8]) -> Result<AcceptStep, AcceptError> {
        ctx.steps = ctx.steps.saturating_add(1);
        // Kerberos is one AP exchange; SPNEGO may add one round for the MIC.
        if ctx.steps > 3 {
            return Err(AcceptError::TooManySteps);
        }
        if ctx.steps == 1 {
            let digest: [u8; 32] = Sha256::digest(token).into();
            if !self.replay.entry(digest).or_insert(()).is_fresh() {
                return Err(AcceptError::Replay);
            }
        }
        let (status, out) = match &mut ctx.package {
            Package::Kerberos(k) => accept(k.as_mut(), token)?,
            Package::Negotiate(n) => accept(n.as_mut(), token)?,
        };
        match status {
            SecurityStatus::Ok | SecurityStatus::CompleteNeeded => {
                let name = match &mut ctx.package {
                    Package::Kerberos(k) => k.query_context_names(),
                    Package::Negotiate(n) => n.query_context_names(),
                }
                .map_err(AcceptError::Refused)?;
                let client = client_name(&name.username, &self.settings.realm)
                    .ok_or(AcceptError::NoClient)?;
                ctx.client = Some(client.clone());
                Ok(AcceptStep::Done { client, token: out })
            }
            SecurityStatus::ContinueNeeded => Ok(AcceptStep::Continue(out)),
            other => Err(AcceptError::Refused(sspi::Error::new(
                sspi::ErrorKind::InvalidToken,
                format!("unexpected status {other:?}"),
            ))),
        }
    }

    fn server_properties(&self) -> Result<ServerProperties, AcceptError> {
        let names: Vec<&str> = self.components.iter().map(String::as_str).collect();
        ServerProperties::new(
            &names,
            None,
            self.settings.max_skew,
            Some(self.key.to_vec().into()),
        )
        .map_err(AcceptError::Refused)
    }
}

// === impl AcceptContext ===

impl AcceptContext {
    /// The signed-in client, once the handshake finished.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// Seals a response body for WinRM message encryption.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        match &mut self.package {
            Package::Kerberos(k) => seal(k.as_mut(), plaintext),
            Package::Negotiate(n) => seal(n.as_mut(), plaintext),
        }
    }

    /// Unseals a request body (integrity and sequence checked).
    pub fn unseal(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &mut self.package {
            Package::Kerberos(k) => unseal(k.as_mut(), header, data),
            Package::Negotiate(n) => unseal(n.as_mut(), header, data),
        }
    }
}

fn accept<S>(ctx: &mut S, token: &[u8]) -> Result<(SecurityStatus, Vec<u8>), AcceptError>
where
    S: Sspi + SspiImpl,
    S::CredentialsHandle: Default,
{
    let mut creds = ctx
        .acquire_credentials_handle()
        .with_credential_use(CredentialUse::Inbound)
        .execute(ctx)
        .map_err(AcceptError::Refused)?
        .credentials_handle;
    let mut input = vec![SecurityBuffer::new(token.to_vec(), BufferType::Token)];
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let result = ctx
        .accept_security_context()
        .with_credentials_handle(&mut creds)
        .with_context_requirements(ServerRequestFlags::empty())
        .with_target_data_representation(DataRepresentation::Native)
        .with_input(&mut input)
        .with_output(&mut output)
        .execute(ctx)
        .and_then(|mut generator| generator.resolve_to_result())
        .map_err(AcceptError::Refused)?;
    let out = output
        .into_iter()
        .next()
        .map(|b| b.buffer)
        .unwrap_or_default();
    Ok((result.status, out))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    Kerberos,
    Spnego,
}

/// The mechanism of a GSS initial token: `0x60 <len> <mech OID> ...`. SPNEGO follow-up
/// tokens (`0xa1 NegTokenTarg`) only come after a first token, on the same context.
fn mechanism_of(token: &[u8]) -> Option<Mech> {
    if token.first() != Some(&GSS_INITIAL) {
        return None;
    }
    // Skip the DER length (short form, or long form with up to 4 length bytes).
    let len_byte = *token.get(1)?;
    let skip = if len_byte & 0x80 == 0 {
        2
    } else {
        2 + usize::from(len_byte & 0x7f)
    };
    let rest = token.get(skip..)?;
    if rest.starts_with(KRB5_OID) {
        Some(Mech::Kerberos)
    } else if rest.starts_with(SPNEGO_OID) {
        Some(Mech::Spnego)
    } else {
        None
    }
}

/// `user@REALM` from sspi's name of the ticket's client (an UPN `user@realm`, realm in
/// lower case, or a down-level `REALM\\user`). Realms are written in upper case, as
/// Kerberos principals are.
fn client_name(username: &sspi::Username, default_realm: &str) -> Option<String> {
    let (account, realm) = match username.parts() {
        sspi::UsernameParts::UserPrincipalName(upn) => (upn.account_name(), upn.suffix()),
        sspi::UsernameParts::DownLevelLogonName(dl) => {
            (dl.account_name(), dl.netbios_domain().unwrap_or_default())
        }
    };
    if account.is_empty() {
        return None;
    }
    let realm = if realm.is_empty() {
        default_realm
    } else {
        realm
    };
    Some(format!("{account}@{}", realm.to_ascii_uppercase()))
}

fn computer_name() -> String {
    "hopgate".to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn mechanism_follows_the_token_not_the_scheme() {
        let mut krb = vec![GSS_INITIAL, 0x20];
        krb.extend_from_slice(KRB5_OID);
        krb.extend_from_slice(&[1, 0]);
        assert_eq!(mechanism_of(&krb), Some(Mech::Kerberos));
        let mut spnego = vec![GSS_INITIAL, 0x82, 0x01, 0x00];
        spnego.extend_from_slice(SPNEGO_OID);
        assert_eq!(mechanism_of(&spnego), Some(Mech::Spnego));
        // An NTLM NEGOTIATE message is not a GSS token: refused, never a silent fallback.
        assert_eq!(mechanism_of(b"NTLMSSP\0\x01\0\0\0"), None);
        assert_eq!(mechanism_of(&[GSS_INITIAL]), None);
        assert_eq!(mechanism_of(&[]), None);
    }

    #[test]
    fn a_keytab_without_the_service_key_is_a_configuration_error() {
        let settings = AcceptorSettings {
            service: "HTTP/gw.gw.test".into(),
            realm: "GW.TEST".into(),
            keys: vec![ServiceKeyInput {
                principal: "HTTP/other.gw.test@GW.TEST".into(),
                kvno: 1,
                enctype: AES256,
                key: zeroize::Zeroizing::new(vec![0; 32]),
            }],
            max_skew: Duration::from_secs(300),
            groups: BTreeMap::new(),
        };
        assert!(matches!(
            Acceptor::new(settings.clone()),
            Err(AcceptError::NoKey { .. })
        ));
        let mut ok = settings;
        ok.keys[0].principal = "HTTP/gw.gw.test@GW.TEST".into();
        let acceptor = Acceptor::new(ok).map_err(|e| e.to_string());
        assert!(acceptor.is_ok(), "{acceptor:?}");
    }
}
