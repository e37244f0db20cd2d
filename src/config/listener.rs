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
    Ok(ListenerConfig {
        address,
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
