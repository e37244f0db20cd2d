//! The process-wide Kerberos environment of the `delegate` backend method (constrained
//! delegation with protocol transition), and its plain-Rust helpers.
//!
//! Owns: mapping an authenticated person to the realm principal the gateway impersonates,
//! the generated `krb5.conf`, the gateway's keytab file (merged from the vault entries of
//! all `delegate` hosts), the `KRB5_*` environment variables that point MIT Kerberos at them,
//! and the [`DelegateError`] every delegate failure is reported with.
//!
//! Why environment variables: the `libgssapi` crate exposes no `gss_acquire_cred_from`
//! (cred-store) call, and `unsafe` is forbidden here, so MIT GSSAPI finds its configuration,
//! client keytab and credential cache through `KRB5_CONFIG`, `KRB5_CLIENT_KTNAME` and
//! `KRB5CCNAME`. They are set exactly once, by [`install`], before the tokio runtime (and
//! so any other thread) starts; everything later only rewrites files in the private
//! directory they name. One generated `krb5.conf` lists every realm and KDC of the inventory,
//! one keytab holds every gateway principal, so one process serves many hosts and realms.
//!
//! This module needs no system library (it compiles without the `delegate` feature); the
//! GSSAPI part is [`super::delegate`]. It never logs keytab bytes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use zeroize::Zeroizing;

/// The credential cache of the gateway's own tickets (S4U2Self runs on its TGT). Each
/// impersonation gets its own `MEMORY:` cache from MIT, named uniquely.
pub const CCACHE: &str = "MEMORY:hopgate-delegate";
/// The placeholder for the authenticated name, as is.
pub const USER_PLACEHOLDER: &str = "{user}";
/// The placeholder for the authenticated name up to its first `@`.
pub const LOCAL_PLACEHOLDER: &str = "{local}";
/// First two bytes of an MIT/Heimdal keytab file (format version 0x502).
const KEYTAB_MAGIC: [u8; 2] = [0x05, 0x02];

/// Why a delegated login failed; `reason()` is what the audit trail records.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// This binary has no GSSAPI support compiled in.
    #[error("this hopgate binary was built without the `delegate` feature")]
    NotBuilt,
    /// [`install`] did not run (the gateway was not started with `hopgate serve`).
    #[error("the delegate kerberos environment is not prepared (start with `hopgate serve`)")]
    NotPrepared,
    /// A second [`install`] in one process.
    #[error("the delegate kerberos environment is already installed")]
    AlreadyInstalled,
    /// The vault entry does not hold a base64 keytab.
    #[error("vault entry {entry} is not a base64 keytab: {why}")]
    Keytab {
        /// Vault entry name.
        entry: String,
        /// What is wrong (never the bytes).
        why: &'static str,
    },
    /// Writing the private files failed.
    #[error("cannot write {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The authenticated name does not map to a usable realm principal.
    #[error("client name {name:?} does not map to a realm principal: {why}")]
    Principal {
        /// The authenticated name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// No KDC answered.
    #[error("kdc unreachable: {detail}")]
    KdcUnreachable {
        /// GSSAPI status text.
        detail: String,
    },
    /// The KDC refused S4U2Proxy to this host (not in the gateway's delegation list) or the
    /// user's ticket cannot be delegated.
    #[error("kdc refused the delegation: {detail}")]
    DelegationRefused {
        /// GSSAPI status text.
        detail: String,
    },
    /// The KDC does not know the user (S4U2Self).
    #[error("kdc does not know the user: {detail}")]
    UnknownUser {
        /// GSSAPI status text.
        detail: String,
    },
    /// The KDC does not know the host's service principal.
    #[error("kdc does not know the host's service principal: {detail}")]
    UnknownService {
        /// GSSAPI status text.
        detail: String,
    },
    /// The gateway's own key was not accepted, or the keytab has no key for its principal.
    #[error("the gateway's keytab was not accepted: {detail}")]
    GatewayKey {
        /// GSSAPI status text.
        detail: String,
    },
    /// The gateway's keytab holds no key for the gateway's principal (wrong vault entry or
    /// vault user name).
    #[error("the gateway's keytab has no key for its principal: {detail}")]
    NoGatewayKey {
        /// GSSAPI status text.
        detail: String,
    },
    /// The clocks of the gateway and the KDC or host differ too much.
    #[error("clock skew too great: {detail}")]
    ClockSkew {
        /// GSSAPI status text.
        detail: String,
    },
    /// Any other GSSAPI failure.
    #[error("gssapi {step} failed: {detail}")]
    Gss {
        /// Which call.
        step: &'static str,
        /// GSSAPI status text.
        detail: String,
    },
    /// A blocking GSSAPI task did not finish (runtime shutting down).
    #[error("gssapi worker task failed")]
    Worker,
    /// A handshake step after the context was established.
    #[error("delegate handshake step called after the context was established")]
    OutOfOrder,
}

