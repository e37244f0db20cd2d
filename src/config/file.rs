//! The shape of `hopgate.toml`, exactly as written on disk.
//!
//! Every struct denies unknown keys so a typo is an error at start-up, not a silently
//! ignored setting. Nothing here is validated beyond what serde checks; `super::Config`
//! does the validation. This file holds no secrets by design: credentials are vault
//! references and keys are paths or environment variable names.

use std::path::PathBuf;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listener: ListenerFile,
    #[serde(default)]
    pub authn: AuthnFile,
    #[serde(default)]
    pub target: TargetFile,
    pub vault: VaultFile,
    pub audit: AuditFile,
    #[serde(default)]
    pub policy: PolicyFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub hosts: Vec<HostFile>,
    /// Connections to each host (per host and backend identity).
    #[serde(default)]
    pub backend: BackendFile,
    /// Absent: no admin API.
    pub admin: Option<AdminFile>,
}

/// `[backend]`: connection pools toward the hosts, per host and backend identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    /// Connections for short requests open at once (default 256).
    pub max_connections: Option<usize>,
    /// Idle connections for short requests kept (default 64).
    pub max_idle: Option<usize>,
    /// Connections for Receives (long polls) open at once, kept idle too (default 4096).
    pub max_long_polls: Option<usize>,
    /// Idle connections older than this are closed (default 100 s; below HTTP.sys's 120 s).
    pub idle_timeout_secs: Option<u64>,
}

/// `[admin]`: the admin API listener (plain HTTP, loopback only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// Loopback socket address. Default `127.0.0.1:9443`.
    pub listen: Option<String>,
    /// File holding the admin bearer token (at least 16 characters).
    pub token_file: PathBuf,
    /// Simultaneous admin connections. Default 64.
    pub max_connections: Option<usize>,
}

/// `[listener]`: the client-facing HTTPS endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    /// Socket address, e.g. `0.0.0.0:5986`.
    pub address: String,
    /// PEM certificate chain presented to clients.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA bundle; when set, client certificates signed by it are verified and accepted.
    pub client_ca: Option<PathBuf>,
    /// PEM certificate revocation list(s) for client certificates (needs `client_ca`);
    /// reloaded with the certificates on SIGHUP.
    pub crl: Option<PathBuf>,
    /// Lowest TLS version accepted: "1.2" (default) or "1.3". Older versions are never offered.
    pub min_tls_version: Option<String>,
    /// Plain-HTTP listener (e.g. `0.0.0.0:5985`, PowerShell's default), for Kerberos with
    /// WinRM message encryption only; needs `[authn.kerberos]`.
    pub http_address: Option<String>,
}

/// `[authn]`: how people prove who they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthnFile {
    /// Accept verified client certificates (needs `listener.client_ca`). Default true.
    pub client_certificates: Option<bool>,
    /// JWTs as `Bearer` or as the Basic password.
    pub jwt: Option<JwtFile>,
    /// Kerberos / Negotiate sign-in with the gateway's own service key.
    pub kerberos: Option<KerberosFile>,
}

/// `[authn.kerberos]`: the gateway accepts Kerberos service tickets for its own name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosFile {
    /// `HTTP/gw.example.com@EXAMPLE.COM`: the name clients ask their KDC a ticket for.
    pub service_principal: String,
    /// Keytab holding the service principal's keys (permissions 0600 or 0400).
    pub keytab_file: PathBuf,
    /// Largest clock difference accepted, seconds (default 300, as Windows).
    pub max_clock_skew_secs: Option<u64>,
    /// Groups of each person (`alice@EXAMPLE.COM = ["admins"]`): tickets' PACs are not read.
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[authn.jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    /// HS256, RS256 or ES256.
    pub algorithm: String,
    /// PEM public key (RS256/ES256) or a file holding the shared secret (HS256).
    pub key_file: PathBuf,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Clock leeway in seconds for exp/nbf. Default 30.
    pub leeway_secs: Option<u64>,
    /// Longest accepted token lifetime (`exp - iat`, and `exp - now`), seconds. Default
    /// 43200 (12 h).
    pub max_token_lifetime_secs: Option<u64>,
    /// Claim holding the user name. Default "sub".
    pub user_claim: Option<String>,
    /// Claim holding the group list. Default "groups".
    pub groups_claim: Option<String>,
    /// Claim naming the target host for plain `/wsman`. Default "dst".
    pub target_claim: Option<String>,
}

