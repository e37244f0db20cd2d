//! `delegate`: Kerberos constrained delegation with protocol transition, through MIT GSSAPI
//! (`libgssapi` with `s4u`). Compiled only with the `delegate` cargo feature.
//!
//! Owns: the gateway's initiator credential (from the client keytab of
//! [`super::delegate_env`]), S4U2Self (`Cred::impersonate`: a ticket to the gateway as the
//! person, no password involved), the SPNEGO client context toward `HTTP/<host>@REALM`
//! (S4U2Proxy happens inside its first step), the per (gateway, person, host) credential
//! cache, and sealing WinRM bodies with `wrap_iov`/`unwrap_iov` (header = the wrap token, as
//! pyspnego's `wrap_winrm` and Windows expect). One [`DelegateClient`] belongs to one TCP
//! connection and is used in order.
//!
//! Every call that may talk to the KDC runs in `tokio::task::spawn_blocking`: libkrb5 does
//! its own blocking network I/O. It does no HTTP and never logs tickets or keys.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::Error as GssError;
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};
use libgssapi::util::{GssIov, GssIovType};

use super::crypto::{CryptoError, EncryptionProtocol, Sealed};
use super::delegate_env::DelegateError;
use super::kerberos::Step;

/// Impersonated credentials are dropped this long before they expire (at most a quarter of
/// their life), so a connection never starts with a ticket about to lapse.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Upper bound of cached credentials (one per active person and host).
const CACHE_CAPACITY: u64 = 10_000;

/// What one delegated login is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DelegateSettings {
    /// The gateway's principal, whose key is in the client keytab.
    pub impersonator: String,
    /// The person's realm principal (`alice@GW.TEST`).
    pub user: String,
    /// The host's service principal with its realm (`HTTP/web1.gw.test@GW.TEST`).
    pub service: String,
}

/// `spn` (`HTTP/host`) in the realm of the gateway's principal (classic constrained
/// delegation stays within the gateway's realm); an `spn` that names a realm is kept.
pub fn service_in_realm(spn: &str, impersonator: &str) -> String {
    match (spn.contains('@'), impersonator.rsplit_once('@')) {
        (false, Some((_, realm))) if !realm.is_empty() => format!("{spn}@{realm}"),
        _ => spn.to_owned(),
    }
}

/// A cached impersonated credential and how long it may still be used.
#[derive(Clone)]
struct Cached {
    cred: Cred,
    ttl: Duration,
}

/// Expires each credential at its own lifetime minus the margin.
struct CredExpiry;

impl moka::Expiry<DelegateSettings, Cached> for CredExpiry {
    fn expire_after_create(
        &self,
        _key: &DelegateSettings,
        value: &Cached,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The process-wide credential cache (the GSSAPI environment is process-wide too).
fn cache() -> &'static moka::sync::Cache<DelegateSettings, Cached> {
    static CACHE: OnceLock<moka::sync::Cache<DelegateSettings, Cached>> = OnceLock::new();
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .expire_after(CredExpiry)
            .build()
    })
}

/// Forgets the cached credential of these settings (after the host refused its ticket).
pub fn forget(settings: &DelegateSettings) {
    cache().invalidate(settings);
}

/// A client SPNEGO context logged in as the person through delegation: handshake first,
/// then sealing for the life of one connection.
pub struct DelegateClient {
    ctx: Option<ClientCtx>,
    settings: DelegateSettings,
    /// RFC 5929 application data (`tls-server-end-point:<hash>`) over https.
    channel_bindings: Option<Vec<u8>>,
    established: bool,
    /// Whether the impersonated credential came from the cache.
    from_cache: bool,
}

impl std::fmt::Debug for DelegateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegateClient")
            .field("user", &self.settings.user)
            .field("service", &self.settings.service)
            .field("established", &self.established)
            .finish_non_exhaustive()
    }
}

// === impl DelegateClient ===

