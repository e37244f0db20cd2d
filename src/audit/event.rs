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
    /// A shell was closed (or refused at creation, or expired).
    #[serde(rename = "session.end")]
    SessionEnd {
        principal: String,
        host: String,
        shell_id: String,
        reason: String,
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
pub const EVENT_NAMES: [&str; 14] = [
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
            Self::AnsibleModule { .. } => "ansible.module",
            Self::AnsibleResult { .. } => "ansible.result",
        }
    }
}
