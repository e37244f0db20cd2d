//! Every audit event the request path emits, built here and nowhere else: the inspector's
//! [`Fact`]s, shell starts and ends, refusals before a shell, failed logins to hosts.
//!
//! Commands are redacted here (through [`AuditHandle::redact`]), before an event exists;
//! output is scrubbed of the session's known secrets by [`AuditHandle::emit_outputs`].

use crate::audit::{Event, EventKind};
use crate::authn::Principal;
use crate::listener::ConnInfo;
use crate::session::ShellIdentity;
use crate::shell::{ActivityCounts, Fact};

use super::Gateway;

// === impl Gateway ===

impl Gateway {
    /// Records what the inspector found in a request or answer on `shell`.
    pub(super) fn record(&self, shell: &ShellIdentity, conn: &ConnInfo, facts: Vec<Fact>) {
        let session = shell.session_id.as_str();
        let mut outputs = Vec::new();
        for fact in facts {
            let kind = match fact {
                Fact::Allowed {
                    command_id,
                    command,
                    role,
                } => EventKind::CommandAllowed {
                    principal: shell.owner.clone(),
                    host: shell.host.clone(),
                    shell_id: shell.shell_id.clone(),
                    command_id,
                    command: self.audit.redact(session, &command),
                    rule: role,
                },
                Fact::Denied {
                    command, reason, ..
                } => {
                    let (command, reason) = self.audit.redact_denial(session, &command, &reason);
                    EventKind::CommandDenied {
                        principal: shell.owner.clone(),
                        host: shell.host.clone(),
                        shell_id: shell.shell_id.clone(),
                        command,
                        reason,
                    }
                }
                Fact::Refused { action, reason } => EventKind::AccessDenied {
                    principal: shell.owner.clone(),
                    source_ip: conn.peer.ip().to_string(),
                    host: Some(shell.host.clone()),
                    shell_id: Some(shell.shell_id.clone()),
                    action,
                    reason,
                },
                Fact::Output(o) => {
                    outputs.push(EventKind::Output {
                        shell_id: shell.shell_id.clone(),
                        command_id: o.command_id,
                        stdout: o.stdout,
                        stderr: o.stderr,
                        truncated: o.truncated,
                        bytes: o.bytes,
                        exit_code: o.exit_code,
                        records: o.records,
                        pipeline_state: o.pipeline_state,
                    });
                    continue;
                }
            };
            self.audit.emit(Event {
                session_id: Some(session.to_string()),
                kind,
            });
        }
        if !outputs.is_empty() {
            self.audit.emit_outputs(session, outputs);
        }
    }

    /// A request refused before it reached a shell's commands: an unknown or ungranted
    /// host, someone else's shell, an action or Create the gateway does not relay.
    pub(super) fn access_denied(
        &self,
        principal: &Principal,
        conn: &ConnInfo,
        host: Option<&str>,
        shell_id: Option<&str>,
        action: &str,
        reason: &str,
    ) {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::AccessDenied {
                principal: principal.name.clone(),
                source_ip: conn.peer.ip().to_string(),
                host: host.map(str::to_string),
                shell_id: shell_id.map(str::to_string),
                action: action.to_string(),
                reason: reason.to_string(),
            },
        });
    }

    /// The facts of a refused Create (no shell exists yet).
    pub(super) fn record_create(
        &self,
        principal: &Principal,
        conn: &ConnInfo,
        host: &str,
        facts: Vec<Fact>,
    ) {
        for fact in facts {
            if let Fact::Refused { action, reason } = fact {
                self.access_denied(principal, conn, Some(host), None, &action, &reason);
            }
        }
    }

    pub(super) fn session_start(
        &self,
        shell: &ShellIdentity,
        principal: &Principal,
        conn: &ConnInfo,
        backend_auth: String,
    ) {
        self.audit.emit(Event {
            session_id: Some(shell.session_id.clone()),
            kind: EventKind::SessionStart {
                principal: principal.name.clone(),
                auth_method: principal.method.as_str().to_string(),
                source_ip: conn.peer.ip().to_string(),
                host: shell.host.clone(),
                shell_id: shell.shell_id.clone(),
                shell_kind: shell.kind.as_str().to_string(),
                backend_user: shell.backend_user.clone(),
                backend_auth,
            },
        });
    }

    pub(super) fn session_end(&self, shell: &ShellIdentity, counts: ActivityCounts, reason: &str) {
        self.audit.emit(Event {
            session_id: Some(shell.session_id.clone()),
            kind: EventKind::SessionEnd {
                principal: shell.owner.clone(),
                host: shell.host.clone(),
                shell_id: shell.shell_id.clone(),
                reason: reason.to_string(),
                duration_ms: u64::try_from(shell.age().as_millis()).unwrap_or(u64::MAX),
                commands_allowed: counts.commands_allowed,
                commands_denied: counts.commands_denied,
                output_bytes: counts.output_bytes,
            },
        });
    }

    /// The gateway's own login to `host` failed.
    pub(super) fn backend_auth_failure(&self, host: &str, backend_user: &str, reason: &str) {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::BackendAuth {
                host: host.to_string(),
                backend_user: backend_user.to_string(),
                outcome: "failure".into(),
                reason: reason.to_string(),
            },
        });
    }

    pub(super) fn authn_failure(&self, conn: &ConnInfo, reason: &str) {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::AuthnFailure {
                source_ip: conn.peer.ip().to_string(),
                reason: reason.to_string(),
                claimed_user: None,
            },
        });
    }
}