impl DelegateClient {
    /// Prepares a context; no Kerberos traffic happens until the first [`DelegateClient::step`].
    /// `channel_bindings`: the application data of the TLS channel binding, over https.
    pub fn new(settings: DelegateSettings, channel_bindings: Option<Vec<u8>>) -> Self {
        Self {
            ctx: None,
            settings,
            channel_bindings,
            established: false,
            from_cache: false,
        }
    }

    /// The framing of sealed bodies (SPNEGO).
    pub fn encryption_protocol(&self) -> EncryptionProtocol {
        EncryptionProtocol::Spnego
    }

    /// The HTTP authentication scheme.
    pub fn http_scheme(&self) -> &'static str {
        "Negotiate"
    }

    /// The settings this context logs in with.
    pub fn settings(&self) -> &DelegateSettings {
        &self.settings
    }

    /// Whether the impersonated credential was reused from the cache.
    pub fn credential_was_cached(&self) -> bool {
        self.from_cache
    }

    /// One handshake step. The first (no input) gets the impersonated credential (S4U2Self,
    /// or the cache), then the service ticket (S4U2Proxy) and returns the SPNEGO token; later
    /// calls consume the host's reply (AP-REP inside SPNEGO). Runs on the blocking pool.
    pub async fn step(&mut self, input: Option<&[u8]>) -> Result<Step, DelegateError> {
        if self.established {
            return Err(DelegateError::OutOfOrder);
        }
        let first = input.is_none();
        let input = input.map(<[u8]>::to_vec);
        let settings = self.settings.clone();
        let bindings = self.channel_bindings.clone();
        let ctx = self.ctx.take();
        let (ctx, from_cache, outcome) = tokio::task::spawn_blocking(move || {
            let (mut ctx, from_cache) = match ctx {
                Some(ctx) => (ctx, false),
                None => match new_context(&settings) {
                    Ok(pair) => pair,
                    Err(e) => return (None, false, Err(e)),
                },
            };
            let step = if input.is_some() { "reply" } else { "initial" };
            let outcome = ctx
                .step(input.as_deref(), bindings.as_deref())
                .map(|tok| tok.map(|t| t.to_vec()).unwrap_or_default())
                .map_err(|e| classify(step, &e));
            let done = ctx.is_complete();
            (Some(ctx), from_cache, outcome.map(|token| (token, done)))
        })
        .await
        .map_err(|_| DelegateError::Worker)?;
        if first {
            self.from_cache = from_cache;
        }
        self.ctx = ctx;
        let (token, done) = outcome?;
        self.established = done;
        Ok(Step { token, done })
    }

    /// Whether the handshake finished.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// Seals an outgoing WinRM body: header = the wrap token, data = the encrypted body.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let ctx = self.ctx.as_mut().ok_or_else(not_established)?;
        let mut data = plaintext.to_vec();
        let (header, padding) = {
            let mut iovs = [
                GssIov::new_alloc(GssIovType::Header),
                GssIov::new(GssIovType::Data, &mut data),
                GssIov::new_alloc(GssIovType::Padding),
            ];
            ctx.wrap_iov(true, &mut iovs).map_err(|e| gss_crypto(&e))?;
            let [header, _, padding] = &iovs;
            (header.to_vec(), padding.to_vec())
        };
        let pad = padding.len();
        data.extend_from_slice(&padding);
        Ok(Sealed {
            header,
            data,
            padding: pad,
        })
    }

    /// Unseals an incoming WinRM body (integrity and sequence checked by GSSAPI).
    pub fn unseal(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let ctx = self.ctx.as_mut().ok_or_else(not_established)?;
        let mut header = header.to_vec();
        let mut data = data.to_vec();
        {
            let mut iovs = [
                GssIov::new(GssIovType::Header, &mut header),
                GssIov::new(GssIovType::Data, &mut data),
            ];
            ctx.unwrap_iov(&mut iovs).map_err(|e| gss_crypto(&e))?;
        }
        Ok(data)
    }
}

