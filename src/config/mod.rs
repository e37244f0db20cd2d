//! Configuration: `file` mirrors `hopgate.toml`; this module validates it into [`Config`].
//!
//! Validation happens once, before any socket is bound, and every error names the key it is
//! about (`hosts[2].scheme`, `listener.address`). Relative paths are resolved against the
//! directory of the configuration file so a config and its certificates can move together.
//! All defaults live here.

mod export;
pub mod file;
mod listener;
#[cfg(test)]
mod tests;
mod vault;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use self::export::{AuditExportConfig, SyslogConfig, SyslogTlsConfig};
use self::file::{FileConfig, HostFile, JwtFile};
pub use self::listener::{AdminConfig, LimitsConfig, ListenerConfig, MinTls};

const DEFAULT_JWT_LEEWAY: u64 = 30;
/// `authn.jwt.max_token_lifetime_secs` default: 12 h (issue #14).
const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 12 * 3600;

/// A configuration problem, naming the key it is about.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listener: ListenerConfig,
    pub authn: AuthnConfig,
    pub default_host: Option<String>,
    pub vault: VaultConfig,
    pub audit_dir: PathBuf,
    /// None: sync after every batch; Some(d): at most every `d`.
    pub audit_fsync_interval: Option<Duration>,
    /// How often counted sign-in failures are written (`authn.failures`).
    pub audit_failures_interval: Duration,
    /// New sessions start even when the audit log cannot be written (`on_failure =
    /// "continue"`); false (the default) refuses them: fail closed.
    pub audit_fail_open: bool,
    /// Copies of the audit lines: stdout, syslog.
    pub audit_export: AuditExportConfig,
    /// Rotate `audit.jsonl` when the UTC date changes.
    pub audit_rotate_daily: bool,
    /// Rotate `audit.jsonl` once it holds this many bytes.
    pub audit_max_file_bytes: Option<u64>,
    /// Vault entry of the checkpoint signing key; None: checkpoints are unsigned.
    pub audit_signing_key: Option<String>,
    pub policy_dir: PathBuf,
    pub limits: LimitsConfig,
    pub backend: BackendPoolConfig,
    pub inventory: Inventory,
    /// The admin API, when configured.
    pub admin: Option<AdminConfig>,
    /// SHA-256 (hex) of the configuration text, for the record (`gateway.start`).
    pub source_sha256: String,
}

#[derive(Debug, Clone)]
pub struct AuthnConfig {
    /// Verified client certificates map to principals.
    pub client_certificates: bool,
    pub jwt: Option<JwtConfig>,
    pub kerberos: Option<KerberosSignInConfig>,
}

/// `[backend]`, validated: connection pools toward each host and backend identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendPoolConfig {
    pub max_connections: usize,
    pub max_idle: usize,
    pub max_long_polls: usize,
    pub idle_timeout: Duration,
}

/// `[authn.kerberos]`, validated.
#[derive(Debug, Clone)]
pub struct KerberosSignInConfig {
    /// `HTTP/gw.example.com` (no realm).
    pub service: String,
    pub realm: String,
    pub keytab_file: PathBuf,
    pub max_skew: Duration,
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// JWT signature algorithm accepted from clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    pub key_file: PathBuf,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_secs: u64,
    pub max_token_lifetime: Duration,
    pub user_claim: String,
    pub groups_claim: String,
    pub target_claim: String,
}

/// Where the vault key comes from. Never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultKey {
    File(PathBuf),
    Env(String),
}

/// Where backend credentials live (`[vault]`).
#[derive(Debug, Clone)]
pub enum VaultConfig {
    /// The local encrypted file and its key (`kind = "file"`, the default).
    File { path: PathBuf, key: VaultKey },
    /// A Vault / OpenBao KV v2 server (`kind = "kv2"`).
    Kv2(crate::vault::Kv2Settings),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// How the gateway logs in to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAuth {
    Ntlm,
    Basic,
    /// Raw Kerberos under the `Kerberos` HTTP scheme.
    Kerberos,
    /// SPNEGO (Kerberos only) under the `Negotiate` HTTP scheme.
    Negotiate,
    /// CredSSP (NTLM inside TLS, then the password is delegated to the host); https only.
    CredSsp,
    /// Kerberos constrained delegation with protocol transition: the gateway's keytab (vault)
    /// gets a ticket for the host as the person (S4U2Self + S4U2Proxy), SPNEGO toward the
    /// host. Needs a binary built with the `delegate` feature.
    Delegate,
}

