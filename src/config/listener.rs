//! `[listener]`, `[limits]` and `[admin]`: what the listeners bind, present and allow.
//!
//! Owns their validated types and defaults. File existence is checked here; whether the
//! files make a usable TLS configuration is checked when the listener loads them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{AdminFile, LimitsFile, ListenerFile};
use super::{existing_file, positive, secs, ConfigError};

/// Default body cap: real envelopes are bounded by MaxEnvelopeSize (150 KiB by default,
/// clients may raise it to 500 KiB); 1 MiB leaves room for base64 and multipart framing.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const DEFAULT_HANDSHAKE_SECS: u64 = 10;
const DEFAULT_HEADER_SECS: u64 = 10;
/// HTTP.sys closes idle keep-alive connections after 120 s; so do we.
const DEFAULT_IDLE_SECS: u64 = 120;
const DEFAULT_REQUEST_SECS: u64 = 30;
const DEFAULT_SHELL_IDLE_SECS: u64 = 3600;
const DEFAULT_CONNECTIONS_PER_SOURCE: usize = 64;
const DEFAULT_HANDSHAKES_PER_SOURCE: usize = 8;
/// A client sends its ClientHello as soon as it connects; 3 s is generous.
const DEFAULT_FIRST_BYTE_SECS: u64 = 3;
const DEFAULT_UNAUTHENTICATED_PER_SEC: u64 = 20;
const DEFAULT_SHELLS_PER_USER: usize = 10;
/// Windows' default MaxShellsPerUser is 30: keep a few for the account's own use.
const DEFAULT_SHELLS_PER_CREDENTIAL: usize = 25;
const DEFAULT_AUDIT_WAIT_SECS: u64 = 5;
/// Two pipelines at the defragmenter's 16 MiB message limit.
const DEFAULT_HELD_BYTES_PER_USER: usize = 32 * 1024 * 1024;
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9443";
const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;

/// The admin API listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// A loopback address (the API is plain HTTP).
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    /// Simultaneous admin connections.
    pub max_connections: usize,
}

/// Lowest TLS protocol version the listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinTls {
    Tls12,
    Tls13,
}

/// The client-facing listener: where it binds and the TLS files it loads (and reloads on
/// SIGHUP).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    /// PEM certificate revocation lists for client certificates (needs `client_ca`).
    pub crl: Option<PathBuf>,
    pub min_tls: MinTls,
    /// Plain-HTTP address: Kerberos with message encryption only.
    pub http_address: Option<SocketAddr>,
}

/// Resource bounds per client connection and request.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers, from their first byte.
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub shell_idle: Duration,
    /// Envelope attribute caps (`wsman::Limits`), issue #14.
    pub max_xml_attributes: usize,
    pub max_xml_attribute_bytes: usize,
    /// Per source address (issue #14): connections open, handshakes in progress.
    pub max_connections_per_source: usize,
    pub max_handshakes_per_source: usize,
    /// How long a new connection may send nothing before the handshake starts.
    pub first_byte_timeout: Duration,
    /// Failed authentications per second per source (burst twice that).
    pub unauthenticated_per_source_per_sec: u64,
    pub max_shells_per_user: usize,
    pub max_shells_per_credential: usize,
    /// Bytes held for inspection across one person's shells.
    pub max_held_bytes_per_user: usize,
    /// How long an authenticated request waits for the audit writer to catch up.
    pub audit_wait: Duration,
    /// Most input held back per command to judge it (issue #13).
    pub max_held_input_bytes: usize,
}

pub(super) fn validate_listener(
    l: &ListenerFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ListenerConfig, ConfigError> {
    let address: SocketAddr = l.address.parse().map_err(|_| {
        ConfigError::invalid(
            "listener.address",
            format!(
                "`{}` is not a socket address like 127.0.0.1:5986",
                l.address
            ),
        )
    })?;
    let min_tls = match l.min_tls_version.as_deref() {
        None | Some("1.2") => MinTls::Tls12,
        Some("1.3") => MinTls::Tls13,
        Some(other) => {
            return Err(ConfigError::invalid(
                "listener.min_tls_version",
                format!("`{other}` is not supported; use \"1.2\" or \"1.3\""),
            ))
        }
    };
    let optional = |key: &str, p: &Option<PathBuf>| {
        p.as_deref()
            .map(|p| existing_file(key, &resolve(p)))
            .transpose()
    };
    let client_ca = optional("listener.client_ca", &l.client_ca)?;
    let crl = optional("listener.crl", &l.crl)?;
    if crl.is_some() && client_ca.is_none() {
        return Err(ConfigError::invalid(
            "listener.crl",
            "a revocation list needs `listener.client_ca` (it applies to client certificates)",
        ));
    }
    let http_address = l
        .http_address
        .as_deref()
        .map(|a| {
            a.parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    "listener.http_address",
                    format!("`{a}` is not a socket address like 0.0.0.0:5985"),
                )
            })
        })
        .transpose()?;
    Ok(ListenerConfig {
        address,
        http_address,
        cert: existing_file("listener.cert", &resolve(&l.cert))?,
        key: existing_file("listener.key", &resolve(&l.key))?,
        client_ca,
        crl,
        min_tls,
    })
}

