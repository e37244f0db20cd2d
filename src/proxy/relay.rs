//! Per-action handling: which actions are relayed, the shell ownership checks, the policy
//! decision for commands, forwarding to the host and recording what happened.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::backends::{backend_url, Backend, BackendsError};
use super::{Ctx, Gateway};
use crate::audit::{Event, EventKind};
use crate::backend::BackendError;
use crate::error::{soap_response, Refusal};
use crate::policy::{Decision, Operation, ShellKind as PolicyShellKind};
use crate::session::{Access, CmdState, HeldCommand, PsrpState, ShellKind, ShellRecord};
use crate::wsman::{self, Action, Body};

/// Resource URI of WinRS cmd shells.
const CMD_RESOURCE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// Prefix of PSRP resource URIs; the rest is the session configuration name.
const PSRP_RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";
/// Time allowed beyond the client's OperationTimeout for the host to answer a long poll.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// The longest OperationTimeout honoured; longer requests are cut here.
const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(600);

pub(super) type Reply = Result<Response<Full<Bytes>>, Refusal>;

/// What to do with a PSRP Send after inspection.
#[derive(Debug)]
pub(super) enum SendOutcome {
    /// Relay it as usual.
    Forward,
    /// Answer the client directly (the Send is held with its Command).
    Reply(Response<Full<Bytes>>),
    /// The held pipeline is now whole and allowed: forward what was held, then this.
    Release(HeldCommand),
}

// === impl Gateway ===

impl Gateway {
    pub(super) async fn dispatch(&self, ctx: Ctx<'_>) -> Reply {
        match ctx.envelope.action() {
            Action::Create => self.create(ctx).await,
            Action::Command | Action::Send | Action::Receive | Action::Signal | Action::Delete => {
                self.shell_operation(ctx).await
            }
            other => {
                let action = other.uri().to_string();
                self.deny_access(
                    &ctx.principal,
                    ctx.conn,
                    Some(&ctx.host.name),
                    ctx.envelope.shell_id(),
                    &action,
                    "action not relayed",
                );
                Err(Refusal::ActionNotSupported { action })
            }
        }
    }