/// Kerberos settings of a host (auth "kerberos", "negotiate" or "delegate").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKerberos {
    /// `tcp://host:port`.
    pub kdc: String,
    /// Realm for vaulted user names without one (upper case).
    pub realm: Option<String>,
    /// Service principal override (`HTTP/fqdn`).
    pub spn: Option<String>,
    /// Auth "delegate" only: template of the impersonated principal (`{user}`, `{local}`);
    /// `None` for the other methods.
    pub user_principal: Option<String>,
    /// Auth "negotiate" only: fall back to NTLM when Kerberos cannot start.
    pub ntlm_fallback: bool,
}

/// One inventory entry, validated.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub scheme: Scheme,
    pub auth: HostAuth,
    pub credential: String,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub tls_server_name: Option<String>,
    pub labels: Vec<String>,
    /// Set exactly when `auth` is Kerberos, Negotiate or Delegate.
    pub kerberos: Option<HostKerberos>,
    /// How long a shell on this host may stay unused; None: `limits.shell_idle`.
    pub idle_timeout: Option<Duration>,
}

/// The hosts a client may name. Lookups are by exact name only: the gateway never
/// connects to an address a client supplies.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    hosts: Vec<Host>,
    by_name: HashMap<String, usize>,
}

// === impl Inventory ===

impl Inventory {
    /// The host registered under `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.by_name.get(name).and_then(|&i| self.hosts.get(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

// === impl Config ===

impl Config {
    /// How long a shell on `host` may stay unused: the host's `idle_timeout_secs`, else
    /// `limits.shell_idle_secs`.
    pub fn shell_idle(&self, host: &Host) -> Duration {
        host.idle_timeout.unwrap_or(self.limits.shell_idle)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::from_toml(&text, &base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; relative paths resolve against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let mut config = Self::validate(file, base)?;
        config.source_sha256 = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        };
        Ok(config)
    }