/// `[target]`: how `POST /wsman` (no host in the path) picks a host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// Inventory name used when neither the path nor the token names a host.
    pub default_host: Option<String>,
}

/// `[vault]`: where backend credentials live: the local encrypted file (`kind = "file"`,
/// the default) or a Vault / OpenBao KV v2 server (`kind = "kv2"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultFile {
    /// "file" (default) or "kv2".
    pub kind: Option<String>,
    /// file: the encrypted vault file.
    pub path: Option<PathBuf>,
    /// file: a file holding the 32-byte key (hex or base64).
    pub key_file: Option<PathBuf>,
    /// file: name of an environment variable holding the key.
    pub key_env: Option<String>,
    /// kv2: server URL, `https://vault.example.com:8200` (http only to loopback).
    pub address: Option<String>,
    /// kv2: the KV v2 mount. Default "secret".
    pub mount: Option<String>,
    /// kv2: folder under the mount holding the entries. Default: the mount's root.
    pub prefix: Option<String>,
    /// kv2: environment variable holding the Vault token.
    pub token_env: Option<String>,
    /// kv2: file holding the Vault token.
    pub token_file: Option<PathBuf>,
    /// kv2: PEM CA bundle for the server's certificate (required with https).
    pub ca_file: Option<PathBuf>,
    /// kv2: seconds a read secret is reused. Default 30; 0 disables the cache.
    pub cache_ttl_secs: Option<u64>,
    /// kv2: seconds allowed per request to the server. Default 10.
    pub timeout_secs: Option<u64>,
    /// kv2: Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// kv2: AppRole login instead of a token.
    pub approle: Option<AppRoleFile>,
}

/// `[vault.approle]`: AppRole login; role id and secret id come from files or variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleFile {
    /// The AppRole auth mount. Default "approle".
    pub mount: Option<String>,
    pub role_id_file: Option<PathBuf>,
    pub role_id_env: Option<String>,
    pub secret_id_file: Option<PathBuf>,
    pub secret_id_env: Option<String>,
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Directory of the JSON-lines audit log.
    pub dir: PathBuf,
    /// Sync the log at most every this many milliseconds instead of after every batch.
    pub fsync_interval_ms: Option<u64>,
    /// Failed sign-ins after the first per source, reason and claimed user are counted
    /// and written as one `authn.failures` line every this many seconds. Default 10.
    pub failures_interval_secs: Option<u64>,
    /// What happens to new sessions when the log cannot be written: "refuse" (default) or
    /// "continue".
    pub on_failure: Option<String>,
    /// When to rotate audit.jsonl: "never" (default), "daily", "size" or "daily+size".
    pub rotate: Option<String>,
    /// Size rotation threshold in MiB (with "size"). Default 100.
    pub max_file_mb: Option<u64>,
    /// Vault entry holding the Ed25519 key that signs checkpoints (`hopgate audit keygen`).
    pub signing_key: Option<String>,
    /// Also print every audit line on stdout (JSON lines for container log collectors).
    /// Default false.
    pub stdout: Option<bool>,
    /// Also send every audit line to a syslog receiver.
    pub syslog: Option<SyslogFile>,
}

/// `[audit.syslog]`: RFC 5424 messages over TCP (RFC 6587 octet counting) or TLS (RFC 5425).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogFile {
    /// The receiver, `host:port` (a DNS name or an IP address; `[v6]:port`).
    pub address: String,
    /// Use TLS (needs `ca_file`). Default false.
    #[serde(default)]
    pub tls: bool,
    /// PEM CA bundle the receiver's certificate must chain to (TLS only).
    pub ca_file: Option<PathBuf>,
    /// Name expected in the receiver's certificate; default the host of `address` (TLS only).
    pub server_name: Option<String>,
    /// Syslog facility name (`authpriv`, `local0` … `local7`, …). Default "authpriv".
    pub facility: Option<String>,
    /// APP-NAME of the messages. Default "hopgate".
    pub app_name: Option<String>,
}