fn not_established() -> CryptoError {
    CryptoError::Gss {
        detail: "delegate context not established".into(),
    }
}

fn gss_crypto(e: &GssError) -> CryptoError {
    CryptoError::Gss {
        detail: e.to_string(),
    }
}

/// The impersonated credential (cached or fresh) and a context toward the host. Blocking.
fn new_context(settings: &DelegateSettings) -> Result<(ClientCtx, bool), DelegateError> {
    let (cred, from_cache) = impersonated(settings)?;
    let target = Name::new(settings.service.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| classify("import service name", &e))?;
    // MUTUAL: the host proves it holds the service key (AP-REP); CONF/INTEG: WinRM bodies
    // are sealed; no DELEG flag: the person's TGT is never forwarded (there is none).
    let flags = CtxFlags::GSS_C_MUTUAL_FLAG
        | CtxFlags::GSS_C_CONF_FLAG
        | CtxFlags::GSS_C_INTEG_FLAG
        | CtxFlags::GSS_C_SEQUENCE_FLAG
        | CtxFlags::GSS_C_REPLAY_FLAG;
    Ok((
        ClientCtx::new(Some(cred), target, flags, Some(GSS_MECH_SPNEGO)),
        from_cache,
    ))
}

/// S4U2Self for `settings.user` from the gateway's credential, or the cached result.
fn impersonated(settings: &DelegateSettings) -> Result<(Cred, bool), DelegateError> {
    if let Some(hit) = cache().get(settings) {
        return Ok((hit.cred, true));
    }
    // SPNEGO only: it wraps the krb5 mechanism itself; naming krb5 too would make MIT run
    // the AS exchange and S4U2Self once per mechanism.
    let mut mechs = OidSet::new();
    mechs
        .add(GSS_MECH_SPNEGO)
        .map_err(|e| classify("mechanism set", &e))?;
    let gw_name = Name::new(
        settings.impersonator.as_bytes(),
        Some(GSS_NT_KRB5_PRINCIPAL),
    )
    .map_err(|e| classify("import gateway name", &e))?;
    // With the client keytab MIT gets (and renews) the gateway's TGT itself.
    let gateway = Cred::acquire(Some(&gw_name), None, CredUsage::Initiate, Some(&mechs))
        .map_err(|_| diagnose_gateway_credential(&gw_name))?;
    let user = Name::new(settings.user.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| classify("import user name", &e))?;
    let cred = gateway
        .impersonate(&user, None, CredUsage::Initiate, Some(&mechs))
        .map_err(|e| classify("s4u2self", &e))?;
    let lifetime = cred.lifetime().unwrap_or_default();
    let ttl = lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 4));
    if !ttl.is_zero() {
        cache().insert(
            settings.clone(),
            Cached {
                cred: cred.clone(),
                ttl,
            },
        );
    }
    Ok((cred, false))
}

/// Why the gateway's credential is unavailable. SPNEGO reports every krb5 failure at this
/// step as "cannot find mechanisms to negotiate", so ask the krb5 mechanism itself again
/// for the real reason (KDC unreachable, no key in the keytab, key refused).
fn diagnose_gateway_credential(gw_name: &Name) -> DelegateError {
    let mut krb5 = OidSet::new();
    let retried = krb5
        .add(GSS_MECH_KRB5)
        .and_then(|()| Cred::acquire(Some(gw_name), None, CredUsage::Initiate, Some(&krb5)));
    match retried {
        Err(e) => classify("gateway credential", &e),
        Ok(_) => DelegateError::Gss {
            step: "gateway credential",
            detail: "spnego found no usable mechanism for the gateway's credential".into(),
        },
    }
}

