//! The request path past decoding, one action at a time: which actions are relayed, the
//! registry check, inspection, the audit record, forwarding, observing the answer, the
//! reply. What a request means is the inspector's business (`shell`); this file only
//! carries out its verdicts.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::backends::backend_url;
use super::{Ctx, Gateway};
use crate::error::{soap_response, Refusal};
use crate::session::{now_ms, Access, ShellIdentity};
use crate::shell::{Denial, Inspector, Request, Verdict};
use crate::wsman::{self, Action, Body};

pub(super) type Reply = Result<Response<Full<Bytes>>, Refusal>;

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
                self.access_denied(
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

    /// Create: judge, open the shell on the host, remember who owns it.
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
        let subject = ctx.subject();
        let judge = ctx.judge(&subject);
        let (opened, facts) = Inspector::open(&ctx.envelope, &judge);
        self.record_create(&ctx.principal, ctx.conn, &ctx.host.name, facts);
        let inspector = opened
            .map_err(refusal)?
            .with_max_held_input(self.config.limits.max_held_input_bytes);

        let backend = self.backend(&ctx).await?;
        let (status, body) = self.send_to_host(&ctx, &backend, host_body(&ctx)).await?;
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
        let now = now_ms();
        let shell = ShellIdentity {
            shell_id,
            session_id: uuid::Uuid::new_v4().to_string(),
            owner: ctx.principal.name.clone(),
            host: ctx.host.name.clone(),
            kind: inspector.kind().clone(),
            backend_user: backend.user,
            created_ms: now,
            last_activity_ms: now,
        };
        let backend_auth = format!("{:?}", ctx.host.auth).to_lowercase();
        self.session_start(&shell, &ctx.principal, ctx.conn, backend_auth);
        self.inspectors.insert(&shell.shell_id, inspector);
        self.sessions.insert(shell);
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

        // Registry: the shell must be this principal's, on this host.
        let access = self
            .sessions
            .check(&shell_id, &ctx.principal.name, &ctx.host.name);
        let inspector = match (access, self.inspectors.get(&shell_id)) {
            (Access::Granted(shell), Some(inspector)) => (shell, inspector),
            (refused, _) => {
                let reason = match refused {
                    Access::NotOwner { .. } => "shell belongs to another principal",
                    Access::WrongHost { .. } => "shell belongs to another host",
                    // Known to the registry, but this replica holds no inspection state
                    // for it: nothing on it could be judged, so nothing is relayed.
                    Access::Granted(_) => "shell not inspected by this gateway",
                    Access::Unknown => "unknown shell",
                };
                self.access_denied(
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
        let (shell, inspector) = inspector;

        // Inspect, then record what was decided before anything is sent.
        let wire = host_body(&ctx);
        let subject = ctx.subject();
        let judge = ctx.judge(&subject);
        let request = Request {
            envelope: &ctx.envelope,
            wire: &wire,
        };
        let (verdict, facts) = {
            let mut inspector = inspector.lock().map_err(|_| Refusal::Internal)?;
            inspector.on_request(request, &judge, &mut uuid::Uuid::new_v4)
        };
        self.record(&shell, ctx.conn, facts);
        let bodies = match verdict {
            Verdict::Forward(bodies) => bodies,
            Verdict::Reply(envelope) => {
                return Ok(soap_response(
                    StatusCode::OK,
                    Bytes::from(wsman::build(&envelope)),
                ))
            }
            Verdict::Deny(denial) => return Err(refusal(denial)),
        };

        // Send: held requests first, in order; the client gets the answer to the last.
        let backend = self.backend(&ctx).await?;
        let mut answer = None;
        for body in bodies {
            let (status, body) = self.send_to_host(&ctx, &backend, body).await?;
            if status != StatusCode::OK {
                return Ok(soap_response(status, body));
            }
            answer = Some(body);
        }
        let Some(body) = answer else {
            return Err(Refusal::Internal);
        };

        // Observe: what the host started, finished and printed.
        let observed = matches!(action, Action::Command | Action::Receive | Action::Signal);
        match observed.then(|| wsman::parse(&body, &self.wsman_limits)) {
            None => {}
            Some(Ok(answer)) => {
                let facts = match inspector.lock() {
                    Ok(mut inspector) => inspector.on_answer(&ctx.envelope, &answer),
                    Err(_) => Vec::new(),
                };
                self.record(&shell, ctx.conn, facts);
            }
            Some(Err(error)) => {
                tracing::warn!(%error, ?action, "Host answer not readable; not recorded");
            }
        }
        if action == Action::Delete {
            self.close(&shell_id, "client closed the shell");
        }
        Ok(soap_response(StatusCode::OK, body))
    }

    /// Forgets a closed shell and records its end.
    fn close(&self, shell_id: &str, reason: &str) {
        let counts = self
            .inspectors
            .remove(shell_id)
            .and_then(|i| i.lock().ok().map(|i| i.counts()))
            .unwrap_or_default();
        if let Some(closed) = self.sessions.remove(shell_id) {
            self.session_end(&closed, counts, reason);
        }
    }
}

/// What the client is told about a denial.
fn refusal(denial: Denial) -> Refusal {
    match denial {
        Denial::Access(message) => Refusal::AccessDenied { message },
        Denial::Resource(resource) => Refusal::ActionNotSupported {
            action: format!("Create of {resource}"),
        },
        Denial::Compression => Refusal::CompressionUnsupported,
    }
}

/// The request as the host must see it: `wsa:To` names the host, not the gateway.
fn host_body(ctx: &Ctx<'_>) -> Bytes {
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