    fn validate(file: FileConfig, base: &Path) -> Result<Self, ConfigError> {
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let listener = listener::validate_listener(&file.listener, &resolve)?;

        let client_certificates = match file.authn.client_certificates {
            Some(true) if listener.client_ca.is_none() => {
                return Err(ConfigError::invalid(
                    "authn.client_certificates",
                    "client certificates need `listener.client_ca` to verify them against",
                ))
            }
            Some(v) => v,
            None => listener.client_ca.is_some(),
        };
        let jwt = file
            .authn
            .jwt
            .as_ref()
            .map(|j| validate_jwt(j, &resolve))
            .transpose()?;
        let kerberos = file
            .authn
            .kerberos
            .as_ref()
            .map(|k| validate_authn_kerberos(k, &resolve))
            .transpose()?;
        if !client_certificates && jwt.is_none() && kerberos.is_none() {
            return Err(ConfigError::invalid(
                "authn",
                "no client authentication is enabled: set `listener.client_ca`, `[authn.jwt]` or `[authn.kerberos]`",
            ));
        }
        if listener.http_address.is_some() && kerberos.is_none() {
            return Err(ConfigError::invalid(
                "listener.http_address",
                "plain HTTP carries only Kerberos with message encryption: configure `[authn.kerberos]`",
            ));
        }

        let vault = vault::validate_vault(&file.vault, &resolve)?;

        let inventory = validate_hosts(&file.hosts, &resolve)?;
        if let Some(d) = &file.target.default_host {
            if inventory.get(d).is_none() {
                return Err(ConfigError::invalid(
                    "target.default_host",
                    format!("`{d}` is not a host in the inventory"),
                ));
            }
        }

        let limits = listener::validate_limits(&file.limits)?;

        let admin = file
            .admin
            .as_ref()
            .map(|a| listener::validate_admin(a, &resolve))
            .transpose()?;

        let (audit_rotate_daily, audit_max_file_bytes) = validate_rotation(&file.audit)?;
        if let Some(k) = &file.audit.signing_key {
            if crate::vault::validate_name(k).is_err() {
                return Err(ConfigError::invalid(
                    "audit.signing_key",
                    "must be a vault entry name (letters, digits and . _ @ -)",
                ));
            }
        }
        Ok(Self {
            source_sha256: String::new(),
            admin,
            listener,
            authn: AuthnConfig {
                client_certificates,
                jwt,
                kerberos,
            },
            default_host: file.target.default_host.clone(),
            vault,
            audit_dir: resolve(&file.audit.dir),
            audit_fsync_interval: match file.audit.fsync_interval_ms {
                None => None,
                Some(0) => {
                    return Err(ConfigError::invalid(
                        "audit.fsync_interval_ms",
                        "must be greater than zero (leave it out to sync after every batch)",
                    ))
                }
                Some(ms) => Some(Duration::from_millis(ms)),
            },
            audit_failures_interval: secs(
                "audit.failures_interval_secs",
                file.audit.failures_interval_secs,
                10,
            )?,
            audit_fail_open: match file.audit.on_failure.as_deref() {
                None | Some("refuse") => false,
                Some("continue") => true,
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "audit.on_failure",
                        format!("`{other}` is not \"refuse\" or \"continue\""),
                    ))
                }
            },
            audit_export: export::validate(&file.audit, &resolve)?,
            audit_rotate_daily,
            audit_max_file_bytes,
            audit_signing_key: file.audit.signing_key.clone(),
            policy_dir: resolve(file.policy.dir.as_deref().unwrap_or(Path::new("policies"))),
            limits,
            backend: BackendPoolConfig {
                max_connections: positive(
                    "backend.max_connections",
                    file.backend.max_connections,
                    256,
                )?,
                max_idle: file.backend.max_idle.unwrap_or(64),
                max_long_polls: positive(
                    "backend.max_long_polls",
                    file.backend.max_long_polls,
                    4096,
                )?,
                idle_timeout: Duration::from_secs(match file.backend.idle_timeout_secs {
                    Some(0) => {
                        return Err(ConfigError::invalid(
                            "backend.idle_timeout_secs",
                            "must be greater than zero",
                        ))
                    }
                    Some(s) => s,
                    None => 100,
                }),
            },
            inventory,
        })
    }
}

/// Default size threshold for `rotate = "size"`, in MiB.
const DEFAULT_MAX_FILE_MB: u64 = 100;

/// `[audit] rotate` and `max_file_mb`: (daily, max bytes).
fn validate_rotation(a: &file::AuditFile) -> Result<(bool, Option<u64>), ConfigError> {
    let (daily, size) = match a.rotate.as_deref().unwrap_or("never") {
        "never" => (false, false),
        "daily" => (true, false),
        "size" => (false, true),
        "daily+size" | "size+daily" => (true, true),
        _ => {
            return Err(ConfigError::invalid(
                "audit.rotate",
                "must be \"never\", \"daily\", \"size\" or \"daily+size\"",
            ))
        }
    };
    let mb = match (size, a.max_file_mb) {
        (false, None) => return Ok((daily, None)),
        (false, Some(_)) => {
            return Err(ConfigError::invalid(
                "audit.max_file_mb",
                "only applies with rotate = \"size\" or \"daily+size\"",
            ))
        }
        (true, None) => DEFAULT_MAX_FILE_MB,
        (true, Some(mb)) if (1..=1 << 20).contains(&mb) => mb,
        (true, Some(_)) => {
            return Err(ConfigError::invalid(
                "audit.max_file_mb",
                "must be between 1 and 1048576",
            ))
        }
    };
    Ok((daily, Some(mb << 20)))
}

fn existing_file(key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("file {} does not exist", path.display()),
        ))
    }
}

fn positive(key: &str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(0) => Err(ConfigError::invalid(key, "must be greater than zero")),
        Some(n) => Ok(n),
    }
}