// === impl DelegateError ===

impl DelegateError {
    /// A short, stable reason for the audit trail (no secrets, no principal names).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotBuilt => "hopgate built without the delegate feature",
            Self::NotPrepared | Self::AlreadyInstalled | Self::Io { .. } => {
                "delegate kerberos environment unavailable"
            }
            Self::Keytab { .. } => "gateway keytab in the vault is not usable",
            Self::Principal { .. } => "client has no realm principal",
            Self::KdcUnreachable { .. } => "kdc unreachable",
            Self::DelegationRefused { .. } => "kdc refused the delegation to this host",
            Self::UnknownUser { .. } => "kdc does not know the user",
            Self::UnknownService { .. } => "kdc does not know the host's service principal",
            Self::GatewayKey { .. } => "kdc rejected the gateway's keytab",
            Self::NoGatewayKey { .. } => "gateway keytab has no key for its principal",
            Self::ClockSkew { .. } => "clock skew too great",
            Self::Gss { .. } | Self::Worker | Self::OutOfOrder => "kerberos handshake failed",
        }
    }

    /// Whether a later attempt may succeed without changing anything (the KDC was down).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::KdcUnreachable { .. } | Self::Worker)
    }
}

/// The realm principal the gateway impersonates for `name` (the authenticated person):
/// `{user}` in `template` becomes `name`, `{local}` the part of `name` before its first `@`.
/// A result without a realm gets `@<realm>`; the realm part is upper-cased (Active
/// Directory realms are the upper-case DNS domain, UPN suffixes are usually lower case).
/// Service-style names (`/`), enterprise names (two `@`) and odd characters are refused, so
/// no client name can make the gateway ask for a ticket as `krbtgt/...` or another service.
pub fn impersonation_principal(
    template: &str,
    name: &str,
    realm: &str,
) -> Result<String, DelegateError> {
    let refuse = |why| DelegateError::Principal {
        name: name.to_owned(),
        why,
    };
    if name.is_empty() || !name.chars().all(|c| principal_char(c) || c == '@') {
        return Err(refuse(
            "only letters, digits, '.', '_', '-' and '@' are mapped",
        ));
    }
    let local = name.split_once('@').map_or(name, |(l, _)| l);
    let rendered = template
        .replace(USER_PLACEHOLDER, name)
        .replace(LOCAL_PLACEHOLDER, local);
    let (user, user_realm) = match rendered.split_once('@') {
        Some((u, r)) => (u.to_owned(), r.to_ascii_uppercase()),
        None => (rendered.clone(), realm.to_ascii_uppercase()),
    };
    if user.is_empty() || user_realm.is_empty() {
        return Err(refuse("empty user or realm"));
    }
    if user_realm.contains('@') {
        return Err(refuse(
            "the name already has a domain: use {local} in user_principal",
        ));
    }
    Ok(format!("{user}@{user_realm}"))
}

/// Letters, digits, `.`, `_`, `-`: what a user or realm name may hold here.
fn principal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// One realm of the generated `krb5.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Krb5Realm {
    /// Upper-case realm name.
    pub realm: String,
    /// `host:port` of each KDC (TCP).
    pub kdcs: Vec<String>,
}

/// The `krb5.conf` MIT Kerberos reads: no DNS for KDCs, realms or host names (the inventory
/// names them), TCP only (tickets with PACs exceed UDP sizes), forwardable tickets (S4U2Proxy
/// needs a forwardable evidence ticket), and the gateway keytab as the client keytab.
pub fn render_krb5_conf(realms: &[Krb5Realm], client_keytab: &Path) -> String {
    let mut s = String::from("[libdefaults]\n");
    if let Some(first) = realms.first() {
        s.push_str(&format!("\tdefault_realm = {}\n", first.realm));
    }
    s.push_str(concat!(
        "\tdns_lookup_kdc = false\n",
        "\tdns_lookup_realm = false\n",
        "\tdns_canonicalize_hostname = false\n",
        "\trdns = false\n",
        "\tforwardable = true\n",
        "\tudp_preference_limit = 1\n",
    ));
    s.push_str(&format!(
        "\tdefault_ccache_name = {CCACHE}\n\tdefault_client_keytab_name = FILE:{}\n",
        client_keytab.display()
    ));
    s.push_str("[realms]\n");
    for r in realms {
        s.push_str(&format!("\t{} = {{\n", r.realm));
        for kdc in &r.kdcs {
            s.push_str(&format!("\t\tkdc = {kdc}\n"));
        }
        s.push_str("\t}\n");
    }
    s
}

