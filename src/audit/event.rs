//! Typed audit events. Pure: no clock, no I/O (the writer stamps `ts` and `seq`).

use serde::Serialize;

/// One thing that happened, with the audit session it belongs to (a shell's lifetime).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The audit session (one per shell); absent for events outside a shell, such as a
    /// failed login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with an `event` tag (`session.start`, `authn.failure`, …).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum EventKind {
    /// A shell was created on a host for a principal.
    #[serde(rename = "session.start")]
    SessionStart {
        principal: String,
        auth_method: String,
        source_ip: String,
        host: String,
        shell_id: String,
        shell_kind: String,
        backend_user: String,
        backend_auth: String,
    },
    /// A PowerShell session's client connection changed: disconnected, reconnected by the
    /// same client, or connected by a new one (MS-PSRP 3.1.4.11). The shell lives on.
    #[serde(rename = "session.connection")]
    SessionConnection {
        principal: String,
        source_ip: String,
        host: String,
        shell_id: String,
        /// `disconnect`, `reconnect` or `connect`.
        step: String,
    },
    /// A shell was closed: by its client, an administrator, idle expiry (`idle`: the
    /// client stopped using it or vanished), eviction (`evicted`) or the gateway stopping
    /// (`shutdown`). Exactly one per `session.start`.
    #[serde(rename = "session.end")]
    SessionEnd {
        principal: String,
        host: String,
        shell_id: String,
        reason: String,
        /// Whether the host confirmed the gateway's own Delete (absent when the client
        /// deleted the shell itself).
        #[serde(skip_serializing_if = "Option::is_none")]
        host_closed: Option<bool>,
        duration_ms: u64,
        /// Commands (or pipelines) policy let through in this shell.
        commands_allowed: u64,
        /// Commands (or pipelines) policy refused in this shell.
        commands_denied: u64,
        /// Bytes of output the host sent (cmd stream bytes; PSRP record text).
        output_bytes: u64,
    },
    /// A request could not be tied to a person.
    #[serde(rename = "authn.failure")]
    AuthnFailure {
        source_ip: String,
        reason: String,
        /// The user name claimed, when one was given (never the secret).
        #[serde(skip_serializing_if = "Option::is_none")]
        claimed_user: Option<String>,
    },
    /// Failed sign-ins of one source, reason and claimed user counted over an interval
    /// after the first one (written as `authn.failure`), so a flood costs one line per
    /// interval (`audit::noise`). Source `*`: keys past the per-interval cap.
    #[serde(rename = "authn.failures")]
    AuthnFailures {
        source_ip: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        claimed_user: Option<String>,
        /// Failures not written one by one.
        count: u64,
        /// Length of the interval they were counted in.
        seconds: u64,
    },
    /// A command was let through to the host.
    #[serde(rename = "command.allowed")]
    CommandAllowed {
        principal: String,
        host: String,
        shell_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        command: Vec<String>,
        /// The code `command` carried in another form, as policy decoded it (redacted
        /// like `command`); absent when there was none.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        decoded: Vec<Decoded>,
        rule: String,
    },
    /// A command was refused; it never reached the host.
    #[serde(rename = "command.denied")]
    CommandDenied {
        principal: String,
        host: String,
        shell_id: String,
        command: Vec<String>,
        /// As for `command.allowed`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        decoded: Vec<Decoded>,
        reason: String,
    },
    /// A request was refused before reaching a host (unknown host, someone else's shell,
    /// unsupported action).
    #[serde(rename = "access.denied")]
    AccessDenied {
        principal: String,
        source_ip: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        shell_id: Option<String>,
        action: String,
        reason: String,
    },
    /// The gateway's own login to a host failed.
    #[serde(rename = "backend.auth")]
    BackendAuth {
        host: String,
        backend_user: String,
        outcome: String,
        reason: String,
    },
    /// What a command printed, decoded from one Receive response: cmd stdout/stderr, or a
    /// PSRP pipeline's output objects (`stdout`), error records (`stderr`) and other
    /// records.
    #[serde(rename = "output")]
    Output {
        shell_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        /// Decoded stdout (lossy UTF-8), absent when the response carried none.
        #[serde(skip_serializing_if = "Option::is_none")]
        stdout: Option<String>,
        /// Decoded stderr (lossy UTF-8), absent when the response carried none.
        #[serde(skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
        /// True when the text was cut to the per-event cap; `bytes` says how much there was.
        truncated: bool,
        /// Bytes of stream data in the response, before any cut.
        bytes: u64,
        /// The command's exit code, when the response says it is done.
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i64>,
        /// PSRP warning, verbose, debug and information records, in order.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        records: Vec<OutputRecord>,
        /// PSRP: the pipeline's final state (`Completed`, `Failed`, `Stopped`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pipeline_state: Option<String>,
        /// On a command's last event: bytes of its whole output over every response, so
        /// output cut from the record (per event, or past the per-command budget) is still
        /// counted.
        #[serde(skip_serializing_if = "Option::is_none")]
        total_bytes: Option<u64>,
        /// On a command's last event: SHA-256 (hex) of those bytes, in the order the host
        /// sent them (cmd: the stdout and stderr data; PSRP: the records' text).
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// An administrator ended a shell through the admin API.
    #[serde(rename = "admin.terminate")]
    AdminTerminate {
        principal: String,
        host: String,
        shell_id: String,
        /// Who asked (the admin API has one token, so this names the interface).
        by: String,
        /// Whether the host confirmed the shell was closed.
        host_closed: bool,
    },
    /// The policy set was reloaded (SIGHUP), or a reload was refused and the old set kept.
    #[serde(rename = "config.reload")]
    ConfigReload {
        /// What was reloaded (`policies`).
        what: String,
        /// `applied` or `refused`.
        outcome: String,
        /// Roles in force after the reload.
        roles: u64,
        /// SHA-256 of the set applied (as in `gateway.start`); absent when refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        policy_sha256: Option<String>,
        /// Why a reload was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The listener's certificate, key, client CA and CRLs were reloaded (SIGHUP), or a
    /// reload was refused and the configuration in force kept. Names what is in force after.
    #[serde(rename = "tls.reload")]
    TlsReload {
        /// `applied` or `refused`.
        outcome: String,
        /// Subject of the server certificate in force.
        subject: String,
        /// Its notAfter (RFC 3339).
        not_after: String,
        /// Whether client certificates are verified.
        client_ca: bool,
        /// Revoked certificates listed in the CRLs in force (absent: no CRL configured).
        #[serde(skip_serializing_if = "Option::is_none")]
        crl_revoked: Option<u64>,
        /// Why a reload was refused.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Events were lost before this line (queue full or writer failure): the chain itself
    /// is intact, but it is not complete.
    #[serde(rename = "audit.gap")]
    AuditGap { dropped: u64 },

    // --- issue #12: input, the gateway's own lifecycle, unreadable requests ---
    /// Data a client sent to a running command: cmd stdin, or PSRP pipeline input
    /// (PIPELINE_INPUT objects, as text). Redacted like commands, cut to the per-event cap.
    #[serde(rename = "input")]
    Input {
        shell_id: String,
        /// The command (cmd) or pipeline (PSRP) it was sent to.
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        /// `stdin` (cmd) or `pipeline` (PSRP pipeline input).
        stream: String,
        /// The input as text (lossy UTF-8; PSRP objects as their CLIXML text), redacted.
        text: String,
        /// True when `text` was cut to the per-event cap.
        truncated: bool,
        /// Bytes of input in the request (cmd: stream bytes; PSRP: the objects' text),
        /// before any cut.
        bytes: u64,
        /// True when the client said this is the end of the input.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        end: bool,
    },
    /// The gateway started serving.
    #[serde(rename = "gateway.start")]
    GatewayStart {
        version: String,
        /// SHA-256 (hex) of the configuration file's text.
        config_sha256: String,
        /// SHA-256 (hex) of the policy set in force (file names and contents, in load order).
        policy_sha256: String,
        /// Roles in force.
        roles: u64,
        /// Hosts in the inventory.
        hosts: u64,
    },
    /// The gateway stopped: its listener drained and the shells it still held closed.
    #[serde(rename = "gateway.stop")]
    GatewayStop {
        /// Shells closed (each with its own `session.end reason=shutdown`).
        sessions_closed: u64,
        uptime_ms: u64,
    },
    /// A request from an authenticated person that the gateway could not read (unreadable
    /// or too large body, unknown mustUnderstand header, no target host or ShellId). Only
    /// the kind: never the body.
    #[serde(rename = "request.rejected")]
    RequestRejected {
        principal: String,
        source_ip: String,
        /// `malformed`, `too_large`, `must_understand`, `no_target`.
        kind: String,
        /// The WS-Man action, when the envelope was read that far; `none` otherwise.
        action: String,
    },
    // --- Ansible (issue #13) ---
    /// An Ansible module the gateway identified in a payload by its trusted code, and what
    /// policy decided for it.
    #[serde(rename = "ansible.module")]
    AnsibleModule {
        principal: String,
        host: String,
        shell_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        /// Fully qualified (`ansible.windows.win_service`).
        module: String,
        /// Its arguments, `no_log` and password-like values redacted.
        args: serde_json::Value,
        check_mode: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        become_user: Option<String>,
        /// `allowed` or `denied`.
        decision: &'static str,
    },
    /// What an allowed Ansible module reported, read from its output.
    #[serde(rename = "ansible.result")]
    AnsibleResult {
        shell_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        module: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        changed: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
    },
}

/// Code a command carried in another form (`-EncodedCommand`, `Invoke-Expression`,
/// `cmd /c`, `powershell -c`, interpreter stdin), as the policy engine decoded it to
/// judge it. Redacted like the raw command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// Where it came from (`EncodedCommand`, `Invoke-Expression`, `cmd /c`, ...).
    pub via: String,
    /// The decoded text, redacted, cut to the policy engine's cap.
    pub text: String,
    /// True when `text` was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A PSRP record other than output objects and errors, as text (read by the inspector).
pub use crate::shell::OutputRecord;

/// Every event name, in [`EventKind::index`] order (for per-event counters).
pub const EVENT_NAMES: [&str; 20] = [
    "session.start",
    "session.end",
    "authn.failure",
    "command.allowed",
    "command.denied",
    "access.denied",
    "backend.auth",
    "output",
    "admin.terminate",
    "config.reload",
    "tls.reload",
    "audit.gap",
    "input",
    "gateway.start",
    "gateway.stop",
    "request.rejected",
    "session.connection",
    "authn.failures",
    "ansible.module",
    "ansible.result",
];

impl EventKind {
    /// Position of this event's name in [`EVENT_NAMES`].
    pub fn index(&self) -> usize {
        let name = self.name();
        EVENT_NAMES.iter().position(|n| *n == name).unwrap_or(0)
    }

    /// The event's name as written in the `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SessionStart { .. } => "session.start",
            Self::SessionEnd { .. } => "session.end",
            Self::SessionConnection { .. } => "session.connection",
            Self::AuthnFailure { .. } => "authn.failure",
            Self::CommandAllowed { .. } => "command.allowed",
            Self::CommandDenied { .. } => "command.denied",
            Self::AccessDenied { .. } => "access.denied",
            Self::BackendAuth { .. } => "backend.auth",
            Self::Output { .. } => "output",
            Self::AdminTerminate { .. } => "admin.terminate",
            Self::ConfigReload { .. } => "config.reload",
            Self::TlsReload { .. } => "tls.reload",
            Self::AuditGap { .. } => "audit.gap",
            Self::Input { .. } => "input",
            Self::GatewayStart { .. } => "gateway.start",
            Self::GatewayStop { .. } => "gateway.stop",
            Self::RequestRejected { .. } => "request.rejected",
            Self::AuthnFailures { .. } => "authn.failures",
            Self::AnsibleModule { .. } => "ansible.module",
            Self::AnsibleResult { .. } => "ansible.result",
        }
    }
}