fn secs(key: &str, v: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(0) => Err(ConfigError::invalid(key, "must be greater than zero")),
        Some(n) => Ok(Duration::from_secs(n)),
    }
}

fn validate_authn_kerberos(
    k: &file::KerberosFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<KerberosSignInConfig, ConfigError> {
    let (service, realm) = k
        .service_principal
        .rsplit_once('@')
        .filter(|(s, r)| {
            !r.is_empty() && s.split('/').count() == 2 && s.split('/').all(|c| !c.is_empty())
        })
        .ok_or_else(|| {
            ConfigError::invalid(
                "authn.kerberos.service_principal",
                "must be SERVICE/host@REALM, e.g. HTTP/gw.example.com@EXAMPLE.COM",
            )
        })?;
    let max_skew = match k.max_clock_skew_secs {
        None => Duration::from_secs(300),
        Some(0) => {
            return Err(ConfigError::invalid(
                "authn.kerberos.max_clock_skew_secs",
                "must be greater than zero",
            ))
        }
        Some(s) => Duration::from_secs(s),
    };
    Ok(KerberosSignInConfig {
        service: service.to_string(),
        realm: realm.to_string(),
        keytab_file: existing_file("authn.kerberos.keytab_file", &resolve(&k.keytab_file))?,
        max_skew,
        groups: k.groups.clone(),
    })
}

fn validate_jwt(j: &JwtFile, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<JwtConfig, ConfigError> {
    let algorithm = match j.algorithm.to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::Hs256,
        "RS256" => JwtAlgorithm::Rs256,
        "ES256" => JwtAlgorithm::Es256,
        other => {
            return Err(ConfigError::invalid(
                "authn.jwt.algorithm",
                format!("`{other}` is not supported; use HS256, RS256 or ES256"),
            ))
        }
    };
    let claim = |key: &str, v: &Option<String>, default: &str| -> Result<String, ConfigError> {
        match v {
            Some(s) if s.is_empty() => Err(ConfigError::invalid(key, "must not be empty")),
            Some(s) => Ok(s.clone()),
            None => Ok(default.to_string()),
        }
    };
    Ok(JwtConfig {
        algorithm,
        key_file: existing_file("authn.jwt.key_file", &resolve(&j.key_file))?,
        issuer: j.issuer.clone(),
        audience: j.audience.clone(),
        leeway_secs: j.leeway_secs.unwrap_or(DEFAULT_JWT_LEEWAY),
        max_token_lifetime: secs(
            "authn.jwt.max_token_lifetime_secs",
            j.max_token_lifetime_secs,
            DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        )?,
        user_claim: claim("authn.jwt.user_claim", &j.user_claim, "sub")?,
        groups_claim: claim("authn.jwt.groups_claim", &j.groups_claim, "groups")?,
        target_claim: claim("authn.jwt.target_claim", &j.target_claim, "dst")?,
    })
}

/// Host names appear in URL paths and audit records: keep them to a safe alphabet.
fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A credential reference may use `{user}` and nothing else in braces.
fn valid_credential_ref(r: &str) -> bool {
    if r.is_empty() {
        return false;
    }
    let stripped = r.replace("{user}", "");
    !stripped.contains('{') && !stripped.contains('}')
}

fn validate_hosts(
    hosts: &[HostFile],
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Inventory, ConfigError> {
    let mut inv = Inventory::default();
    for (i, h) in hosts.iter().enumerate() {
        let key = |field: &str| format!("hosts[{i}].{field}");
        if !valid_host_name(&h.name) {
            return Err(ConfigError::invalid(
                key("name"),
                format!("`{}` must be letters, digits, '-', '_' or '.'", h.name),
            ));
        }
        if inv.by_name.contains_key(&h.name) {
            return Err(ConfigError::invalid(
                key("name"),
                format!("`{}` appears twice in the inventory", h.name),
            ));
        }
        if h.address.trim().is_empty() || h.address.contains('/') || h.address.contains('@') {
            return Err(ConfigError::invalid(
                key("address"),
                "must be a host name or IP address, without scheme, path or user",
            ));
        }
        let scheme = match h.scheme.as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(ConfigError::invalid(
                    key("scheme"),
                    format!("`{other}` must be \"http\" or \"https\""),
                ))
            }
        };
        let auth = match h.auth.as_str() {
            "ntlm" => HostAuth::Ntlm,
            "basic" => HostAuth::Basic,
            "kerberos" => HostAuth::Kerberos,
            "negotiate" => HostAuth::Negotiate,
            "credssp" => HostAuth::CredSsp,
            "delegate" if cfg!(feature = "delegate") => HostAuth::Delegate,
            "delegate" => {
                return Err(ConfigError::invalid(
                    key("auth"),
                    "\"delegate\" is not available: this hopgate binary was built without the \
                     `delegate` feature (build with `cargo build --release --features delegate`, \
                     which needs libkrb5-dev and libclang-dev)",
                ))
            }
            other => {
                return Err(ConfigError::invalid(
                    key("auth"),
                    format!(
                        "`{other}` is not a supported backend method (ntlm, basic, kerberos, negotiate, credssp, delegate)"
                    ),
                ))
            }
        };
        let kerberos = validate_kerberos(h, auth, &key)?;
        if auth == HostAuth::Basic && scheme == Scheme::Http {
            return Err(ConfigError::invalid(
                key("auth"),
                "basic sends the password in clear: it is only allowed with scheme \"https\"",
            ));
        }
        if auth == HostAuth::CredSsp && scheme == Scheme::Http {
            return Err(ConfigError::invalid(
                key("auth"),
                "credssp hands the password to the host: it is only allowed with scheme \"https\"",
            ));
        }
        if auth == HostAuth::Delegate && h.credential.contains("{user}") {
            return Err(ConfigError::invalid(
                key("credential"),
                "with auth \"delegate\" this names the vault entry of the gateway's keytab; \
                 `{user}` is not allowed (the person is mapped by `user_principal`)",
            ));
        }
        if !valid_credential_ref(&h.credential) {
            return Err(ConfigError::invalid(
                key("credential"),
                "must be a vault entry name; `{user}` is the only placeholder",
            ));
        }
        if h.insecure_skip_verify && h.ca_file.is_some() {
            return Err(ConfigError::invalid(
                key("insecure_skip_verify"),
                "conflicts with ca_file: choose one",
            ));
        }
        if scheme == Scheme::Http && (h.insecure_skip_verify || h.ca_file.is_some()) {
            return Err(ConfigError::invalid(
                key("scheme"),
                "TLS verification settings need scheme \"https\"",
            ));
        }
        let ca_file = h
            .ca_file
            .as_deref()
            .map(|p| existing_file(&key("ca_file"), &resolve(p)))
            .transpose()?;
        let idle_timeout = match h.idle_timeout_secs {
            Some(0) => {
                return Err(ConfigError::invalid(
                    key("idle_timeout_secs"),
                    "must not be 0",
                ))
            }
            other => other.map(Duration::from_secs),
        };
        let port = match h.port {
            Some(0) => return Err(ConfigError::invalid(key("port"), "must not be 0")),
            Some(p) => p,
            None if scheme == Scheme::Https => 5986,
            None => 5985,
        };
        inv.by_name.insert(h.name.clone(), inv.hosts.len());
        inv.hosts.push(Host {
            name: h.name.clone(),
            address: h.address.clone(),
            port,
            scheme,
            auth,
            credential: h.credential.clone(),
            ca_file,
            insecure_skip_verify: h.insecure_skip_verify,
            tls_server_name: h.tls_server_name.clone(),
            labels: h.labels.clone(),
            kerberos,
            idle_timeout,
        });
    }
    Ok(inv)
}

