//! Every audit event the request path emits, built here and nowhere else: the inspector's
//! [`Fact`]s, shell starts and ends, refusals before a shell, failed logins to hosts.
//!
//! Commands are redacted here (through [`AuditHandle::redact`]), before an event exists;
//! output is scrubbed of the session's known secrets by [`AuditHandle::emit_outputs`].

use crate::audit::event::Decoded;
use crate::audit::redact::REDACTED;
use crate::audit::{Event, EventKind};
use crate::authn::Principal;
use crate::listener::ConnInfo;
use crate::policy::DecodedCode;
use crate::session::ShellIdentity;
use crate::shell::{ActivityCounts, Fact};

use super::Gateway;

/// The `via` of code decoded from `-EncodedCommand` (policy's label).
const ENCODED_COMMAND: &str = "EncodedCommand";

/// `-EncodedCommand`'s form of a script: base64 of its UTF-16LE text.
fn encode_command(script: &str) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

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
                    decoded,
                    role,
                } => {
                    let mut command = self.audit.redact(session, &command);
                    let decoded =
                        self.redact_decoded(session, decoded, &mut command, &mut String::new());
                    EventKind::CommandAllowed {
                        principal: shell.owner.clone(),
                        host: shell.host.clone(),
                        shell_id: shell.shell_id.clone(),
                        command_id,
                        command,
                        decoded,
                        rule: role,
                    }
                }
                Fact::Denied {
                    command,
                    decoded,
                    reason,
                    ..
                } => {
                    let (mut command, mut reason) =
                        self.audit.redact_denial(session, &command, &reason);
                    let decoded = self.redact_decoded(session, decoded, &mut command, &mut reason);
                    EventKind::CommandDenied {
                        principal: shell.owner.clone(),
                        host: shell.host.clone(),
                        shell_id: shell.shell_id.clone(),
                        command,
                        decoded,
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
                Fact::Input(i) => {
                    // Redacted as a command line is (the secrets found are remembered for
                    // the session's output too); an input line is what a program reads.
                    let text = self
                        .audit
                        .redact(session, std::slice::from_ref(&i.text))
                        .concat();
                    EventKind::Input {
                        shell_id: shell.shell_id.clone(),
                        command_id: i.command_id,
                        stream: i.stream.as_str().to_string(),
                        text,
                        truncated: i.truncated,
                        bytes: i.bytes,
                        end: i.end,
                    }
                }
                Fact::AnsibleModule {
                    command_id,
                    run,
                    allowed,
                } => EventKind::AnsibleModule {
                    principal: shell.owner.clone(),
                    host: shell.host.clone(),
                    shell_id: shell.shell_id.clone(),
                    command_id,
                    module: run.name,
                    args: serde_json::from_str(&run.args).unwrap_or(serde_json::Value::Null),
                    check_mode: run.check_mode,
                    become_user: run.become_user,
                    decision: if allowed { "allowed" } else { "denied" },
                },
                Fact::AnsibleResult {
                    command_id,
                    module,
                    result,
                } => EventKind::AnsibleResult {
                    shell_id: shell.shell_id.clone(),
                    command_id,
                    module,
                    changed: result.changed,
                    failed: result.failed,
                    // The module's message is output: scrubbed of the session's secrets.
                    msg: result
                        .msg
                        .map(|m| self.audit.redact(session, &[m]).concat()),
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
                        total_bytes: o.total_bytes,
                        sha256: o.sha256,
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

    /// Decoded code for an event, each text redacted as a raw command is (its secrets
    /// remembered to scrub the session's output); `reason` is scrubbed of them too, since
    /// a policy reason may quote the decoded code. An `-EncodedCommand` script with a
    /// secret would carry it in base64 in the raw `command`, where redaction cannot see
    /// it: that base64 is replaced there (the decoded form, redacted, says what it was).
    fn redact_decoded(
        &self,
        session: &str,
        decoded: Vec<DecodedCode>,
        command: &mut [String],
        reason: &mut String,
    ) -> Vec<Decoded> {
        decoded
            .into_iter()
            .map(|d| {
                let (text, scrubbed) =
                    self.audit
                        .redact_denial(session, std::slice::from_ref(&d.text), reason);
                *reason = scrubbed;
                let text = text.concat();
                if text != d.text && d.via == ENCODED_COMMAND && !d.truncated {
                    let b64 = encode_command(&d.text);
                    for part in command.iter_mut() {
                        if part.contains(&b64) {
                            *part = part.replace(&b64, REDACTED);
                        }
                    }
                    if reason.contains(&b64) {
                        *reason = reason.replace(&b64, REDACTED);
                    }
                }
                Decoded {
                    via: d.via,
                    text,
                    truncated: d.truncated,
                }
            })
            .collect()
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

    /// A request from `principal` the gateway could not read (`kind`: the refusal's kind;
    /// `action`: the WS-Man action when the envelope got that far, else `none`).
    pub(super) fn request_rejected(
        &self,
        principal: &str,
        conn: &ConnInfo,
        kind: &str,
        action: &str,
    ) {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::RequestRejected {
                principal: principal.to_string(),
                source_ip: conn.peer.ip().to_string(),
                kind: kind.to_string(),
                action: action.to_string(),
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

    /// A disconnect, reconnect or connect of a shell's client (`session.connection`).
    pub(super) fn session_connection(&self, shell: &ShellIdentity, conn: &ConnInfo, step: &str) {
        self.audit.emit(Event {
            session_id: Some(shell.session_id.clone()),
            kind: EventKind::SessionConnection {
                principal: shell.owner.clone(),
                source_ip: conn.peer.ip().to_string(),
                host: shell.host.clone(),
                shell_id: shell.shell_id.clone(),
                step: step.to_string(),
            },
        });
    }

    pub(super) fn session_end(&self, shell: &ShellIdentity, counts: ActivityCounts, reason: &str) {
        self.emit_session_end(shell, counts, reason, None);
    }

    /// The end of a shell the gateway closed on its host itself.
    pub(super) fn session_end_closed(
        &self,
        shell: &ShellIdentity,
        counts: ActivityCounts,
        reason: &str,
        host_closed: bool,
    ) {
        self.emit_session_end(shell, counts, reason, Some(host_closed));
    }

    fn emit_session_end(
        &self,
        shell: &ShellIdentity,
        counts: ActivityCounts,
        reason: &str,
        host_closed: Option<bool>,
    ) {
        self.audit.emit(Event {
            session_id: Some(shell.session_id.clone()),
            kind: EventKind::SessionEnd {
                principal: shell.owner.clone(),
                host: shell.host.clone(),
                shell_id: shell.shell_id.clone(),
                reason: reason.to_string(),
                host_closed,
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

    pub(super) fn authn_failure(
        &self,
        conn: &ConnInfo,
        reason: &str,
        claimed_user: Option<String>,
    ) {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::AuthnFailure {
                source_ip: conn.peer.ip().to_string(),
                reason: reason.to_string(),
                claimed_user,
            },
        });
    }
}
