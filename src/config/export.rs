//! `[audit] stdout` and `[audit.syslog]`: where copies of the audit lines go, validated.
//!
//! Every error names its key. The syslog facility is resolved to its RFC 5424 code here so
//! the exporter never sees a name.

use std::path::{Path, PathBuf};

use rustls_pki_types::ServerName;

use super::file::{AuditFile, SyslogFile};
use super::{existing_file, ConfigError};

const DEFAULT_FACILITY: &str = "authpriv";
const DEFAULT_APP_NAME: &str = "hopgate";

/// RFC 5424 §6.2.1 facility names and codes (table 1), as syslog.conf spells them.
const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Audit export destinations besides the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditExportConfig {
    /// Print every line on stdout.
    pub stdout: bool,
    pub syslog: Option<SyslogConfig>,
}

/// A syslog receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// `host:port`, as configured (resolved at each connection attempt).
    pub address: String,
    /// Set when the connection uses TLS.
    pub tls: Option<SyslogTlsConfig>,
    /// RFC 5424 facility code (0–23).
    pub facility: u8,
    /// APP-NAME: 1–48 printable US-ASCII characters.
    pub app_name: String,
}

/// TLS settings of a syslog receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTlsConfig {
    /// PEM CA bundle the receiver's certificate must chain to.
    pub ca_file: PathBuf,
    /// Name (DNS name or IP address) the certificate must be valid for.
    pub server_name: String,
}

/// Validates the export keys of `[audit]`.
pub(super) fn validate(
    audit: &AuditFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<AuditExportConfig, ConfigError> {
    Ok(AuditExportConfig {
        stdout: audit.stdout.unwrap_or(false),
        syslog: audit
            .syslog
            .as_ref()
            .map(|s| validate_syslog(s, resolve))
            .transpose()?,
    })
}

fn validate_syslog(
    s: &SyslogFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SyslogConfig, ConfigError> {
    let host = address_host(&s.address).ok_or_else(|| {
        ConfigError::invalid(
            "audit.syslog.address",
            format!(
                "`{}` must be host:port, e.g. \"siem.example.com:6514\" or \"[::1]:514\"",
                s.address
            ),
        )
    })?;
    let tls = if s.tls {
        let ca_file = s.ca_file.as_deref().ok_or_else(|| {
            ConfigError::invalid(
                "audit.syslog.ca_file",
                "tls = true needs the CA bundle that signed the receiver's certificate",
            )
        })?;
        let server_name = s.server_name.clone().unwrap_or(host);
        if ServerName::try_from(server_name.as_str()).is_err() {
            return Err(ConfigError::invalid(
                "audit.syslog.server_name",
                format!("`{server_name}` is not a DNS name or IP address"),
            ));
        }
        Some(SyslogTlsConfig {
            ca_file: existing_file("audit.syslog.ca_file", &resolve(ca_file))?,
            server_name,
        })
    } else {
        for (key, set) in [
            ("audit.syslog.ca_file", s.ca_file.is_some()),
            ("audit.syslog.server_name", s.server_name.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    key,
                    "only used with `tls = true` (messages would go out unencrypted)",
                ));
            }
        }
        None
    };
    let name = s.facility.as_deref().unwrap_or(DEFAULT_FACILITY);
    let facility = FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            ConfigError::invalid(
                "audit.syslog.facility",
                format!("`{name}` is not a syslog facility (authpriv, auth, daemon, local0 … local7, …)"),
            )
        })?;
    let app_name = s.app_name.as_deref().unwrap_or(DEFAULT_APP_NAME);
    if app_name.is_empty() || app_name.len() > 48 || !app_name.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ConfigError::invalid(
            "audit.syslog.app_name",
            format!("`{app_name}` must be 1 to 48 printable ASCII characters without spaces"),
        ));
    }
    Ok(SyslogConfig {
        address: s.address.clone(),
        tls,
        facility,
        app_name: app_name.to_owned(),
    })
}

/// The host of `host:port` (without brackets for IPv6); `None` when malformed.
fn address_host(address: &str) -> Option<String> {
    let (host, port) = if let Some(v6) = address.strip_prefix('[') {
        let (h, rest) = v6.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (h, rest.strip_prefix(':')?)
    } else {
        let (h, p) = address.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'));
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    (host_ok && port_ok).then(|| host.to_owned())
}