/// Kerberos settings: required with auth "kerberos"/"negotiate", refused with the others so a
/// stray `kdc` never suggests Kerberos is in use when it is not.
fn validate_kerberos(
    h: &HostFile,
    auth: HostAuth,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<HostKerberos>, ConfigError> {
    if auth != HostAuth::Delegate && h.user_principal.is_some() {
        return Err(ConfigError::invalid(
            key("user_principal"),
            "only used with auth \"delegate\"",
        ));
    }
    if auth != HostAuth::Negotiate && h.ntlm_fallback.is_some() {
        return Err(ConfigError::invalid(
            key("ntlm_fallback"),
            "only used with auth \"negotiate\"",
        ));
    }
    if !matches!(
        auth,
        HostAuth::Kerberos | HostAuth::Negotiate | HostAuth::Delegate
    ) {
        for (field, value) in [("kdc", &h.kdc), ("realm", &h.realm), ("spn", &h.spn)] {
            if value.is_some() {
                return Err(ConfigError::invalid(
                    key(field),
                    "only used with auth \"kerberos\", \"negotiate\" or \"delegate\"",
                ));
            }
        }
        return Ok(None);
    }
    let kdc = h.kdc.as_deref().ok_or_else(|| {
        ConfigError::invalid(
            key("kdc"),
            "auth kerberos/negotiate/delegate needs the KDC, e.g. \"tcp://dc1.example.com:88\"",
        )
    })?;
    let kdc = valid_kdc(kdc).ok_or_else(|| {
        ConfigError::invalid(
            key("kdc"),
            format!("`{kdc}` must be tcp://host[:port] (TCP only; no udp, http or path)"),
        )
    })?;
    let realm = match h.realm.as_deref() {
        None => None,
        Some(r)
            if !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
        {
            Some(r.to_ascii_uppercase())
        }
        Some(r) => {
            return Err(ConfigError::invalid(
                key("realm"),
                format!("`{r}` must be a realm name such as EXAMPLE.COM"),
            ))
        }
    };
    let spn = match h.spn.as_deref() {
        None => None,
        Some(spn) => {
            let ok = spn.split_once('/').is_some_and(|(svc, host)| {
                !svc.is_empty()
                    && !host.is_empty()
                    && !host.contains('/')
                    && !spn.chars().any(|c| c.is_whitespace() || c.is_control())
            });
            if !ok {
                return Err(ConfigError::invalid(
                    key("spn"),
                    format!("`{spn}` must look like HTTP/host.example.com"),
                ));
            }
            Some(spn.to_owned())
        }
    };
    let user_principal = if auth == HostAuth::Delegate {
        if realm.is_none() {
            return Err(ConfigError::invalid(
                key("realm"),
                "auth \"delegate\" needs the realm of the host and of the gateway's principal",
            ));
        }
        let template = h.user_principal.as_deref().unwrap_or("{user}");
        validate_principal_template(template).map_err(|why| {
            ConfigError::invalid(key("user_principal"), format!("`{template}` {why}"))
        })?;
        Some(template.to_owned())
    } else {
        None
    };
    Ok(Some(HostKerberos {
        kdc,
        realm,
        spn,
        user_principal,
        ntlm_fallback: h.ntlm_fallback.unwrap_or(false),
    }))
}

/// Checks a `user_principal` template: `{user}` or `{local}` at least once, no other
/// braces, and only characters a principal may hold (no `/`: never a service principal).
fn validate_principal_template(template: &str) -> Result<(), &'static str> {
    if !template.contains("{user}") && !template.contains("{local}") {
        return Err("must contain {user} or {local}");
    }
    let rest = template.replace("{user}", "").replace("{local}", "");
    if rest.contains(['{', '}']) {
        return Err("uses a placeholder other than {user} and {local}");
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("may only add letters, digits, '.', '_', '-' and '@' around the placeholders");
    }
    Ok(())
}

/// Normalises `tcp://host[:port]` (port defaults to 88); `None` when malformed.
fn valid_kdc(value: &str) -> Option<String> {
    let rest = value.strip_prefix("tcp://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty()
        || rest.contains(['/', '@', '?', '#'])
        || rest.chars().any(char::is_whitespace)
    {
        return None;
    }
    // host, host:port, [v6], [v6]:port
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{addr}]"), port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => 88,
    };
    Some(format!("tcp://{host}:{port}"))
}