/// `[policy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Directory of role files (`*.toml`). Default `policies`.
    pub dir: Option<PathBuf>,
}

/// `[limits]`: resource bounds per client.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request body accepted, in bytes. Default 1 MiB.
    pub max_body_bytes: Option<usize>,
    /// Simultaneous client connections. Default 1024.
    pub max_connections: Option<usize>,
    /// Seconds allowed for the TLS handshake. Default 10.
    pub handshake_timeout_secs: Option<u64>,
    /// Seconds allowed for a request's headers. Default 10.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a connection may stay open with no request in flight. Default 120.
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a request may take end to end, beyond the WS-Man OperationTimeout. Default 30.
    pub request_timeout_secs: Option<u64>,
    /// Seconds an idle shell is remembered. Default 3600.
    pub shell_idle_secs: Option<u64>,
    /// Most attributes on one element of a request envelope. Default 64.
    pub max_xml_attributes: Option<usize>,
    /// Longest attribute value of a request envelope, in bytes. Default 4096.
    pub max_xml_attribute_bytes: Option<usize>,
    /// Connections open at once from one source address. Default 64.
    pub max_connections_per_source: Option<usize>,
    /// TLS handshakes in progress at once from one source address. Default 8.
    pub max_handshakes_per_source: Option<usize>,
    /// Seconds a new connection may stay silent before its first byte. Default 3.
    pub first_byte_timeout_secs: Option<u64>,
    /// Requests per second one source may send that fail authentication (burst: twice
    /// that); past it, its requests are answered 429 before authentication. Default 20.
    pub unauthenticated_per_source_per_sec: Option<u64>,
    /// Shells one person may hold at once. Default 10.
    pub max_shells_per_user: Option<usize>,
    /// Shells open at once through one host account (host and vaulted user), for everyone
    /// mapped to it. Default 25, under Windows' MaxShellsPerUser of 30.
    pub max_shells_per_credential: Option<usize>,
    /// Bytes one person's shells may hold for inspection at once (PSRP pipelines not yet
    /// whole). Default 32 MiB.
    pub max_held_bytes_per_user: Option<usize>,
    /// Seconds an authenticated request waits for a lagging audit writer before it is
    /// refused. Default 5.
    pub audit_wait_secs: Option<u64>,
    /// Most input the gateway holds back per command to judge it (an unfinished line
    /// of an interpreter's stdin), in bytes. Default 8 MiB.
    pub max_held_input_bytes: Option<usize>,
}

/// One `[[hosts]]` entry: a Windows host the gateway may reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// Name clients use (`/wsman/<name>`, token target claim).
    pub name: String,
    /// DNS name or IP address of the host.
    pub address: String,
    pub port: Option<u16>,
    /// "http" or "https".
    pub scheme: String,
    /// Backend authentication: "ntlm", "basic", "kerberos", "negotiate", "credssp" or
    /// "delegate".
    pub auth: String,
    /// KDC for "kerberos"/"negotiate": `tcp://host:port` (TCP only).
    pub kdc: Option<String>,
    /// Realm appended to a vaulted user name that has none (`user` → `user@REALM`).
    pub realm: Option<String>,
    /// Service principal of the host; default `HTTP/<tls_server_name or address>`.
    pub spn: Option<String>,
    /// Auth "delegate": the principal impersonated for a person, `{user}` (the authenticated
    /// name) or `{local}` (its part before `@`); default "{user}".
    pub user_principal: Option<String>,
    /// Auth "negotiate": log in with NTLM when Kerberos cannot start (KDC unreachable, no
    /// such service principal). Default false.
    pub ntlm_fallback: Option<bool>,
    /// Vault entry name; may contain `{user}` for per-person accounts.
    pub credential: String,
    /// PEM CA bundle to verify the host's certificate (https).
    pub ca_file: Option<PathBuf>,
    /// Accept any host certificate (logs a warning at start-up).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Name expected in the host's certificate when it differs from `address`.
    pub tls_server_name: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Seconds a shell on this host may stay unused before the gateway closes it (and
    /// deletes it on the host); default `limits.shell_idle_secs`.
    pub idle_timeout_secs: Option<u64>,
}