/// Maps a GSSAPI failure to the reason the operator needs.
///
/// The Kerberos error code cannot be read from the minor status: MIT's mechanism glue
/// renumbers mechanism minor codes (100000, 100001, ... in first-seen order) so that
/// `gss_display_status` can find the mechanism again. The texts it displays come from MIT's
/// fixed `krb5_err.et`/`k5e1_err.et` tables and are untranslated in a Rust process (Rust
/// never calls `setlocale`, so libkrb5 stays in the C locale), so they are matched here.
fn classify(step: &'static str, e: &GssError) -> DelegateError {
    let detail = format!("{step}: {e}");
    classify_text(step, detail)
}

fn classify_text(step: &'static str, detail: String) -> DelegateError {
    let has = |needle: &str| detail.contains(needle);
    if has("Cannot contact any KDC")
        || has("Cannot resolve network address for KDC")
        || has("Cannot find KDC")
    {
        DelegateError::KdcUnreachable { detail }
    } else if has("KDC can't fulfill requested option") || has("KDC policy rejects request") {
        DelegateError::DelegationRefused { detail }
    } else if has("Clock skew too great") {
        DelegateError::ClockSkew { detail }
    } else if has("Can't find client principal")
        || has("Keytab contains no suitable keys")
        || has("Key table entry not found")
        || has("No key table entry found")
    {
        DelegateError::NoGatewayKey { detail }
    } else if has("Preauthentication failed")
        || has("Decrypt integrity check failed")
        || (step == "gateway credential" && has("not found in Kerberos database"))
    {
        DelegateError::GatewayKey { detail }
    } else if has("Client") && has("not found in Kerberos database")
        || step == "s4u2self" && has("not found in Kerberos database")
    {
        DelegateError::UnknownUser { detail }
    } else if has("Server") && has("not found in Kerberos database") {
        DelegateError::UnknownService { detail }
    } else {
        DelegateError::Gss { step, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principals_get_the_gateway_realm() {
        assert_eq!(
            service_in_realm("HTTP/web1.gw.test", "HTTP/gw.gw.test@GW.TEST"),
            "HTTP/web1.gw.test@GW.TEST"
        );
        assert_eq!(
            service_in_realm("HTTP/web1.other.test@OTHER.TEST", "HTTP/gw@GW.TEST"),
            "HTTP/web1.other.test@OTHER.TEST"
        );
    }

    /// The status texts MIT displays for the failures an operator must tell apart (as seen
    /// against Heimdal's KDC in tests/e2e/delegate.rs).
    #[test]
    fn mit_status_texts_are_classified() {
        let c = |step, text: &str| classify_text(step, text.to_owned()).reason();
        let gss = "Unspecified GSS failure.  Minor code may provide more information";
        assert_eq!(
            c(
                "initial",
                &format!("{gss} (KDC can't fulfill requested option)")
            ),
            "kdc refused the delegation to this host"
        );
        assert_eq!(
            c(
                "gateway credential",
                &format!("{gss} (Cannot contact any KDC for realm 'GW.TEST')")
            ),
            "kdc unreachable"
        );
        assert_eq!(
            c(
                "s4u2self",
                &format!("{gss} (Client 'mallory@GW.TEST' not found in Kerberos database)")
            ),
            "kdc does not know the user"
        );
        assert_eq!(
            c(
                "initial",
                &format!("{gss} (Server 'HTTP/x@GW.TEST' not found in Kerberos database)")
            ),
            "kdc does not know the host's service principal"
        );
        let no_cred = "No credentials were supplied, or the credentials were unavailable or \
                       inaccessible";
        assert_eq!(
            c(
                "gateway credential",
                &format!(
                    "{no_cred} (Can't find client principal HTTP/gw@GW.TEST in cache collection)"
                )
            ),
            "gateway keytab has no key for its principal"
        );
        assert_eq!(
            c(
                "gateway credential",
                &format!("{gss} (Preauthentication failed)")
            ),
            "kdc rejected the gateway's keytab"
        );
        assert_eq!(
            c("initial", &format!("{gss} (Clock skew too great)")),
            "clock skew too great"
        );
        assert_eq!(c("reply", gss), "kerberos handshake failed");
    }
}