pub(super) fn validate_limits(l: &LimitsFile) -> Result<LimitsConfig, ConfigError> {
    Ok(LimitsConfig {
        max_body_bytes: positive("limits.max_body_bytes", l.max_body_bytes, DEFAULT_MAX_BODY)?,
        max_connections: positive(
            "limits.max_connections",
            l.max_connections,
            DEFAULT_MAX_CONNECTIONS,
        )?,
        handshake_timeout: secs(
            "limits.handshake_timeout_secs",
            l.handshake_timeout_secs,
            DEFAULT_HANDSHAKE_SECS,
        )?,
        header_timeout: secs(
            "limits.header_timeout_secs",
            l.header_timeout_secs,
            DEFAULT_HEADER_SECS,
        )?,
        idle_timeout: secs(
            "limits.idle_timeout_secs",
            l.idle_timeout_secs,
            DEFAULT_IDLE_SECS,
        )?,
        request_timeout: secs(
            "limits.request_timeout_secs",
            l.request_timeout_secs,
            DEFAULT_REQUEST_SECS,
        )?,
        shell_idle: secs(
            "limits.shell_idle_secs",
            l.shell_idle_secs,
            DEFAULT_SHELL_IDLE_SECS,
        )?,
        max_xml_attributes: positive(
            "limits.max_xml_attributes",
            l.max_xml_attributes,
            crate::wsman::Limits::default().max_attributes,
        )?,
        max_xml_attribute_bytes: positive(
            "limits.max_xml_attribute_bytes",
            l.max_xml_attribute_bytes,
            crate::wsman::Limits::default().max_attribute_bytes,
        )?,
        max_connections_per_source: positive(
            "limits.max_connections_per_source",
            l.max_connections_per_source,
            DEFAULT_CONNECTIONS_PER_SOURCE,
        )?,
        max_handshakes_per_source: positive(
            "limits.max_handshakes_per_source",
            l.max_handshakes_per_source,
            DEFAULT_HANDSHAKES_PER_SOURCE,
        )?,
        first_byte_timeout: secs(
            "limits.first_byte_timeout_secs",
            l.first_byte_timeout_secs,
            DEFAULT_FIRST_BYTE_SECS,
        )?,
        unauthenticated_per_source_per_sec: positive(
            "limits.unauthenticated_per_source_per_sec",
            l.unauthenticated_per_source_per_sec
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            usize::try_from(DEFAULT_UNAUTHENTICATED_PER_SEC).unwrap_or(20),
        )
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))?,
        max_shells_per_user: positive(
            "limits.max_shells_per_user",
            l.max_shells_per_user,
            DEFAULT_SHELLS_PER_USER,
        )?,
        max_shells_per_credential: positive(
            "limits.max_shells_per_credential",
            l.max_shells_per_credential,
            DEFAULT_SHELLS_PER_CREDENTIAL,
        )?,
        max_held_bytes_per_user: positive(
            "limits.max_held_bytes_per_user",
            l.max_held_bytes_per_user,
            DEFAULT_HELD_BYTES_PER_USER,
        )?,
        audit_wait: secs(
            "limits.audit_wait_secs",
            l.audit_wait_secs,
            DEFAULT_AUDIT_WAIT_SECS,
        )?,
        max_held_input_bytes: positive(
            "limits.max_held_input_bytes",
            l.max_held_input_bytes,
            crate::shell::DEFAULT_MAX_HELD_INPUT,
        )?,
    })
}

pub(super) fn validate_admin(
    a: &AdminFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<AdminConfig, ConfigError> {
    let text = a.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let listen: SocketAddr = text.parse().map_err(|_| {
        ConfigError::invalid("admin.listen", format!("`{text}` is not a socket address"))
    })?;
    if !listen.ip().is_loopback() {
        return Err(ConfigError::invalid(
            "admin.listen",
            "the admin API is plain HTTP: use a loopback address (127.0.0.1 or [::1])",
        ));
    }
    Ok(AdminConfig {
        listen,
        token_file: existing_file("admin.token_file", &resolve(&a.token_file))?,
        max_connections: positive(
            "admin.max_connections",
            a.max_connections,
            DEFAULT_ADMIN_MAX_CONNECTIONS,
        )?,
    })
}