    /// Create: open a shell on the host and remember who owns it.
    async fn create(&self, ctx: Ctx<'_>) -> Reply {
        if !self.audit.healthy() {
            if !self.config.audit_fail_open {
                // Fail closed: a session that cannot be recorded does not start.
                tracing::error!("Audit log unavailable: new shell refused");
                return Err(Refusal::AccessDenied {
                    message: "the audit log is unavailable, so no new session can start".into(),
                });
            }
            // The operator chose availability over the record (`on_failure = "continue"`).
            tracing::error!(
                "Audit log unavailable: new shell allowed unrecorded (on_failure = continue)"
            );
        }
        let resource = ctx.envelope.header.resource_uri.clone().unwrap_or_default();
        let kind = if resource.eq_ignore_ascii_case(CMD_RESOURCE) {
            ShellKind::Cmd
        } else if let Some(conf) = resource.strip_prefix(PSRP_RESOURCE_PREFIX) {
            ShellKind::Psrp {
                configuration: conf.to_string(),
            }
        } else {
            self.deny_access(
                &ctx.principal,
                ctx.conn,
                Some(&ctx.host.name),
                None,
                Action::Create.uri(),
                "resource not relayed",
            );
            return Err(Refusal::ActionNotSupported {
                action: format!("Create of {resource}"),
            });
        };
        if ctx.envelope.header.compression_type.is_some() {
            // Compressed streams cannot be inspected yet: fail closed (PROTOCOL.md §9).
            self.deny_access(
                &ctx.principal,
                ctx.conn,
                Some(&ctx.host.name),
                None,
                Action::Create.uri(),
                "shell compression requested",
            );
            return Err(Refusal::CompressionUnsupported);
        }
        let op_kind = match &kind {
            ShellKind::Cmd => PolicyShellKind::Cmd,
            ShellKind::Psrp { configuration } => PolicyShellKind::Psrp { configuration },
        };
        if let Decision::Deny { reason, .. } = ctx.policy.decide(
            &ctx.subject(),
            &ctx.host_ref(),
            &Operation::OpenShell { kind: op_kind },
        ) {
            self.deny_access(
                &ctx.principal,
                ctx.conn,
                Some(&ctx.host.name),
                None,
                Action::Create.uri(),
                &reason,
            );
            return Err(Refusal::AccessDenied { message: reason });
        }

        let backend = self.backend(&ctx).await?;
        let (status, body) = self.forward(&ctx, &backend).await?;
        if status != StatusCode::OK {
            // The host refused the shell (quota, configuration): pass its fault on.
            return Ok(soap_response(status, body));
        }
        let created = wsman::parse(&body, &self.wsman_limits).ok();
        let Some(shell_id) = created.as_ref().and_then(created_shell_id) else {
            tracing::warn!("Host answered Create without a ShellId the gateway can read");
            return Err(Refusal::Internal);
        };
        // The host's own URL stays behind the gateway: the ResourceCreated address the
        // client gets back is the one it sent the Create to.
        let body = match (created.as_ref(), ctx.envelope.header.to.as_deref()) {
            (Some(env), Some(to)) => Bytes::from(wsman::rewrite_address(&body, env, to)),
            _ => body,
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        self.audit.emit(Event {
            session_id: Some(session_id.clone()),
            kind: EventKind::SessionStart {
                principal: ctx.principal.name.clone(),
                auth_method: ctx.principal.method.as_str().to_string(),
                source_ip: ctx.conn.peer.ip().to_string(),
                host: ctx.host.name.clone(),
                shell_id: shell_id.clone(),
                shell_kind: kind.as_str().to_string(),
                backend_user: backend.user.clone(),
                backend_auth: format!("{:?}", ctx.host.auth).to_lowercase(),
            },
        });
        let psrp = match kind {
            ShellKind::Psrp { .. } => {
                let mut state = PsrpState::default();
                // creationXml carries the first client→host fragments (SESSION_CAPABILITY,
                // INIT_RUNSPACEPOOL); feeding them keeps the reassembly state exact.
                if let Body::Shell(shell) = &ctx.envelope.body {
                    if let Some(bytes) = &shell.creation_xml {
                        if let Err(error) = super::psrp::feed_bytes(&mut state.from_client, bytes) {
                            tracing::info!(%error, "creationXml not understood");
                        }
                    }
                }
                Some(std::sync::Arc::new(std::sync::Mutex::new(state)))
            }
            ShellKind::Cmd => None,
        };
        let cmd = (kind == ShellKind::Cmd)
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(CmdState::default())));
        self.sessions.insert(ShellRecord {
            shell_id,
            session_id,
            owner: ctx.principal.name.clone(),
            host: ctx.host.name.clone(),
            kind,
            backend_user: backend.user,
            created: Instant::now(),
            psrp,
            cmd,
            activity: Default::default(),
        });
        Ok(soap_response(status, body))
    }

    /// Command, Send, Receive, Signal, Delete: only on the principal's own shell.
    async fn shell_operation(&self, ctx: Ctx<'_>) -> Reply {
        let action = ctx.envelope.action().clone();
        let Some(shell_id) = ctx.envelope.shell_id().map(str::to_string) else {
            return Err(Refusal::Malformed {
                message: "the request has no ShellId selector".into(),
            });
        };
        let shell = match self
            .sessions
            .check(&shell_id, &ctx.principal.name, &ctx.host.name)
        {
            Access::Granted(s) => s,
            refused => {
                let reason = match refused {
                    Access::NotOwner { .. } => "shell belongs to another principal",
                    Access::WrongHost { .. } => "shell belongs to another host",
                    _ => "unknown shell",
                };
                self.deny_access(
                    &ctx.principal,
                    ctx.conn,
                    Some(&ctx.host.name),
                    Some(&shell_id),
                    action.uri(),
                    reason,
                );
                // The same fault as for a shell that does not exist: a guessed ShellId
                // tells the guesser nothing.
                return Err(Refusal::InvalidShell);
            }
        };

        let mut release = None;
        match (&action, &shell.kind, &ctx.envelope.body) {
            (Action::Command, ShellKind::Cmd, Body::CommandLine(cl)) => {
                self.decide_cmd(&ctx, &shell, cl)?;
            }
            (Action::Command, ShellKind::Psrp { .. }, Body::CommandLine(cl)) => {
                if let Some(reply) = self.psrp_command(&ctx, &shell, cl)? {
                    return Ok(reply);
                }
            }
            (Action::Send, ShellKind::Cmd, Body::Send(streams)) => {
                self.decide_cmd_stdin(&ctx, &shell, streams)?;
            }
            (Action::Send, ShellKind::Psrp { .. }, Body::Send(streams)) => {
                match self.psrp_send(&ctx, &shell, streams)? {
                    SendOutcome::Forward => {}
                    SendOutcome::Reply(reply) => return Ok(reply),
                    SendOutcome::Release(held) => release = Some(held),
                }
            }
            _ => {}
        }

        let backend = self.backend(&ctx).await?;
        if let Some(held) = release {
            // The pipeline is whole and allowed: the host now gets the held Command and
            // Sends in their original order, then this request.
            for body in std::iter::once(held.command).chain(held.sends) {
                let (status, answer) = self.send_to_host(&ctx, &backend, body).await?;
                if status != StatusCode::OK {
                    return Ok(soap_response(status, answer));
                }
            }
        }
        let (status, body) = self.forward(&ctx, &backend).await?;
        if status == StatusCode::OK {
            self.observe_answer(&ctx, &shell, &action, &body);
        }
        if action == Action::Delete && status == StatusCode::OK {
            if let Some(closed) = self.sessions.remove(&shell_id) {
                let counts = closed.activity.counts();
                self.audit.emit(Event {
                    session_id: Some(closed.session_id.clone()),
                    kind: EventKind::SessionEnd {
                        principal: closed.owner.clone(),
                        host: closed.host.clone(),
                        shell_id: shell_id.clone(),
                        reason: "client closed the shell".into(),
                        duration_ms: u64::try_from(closed.created.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                        commands_allowed: counts.commands_allowed,
                        commands_denied: counts.commands_denied,
                        output_bytes: counts.output_bytes,
                    },
                });
            }
        }
        Ok(soap_response(status, body))
    }

    async fn backend(&self, ctx: &Ctx<'_>) -> Result<Backend, Refusal> {
        self.backends
            .get(ctx.host, &ctx.principal.name)
            .await
            .map_err(|error| {
                tracing::error!(%error, "No backend client");
                let reason = match &error {
                    BackendsError::Reference { source, .. }
                    | BackendsError::Vault { source, .. } => source.reason(),
                    BackendsError::Client { .. } => "backend configuration",
                    BackendsError::Delegate { source, .. } => source.reason(),
                };
                self.audit.emit(Event {
                    session_id: None,
                    kind: EventKind::BackendAuth {
                        host: ctx.host.name.clone(),
                        backend_user: String::new(),
                        outcome: "failure".into(),
                        reason: reason.into(),
                    },
                });
                Refusal::BackendAuth {
                    host: ctx.host.name.clone(),
                }
            })
    }

    /// Sends the request on to the host (with `wsa:To` rewritten) and returns its answer.
    async fn forward(
        &self,
        ctx: &Ctx<'_>,
        backend: &Backend,
    ) -> Result<(StatusCode, Bytes), Refusal> {
        self.send_to_host(ctx, backend, backend_body(ctx)).await
    }

    /// Sends an already rewritten body to the host.
    async fn send_to_host(
        &self,
        ctx: &Ctx<'_>,
        backend: &Backend,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Refusal> {
        let wait = ctx
            .envelope
            .header
            .operation_timeout
            .as_deref()
            .and_then(parse_xs_duration)
            .unwrap_or(Duration::ZERO)
            .min(MAX_OPERATION_TIMEOUT)
            + LONG_POLL_MARGIN.max(self.config.limits.request_timeout);
        let started = Instant::now();
        match backend.client.send_with_timeout(body, wait).await {
            Ok(resp) => {
                self.metrics
                    .backend(ctx.envelope.action().label(), started.elapsed());
                tracing::debug!(
                    status = resp.status.as_u16(),
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "Host answered"
                );
                Ok((resp.status, resp.body))
            }
            Err(BackendError::AuthRejected { .. }) => {
                self.backends.invalidate(&ctx.host.name, &backend.entry);
                Err(self.backend_auth_failed(ctx, backend, "host rejected the vaulted credential"))
            }
            Err(BackendError::Kerberos { source, .. }) => {
                // The KDC refused or could not be reached: the host never saw a request.
                tracing::warn!(error = %source, "Kerberos login to the host failed");
                if !source.is_transient() {
                    self.backends.invalidate(&ctx.host.name, &backend.entry);
                }
                Err(self.backend_auth_failed(ctx, backend, source.reason()))
            }
            Err(BackendError::CredSsp { source, .. }) => {
                // No CredSSP on the host, a tunnel bound to another key (interception), a
                // broken exchange: the login failed, whatever the password.
                tracing::warn!(error = %source, "CredSSP login to the host failed");
                let reason = format!("credssp: {source}");
                Err(self.backend_auth_failed(ctx, backend, &reason))
            }
            Err(BackendError::Handshake { reason, .. }) => {
                tracing::warn!(%reason, "Login handshake with the host failed");
                let reason = format!("handshake: {reason}");
                Err(self.backend_auth_failed(ctx, backend, &reason))
            }
            Err(BackendError::Delegate { source, .. }) => {
                // Delegation failed (KDC refused S4U2Proxy to this host, unknown person, KDC
                // down): the host never ran the request.
                tracing::warn!(error = %source, "Delegated Kerberos login to the host failed");
                if !source.is_transient() {
                    self.backends.invalidate(&ctx.host.name, &backend.entry);
                }
                self.audit.emit(Event {
                    session_id: None,
                    kind: EventKind::BackendAuth {
                        host: ctx.host.name.clone(),
                        backend_user: backend.user.clone(),
                        outcome: "failure".into(),
                        reason: source.reason().into(),
                    },
                });
                Err(Refusal::BackendAuth {
                    host: ctx.host.name.clone(),
                })
            }
            Err(error) => {
                tracing::warn!(%error, "Host unavailable");
                Err(Refusal::BackendUnavailable {
                    host: ctx.host.name.clone(),
                })
            }
        }
    }

    /// Records a failed login to the host (`backend.auth`) and the refusal the client gets.
    fn backend_auth_failed(&self, ctx: &Ctx<'_>, backend: &Backend, reason: &str) -> Refusal {
        self.audit.emit(Event {
            session_id: None,
            kind: EventKind::BackendAuth {
                host: ctx.host.name.clone(),
                backend_user: backend.user.clone(),
                outcome: "failure".into(),
                reason: reason.into(),
            },
        });
        Refusal::BackendAuth {
            host: ctx.host.name.clone(),
        }
    }
}

/// The request as the host must see it: `wsa:To` names the host, not the gateway.
pub(super) fn backend_body(ctx: &Ctx<'_>) -> Bytes {
    Bytes::from(wsman::rewrite_to(
        &ctx.body,
        &ctx.envelope,
        &backend_url(ctx.host),
    ))
}

/// The ShellId in a CreateResponse: the ResourceCreated selector, or the echoed rsp:Shell.
fn created_shell_id(env: &wsman::Envelope) -> Option<String> {
    match &env.body {
        Body::ResourceCreated { selectors, .. } => selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case("ShellId"))
            .map(|s| s.value.clone()),
        Body::Shell(shell) => shell.shell_id.clone(),
        _ => None,
    }
}

/// Parses the xs:duration forms WS-Man uses for OperationTimeout (`PT20S`, `PT60.000S`,
/// `PT1M30S`, `P0DT0H1M`). Returns None for anything else.
pub(crate) fn parse_xs_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0f64;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, mult) = units.iter().find(|(u, _)| *u == c)?;
                secs += num.parse::<f64>().ok()? * mult;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xs_durations() {
        assert_eq!(parse_xs_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_xs_duration("PT60.000S"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_xs_duration("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(parse_xs_duration("P0DT0H1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_xs_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_xs_duration("20"), None);
        assert_eq!(parse_xs_duration("PT20X"), None);
        assert_eq!(parse_xs_duration("PT20"), None);
    }
}