/// Decodes the vault secret of a keytab (base64 of the file; whitespace ignored) and checks
/// its format version.
pub fn decode_keytab(entry: &str, secret: &str) -> Result<Zeroizing<Vec<u8>>, DelegateError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(secret.chars().filter(|c| !c.is_whitespace()).collect());
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| DelegateError::Keytab {
                entry: entry.to_owned(),
                why: "not base64",
            })?,
    );
    if bytes.len() <= KEYTAB_MAGIC.len() || !bytes.starts_with(&KEYTAB_MAGIC) {
        return Err(DelegateError::Keytab {
            entry: entry.to_owned(),
            why: "not a version 0x502 keytab file",
        });
    }
    Ok(bytes)
}

/// One keytab file holding the entries of all `keytabs` (each already checked by
/// [`decode_keytab`]): the format is the version header followed by length-prefixed entries,
/// so merging is the header plus every file's entries.
pub fn merge_keytabs<'a>(keytabs: impl IntoIterator<Item = &'a [u8]>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(KEYTAB_MAGIC.to_vec());
    for k in keytabs {
        out.extend_from_slice(k.get(KEYTAB_MAGIC.len()..).unwrap_or_default());
    }
    out
}

/// The installed environment: the private directory and the keytabs written into it.
#[derive(Debug)]
struct State {
    dir: PathBuf,
    keytabs: Mutex<BTreeMap<String, Zeroizing<Vec<u8>>>>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Removes the private directory when the gateway stops.
#[derive(Debug)]
pub struct EnvGuard {
    dir: PathBuf,
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Prepares the delegate environment for `realms` (those of the inventory's `delegate`
/// hosts): a private (0700) directory with the generated `krb5.conf`, then `KRB5_CONFIG`,
/// `KRB5_CLIENT_KTNAME` and `KRB5CCNAME` set for this process. Call once, before the tokio
/// runtime or any other thread starts (setting the environment races with readers). `None`
/// when `realms` is empty.
pub fn install(realms: &[Krb5Realm]) -> Result<Option<EnvGuard>, DelegateError> {
    if realms.is_empty() {
        return Ok(None);
    }
    if STATE.get().is_some() {
        return Err(DelegateError::AlreadyInstalled);
    }
    let dir = std::env::temp_dir().join(format!(
        "hopgate-krb5-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DelegateError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(io_err(&dir))?;
    let guard = EnvGuard { dir: dir.clone() };
    let keytab = dir.join("gateway.keytab");
    let conf = dir.join("krb5.conf");
    write_private(&conf, render_krb5_conf(realms, &keytab).as_bytes())?;
    // An empty keytab until the first delegate host is used: MIT then reports a missing key
    // instead of reading some other keytab.
    write_private(&keytab, &KEYTAB_MAGIC)?;
    std::env::set_var("KRB5_CONFIG", &conf);
    std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", keytab.display()));
    std::env::set_var("KRB5CCNAME", CCACHE);
    STATE
        .set(State {
            dir,
            keytabs: Mutex::new(BTreeMap::new()),
        })
        .map_err(|_| DelegateError::AlreadyInstalled)?;
    tracing::info!(realms = realms.len(), dir = %guard.dir.display(),
        "Delegate Kerberos environment prepared");
    Ok(Some(guard))
}

/// Whether [`install`] ran in this process.
pub fn is_installed() -> bool {
    STATE.get().is_some()
}

/// Makes the keytab of vault entry `entry` part of the gateway's client keytab; rewrites the
/// file (atomically, mode 0600) only when the entry is new or changed. Called each time a
/// `delegate` backend client is built, so a rotated keytab in the vault is picked up then.
pub fn register_keytab(entry: &str, keytab: &[u8]) -> Result<(), DelegateError> {
    let state = STATE.get().ok_or(DelegateError::NotPrepared)?;
    let mut keytabs = state
        .keytabs
        .lock()
        .map_err(|_| DelegateError::NotPrepared)?;
    if keytabs.get(entry).is_some_and(|k| k.as_slice() == keytab) {
        return Ok(());
    }
    keytabs.insert(entry.to_owned(), Zeroizing::new(keytab.to_vec()));
    let merged = merge_keytabs(keytabs.values().map(|k| k.as_slice()));
    let path = state.dir.join("gateway.keytab");
    let tmp = state.dir.join("gateway.keytab.new");
    write_private(&tmp, &merged)?;
    std::fs::rename(&tmp, &path).map_err(|source| DelegateError::Io { path, source })?;
    tracing::info!(entry, "Gateway keytab loaded for delegation");
    Ok(())
}

/// Writes `bytes` to a new file readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DelegateError> {
    let err = |source| DelegateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_realm_principals() {
        let m = |t: &str, n: &str| impersonation_principal(t, n, "gw.test");
        assert_eq!(m("{user}", "alice").unwrap(), "alice@GW.TEST");
        // A UPN that already names its domain is used as is (realm upper-cased).
        assert_eq!(
            m("{user}", "alice@corp.example").unwrap(),
            "alice@CORP.EXAMPLE"
        );
        assert_eq!(
            m("{local}@GW.TEST", "alice@hopgate.test").unwrap(),
            "alice@GW.TEST"
        );
        assert_eq!(m("{local}", "bob").unwrap(), "bob@GW.TEST");
        assert_eq!(m("adm-{local}", "bob@x.test").unwrap(), "adm-bob@GW.TEST");
        assert_eq!(m("{user}@GW.TEST", "carol").unwrap(), "carol@GW.TEST");
    }

    #[test]
    fn names_that_could_name_a_service_or_another_realm_are_refused() {
        for (t, n) in [
            ("{user}", "krbtgt/GW.TEST"),
            ("{user}", "HTTP/backend.gw.test"),
            ("{user}", "DOMAIN\\alice"),
            ("{user}", ""),
            ("{user}", "alice bob"),
            ("{user}", "@GW.TEST"),
            ("{user}", "alice@"),
            // A UPN with the template adding a realm: two '@'.
            ("{user}@GW.TEST", "alice@hopgate.test"),
        ] {
            let err = impersonation_principal(t, n, "GW.TEST").unwrap_err();
            assert_eq!(err.reason(), "client has no realm principal", "{t} {n}");
        }
    }

    #[test]
    fn krb5_conf_lists_every_realm_and_forces_tcp_without_dns() {
        let conf = render_krb5_conf(
            &[
                Krb5Realm {
                    realm: "GW.TEST".into(),
                    kdcs: vec!["127.0.0.1:60089".into(), "[::1]:88".into()],
                },
                Krb5Realm {
                    realm: "OTHER.TEST".into(),
                    kdcs: vec!["kdc.other.test:88".into()],
                },
            ],
            Path::new("/run/x/gateway.keytab"),
        );
        assert!(conf.contains("default_realm = GW.TEST"));
        assert!(conf.contains("udp_preference_limit = 1"));
        assert!(conf.contains("dns_lookup_kdc = false"));
        assert!(conf.contains("default_client_keytab_name = FILE:/run/x/gateway.keytab"));
        assert!(conf.contains("\tGW.TEST = {\n\t\tkdc = 127.0.0.1:60089\n\t\tkdc = [::1]:88\n\t}"));
        assert!(conf.contains("\tOTHER.TEST = {\n\t\tkdc = kdc.other.test:88\n\t}"));
    }

    #[test]
    fn keytabs_decode_check_and_merge() {
        let a = [0x05, 0x02, 0, 0, 0, 1, 0xAA];
        let b = [0x05, 0x02, 0, 0, 0, 1, 0xBB];
        let enc = base64::engine::general_purpose::STANDARD.encode(a);
        // Line breaks from `base64 -w 76` are fine.
        let wrapped = format!("{}\n{}", &enc[..4], &enc[4..]);
        assert_eq!(decode_keytab("gw", &wrapped).unwrap().as_slice(), a);
        let bad = decode_keytab("gw", "not base64!").unwrap_err();
        assert_eq!(bad.reason(), "gateway keytab in the vault is not usable");
        let not_keytab = base64::engine::general_purpose::STANDARD.encode(b"password");
        assert!(decode_keytab("gw", &not_keytab).is_err());
        let merged = merge_keytabs([a.as_slice(), b.as_slice()]);
        assert_eq!(
            merged.as_slice(),
            [0x05, 0x02, 0, 0, 0, 1, 0xAA, 0, 0, 0, 1, 0xBB]
        );
    }

    #[test]
    fn reasons_and_retry_hints() {
        let d = || "x".to_string();
        assert!(DelegateError::KdcUnreachable { detail: d() }.is_transient());
        assert!(!DelegateError::DelegationRefused { detail: d() }.is_transient());
        assert_eq!(
            DelegateError::DelegationRefused { detail: d() }.reason(),
            "kdc refused the delegation to this host"
        );
        assert_eq!(
            DelegateError::UnknownUser { detail: d() }.reason(),
            "kdc does not know the user"
        );
    }

    #[test]
    fn registering_a_keytab_needs_the_environment() {
        // Unit tests never install the process environment.
        assert!(matches!(
            register_keytab("gw", &[0x05, 0x02]),
            Err(DelegateError::NotPrepared)
        ));
    }
}
