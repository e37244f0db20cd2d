//! Settings of the KV v2 store (`[vault] kind = "kv2"`), filled by the lead from the config.
//!
//! Owns [`Kv2Settings`], the server address, the login method and where the login secrets
//! come from ([`SecretSource`]). It holds file paths and variable names, never a token,
//! role id or secret id; those are read when they are needed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::vault::error::VaultError;

/// Default KV v2 mount.
pub const DEFAULT_MOUNT: &str = "secret";
/// Default AppRole auth mount.
pub const DEFAULT_APPROLE_MOUNT: &str = "approle";
/// Default lifetime of a cached secret.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default limit for one request to the server (connect, TLS, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Vault / OpenBao server holding credentials in a KV v2 secrets engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv2Settings {
    /// Where the server listens.
    pub address: Kv2Address,
    /// The KV v2 mount (`secret`), without slashes at either end.
    pub mount: String,
    /// Folder under the mount holding the entries (`hopgate` → `secret/hopgate/<name>`);
    /// empty for the mount's root.
    pub prefix: String,
    /// How the gateway logs in.
    pub auth: Kv2Auth,
    /// PEM CA bundle the server's certificate must chain to (required with https).
    pub ca_file: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// How long a read secret is reused; zero disables the cache.
    pub cache_ttl: Duration,
    /// Limit for one request to the server.
    pub timeout: Duration,
}

/// The server's address, parsed from `https://vault.example.com:8200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv2Address {
    /// https (true) or plain http (loopback only).
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// How the gateway obtains its Vault token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kv2Auth {
    /// A token read from a file or variable (re-read from a file after a 403, so a rotated
    /// token file is picked up).
    Token(SecretSource),
    /// AppRole: `POST /v1/auth/<mount>/login` with a role id and secret id, repeated before
    /// the token's lease ends.
    AppRole {
        /// The AppRole auth mount (`approle`).
        mount: String,
        /// Where the role id comes from.
        role_id: SecretSource,
        /// Where the secret id comes from (read at every login, so it may be rotated).
        secret_id: SecretSource,
    },
}

/// Where a login secret comes from: never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file holding the value (surrounding whitespace ignored).
    File(PathBuf),
    /// An environment variable holding the value.
    Env(String),
}

// === impl Kv2Address ===

impl Kv2Address {
    /// Parses `http(s)://host[:port]` (an optional trailing `/`; no path, query or user).
    /// Plain http is refused unless the host is a loopback address, because the token and
    /// the secrets would cross the network in clear. The port defaults to 8200.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https:// (or http:// for a loopback address)");
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty()
            || rest.contains(['/', '@', '?', '#'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("must be scheme://host[:port] without user, path or query");
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or("unclosed [ in an IPv6 address")?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| "invalid IPv6 address")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?),
            };
            (addr.to_owned(), port)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err("the host is empty");
        }
        let port = match port {
            None => 8200,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("the port must be 1-65535")?,
        };
        let address = Self { tls, host, port };
        if !tls && !address.is_loopback() {
            return Err(
                "plain http is only allowed to a loopback address (127.0.0.1, ::1, localhost); \
                 use https with ca_file",
            );
        }
        Ok(address)
    }

    /// Whether the host is a loopback address (or `localhost`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// `host:port` as used in the `Host` header (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Kv2Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

// === impl SecretSource ===

impl SecretSource {
    /// Reads the value; `what` names it in errors (`vault token`).
    pub fn load(&self, what: &str) -> Result<Secret, VaultError> {
        self.load_with_env(what, |name| std::env::var_os(name))
    }

    /// Like [`load`](Self::load) with an injectable environment (tests must not mutate the
    /// process environment).
    pub fn load_with_env(
        &self,
        what: &str,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Secret, VaultError> {
        let text = match self {
            Self::File(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(
                |source| VaultError::Io {
                    op: "read",
                    path: path.clone(),
                    source,
                },
            )?),
            Self::Env(name) => Zeroizing::new(
                env(name)
                    .ok_or_else(|| VaultError::KeySource {
                        why: format!("{what}: environment variable {name} is not set"),
                    })?
                    .into_string()
                    .map_err(|_| VaultError::KeySource {
                        why: format!("{what}: environment variable {name} is not unicode"),
                    })?,
            ),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(VaultError::KeySource {
                why: format!("{what} from {self} is empty"),
            });
        }
        Ok(Secret::new(trimmed.to_owned()))
    }
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(n) => write!(f, "environment variable {n}"),
        }
    }
}

/// Checks a mount, prefix or namespace: `/`-separated segments of `A-Z a-z 0-9 . _ -`,
/// none of them `.` or `..` (so nothing can climb to another mount). Surrounding slashes
/// are removed; `allow_empty` admits the empty path (a prefix at the mount's root).
pub fn normalize_path(text: &str, allow_empty: bool) -> Result<String, &'static str> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return if allow_empty {
            Ok(String::new())
        } else {
            Err("must not be empty")
        };
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("must not contain empty, `.` or `..` segments");
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("only letters, digits, `.`, `_`, `-` and `/` between segments");
        }
    }
    Ok(trimmed.to_owned())
}
