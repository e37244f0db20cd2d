//! The request path past decoding, one action at a time: which actions are relayed, the
//! registry check, inspection, the audit record, forwarding, observing the answer, the
//! reply. What a request means is the inspector's business (`shell`); this file only
//! carries out its verdicts.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::backends::backend_url;
use super::limits::ShellLimit;
use super::{Ctx, Gateway};
use crate::error::{soap_response, Refusal};
use crate::metrics::Limit;
use crate::session::{now_ms, Access, ShellIdentity};
use crate::shell::{compression, Denial, Inspector, Request, Verdict};
use crate::wsman::{self, Action, Body};

pub(super) type Reply = Result<Response<Full<Bytes>>, Refusal>;

// === impl Gateway ===

impl Gateway {
    pub(super) async fn dispatch(&self, ctx: Ctx<'_>) -> Reply {
        match ctx.envelope.action() {
            Action::Create => self.create(ctx).await,
            Action::Command
            | Action::Send
            | Action::Receive
            | Action::Signal
            | Action::Delete
            | Action::Disconnect
            | Action::Reconnect
            | Action::Connect => self.shell_operation(ctx).await,
            Action::Enumerate => self.enumerate(ctx).await,
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
        let mut inspector = opened
            .map_err(refusal)?
            .with_max_held_input(self.config.limits.max_held_input_bytes);

        let backend = self.backend(&ctx).await?;
        // One person cannot use up the host account's shell quota for everyone mapped to it.
        let _pending = self
            .limits
            .shells
            .reserve(
                &self.sessions.list(),
                &ctx.principal.name,
                &ctx.host.name,
                &backend.user,
            )
            .map_err(|limit| self.shell_limit(&ctx, &limit))?;
        let (status, body) = self.send_to_host(&ctx, &backend, host_body(&ctx)).await?;
        if status != StatusCode::OK {
            // The host refused the shell (quota, configuration): pass its fault on.
            return Ok(soap_response(status, body));
        }
        let mut created = wsman::parse(&body, &self.wsman_limits).ok();
        let mut body = body;
        if let (true, Some(env)) = (inspector.compressed(), created.as_ref()) {
            // The compression header is optional for the service (MS-WSMV footnote 133): a
            // host that agrees frames its streams and the gateway decodes them; one that
            // does not streams plain data, which the gateway frames for the client, who is
            // told XpressCompression either way.
            let agreed = created_shell(env)
                .and_then(|s| s.compression_mode.as_deref())
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("XpressCompression"));
            inspector.host_agreed_to_compression(agreed);
            if !agreed && env.spans.compression_mode.is_some() {
                body = Bytes::from(wsman::rewrite_compression_mode(
                    &body,
                    env,
                    "XpressCompression",
                ));
                created = wsman::parse(&body, &self.wsman_limits).ok();
            }
        }
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
            idle_ms: u64::try_from(self.config.shell_idle(ctx.host).as_millis())
                .unwrap_or(u64::MAX),
            busy_until_ms: 0,
        };
        let backend_auth = format!("{:?}", ctx.host.auth).to_lowercase();
        self.session_start(&shell, &ctx.principal, ctx.conn, backend_auth);
        self.inspectors.insert(&shell.shell_id, inspector);
        self.sessions.insert(shell);
        Ok(soap_response(status, body))
    }

    /// The refusal (and record) of a Create past a shell limit.
    fn shell_limit(&self, ctx: &Ctx<'_>, limit: &ShellLimit) -> Refusal {
        let (metric, message) = match limit {
            ShellLimit::PerUser { max } => (
                Limit::ShellsPerUser,
                format!(
                    "The WS-Management service cannot process the request. This user is allowed a maximum number of {max} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user."
                ),
            ),
            ShellLimit::PerCredential { max } => (
                Limit::ShellsPerCredential,
                format!(
                    "The WS-Management service cannot process the request. The host account used for this host is allowed a maximum number of {max} concurrent shells through the gateway, which has been exceeded. Close existing shells or try again later."
                ),
            ),
        };
        self.metrics.limited(metric);
        self.access_denied(
            &ctx.principal,
            ctx.conn,
            Some(&ctx.host.name),
            None,
            wsman::Action::Create.uri(),
            metric.label(),
        );
        Refusal::QuotaLimit { message }
    }

    /// The refusal (and record) of a request past the person's held-bytes cap.
    fn held_limit(&self, ctx: &Ctx<'_>, shell_id: &str, action: &Action, max: usize) -> Refusal {
        self.metrics.limited(Limit::HeldBytesPerUser);
        self.access_denied(
            &ctx.principal,
            ctx.conn,
            Some(&ctx.host.name),
            Some(shell_id),
            action.uri(),
            Limit::HeldBytesPerUser.label(),
        );
        Refusal::QuotaLimit {
            message: format!(
                "The WS-Management service cannot process the request. This user's shells hold {max} bytes of unfinished pipelines, the gateway's maximum. Finish or stop a pipeline and try again."
            ),
        }
    }

    /// Command, Send, Receive, Signal, Delete, and the disconnected-session steps
    /// (Disconnect, Reconnect, Connect): only on the principal's own shell. The shell's
    /// inspector lives on across a disconnect, so a reconnected client is judged as before.
    async fn shell_operation(&self, ctx: Ctx<'_>) -> Reply {
        let action = ctx.envelope.action().clone();
        let Some(shell_id) = ctx.envelope.shell_id().map(str::to_string) else {
            return Err(Refusal::Malformed {
                message: "the request has no ShellId selector".into(),
            });
        };

        // Registry: the shell must be this principal's, on this host.
        // A long-poll Receive is not idleness: the shell outlives the host's wait.
        let access = self.sessions.check_busy(
            &shell_id,
            &ctx.principal.name,
            &ctx.host.name,
            self.host_wait(&ctx),
        );
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

        // What a person's shells hold for inspection is bounded across all of them.
        if matches!(action, Action::Command | Action::Send) {
            self.limits
                .held
                .check(&shell.owner, ctx.body.len(), |id| {
                    self.inspectors.get(id).is_some()
                })
                .map_err(|max| self.held_limit(&ctx, &shell_id, &action, max))?;
        }

        // A compressing client's Send is judged and relayed decoded: one envelope for the
        // inspector and the host, so they cannot disagree.
        let (compressed, host_compressed) = {
            let i = inspector.lock().map_err(|_| Refusal::Internal)?;
            (i.compressed(), i.host_compressed())
        };
        let decoded = if compressed {
            match compression::decompress_streams(&ctx.envelope) {
                Ok(decoded) => decoded.map(|mut env| {
                    env.header.to = Some(backend_url(ctx.host));
                    env
                }),
                Err(error) => {
                    tracing::info!(%error, "Compressed stream from the client does not decode");
                    self.access_denied(
                        &ctx.principal,
                        ctx.conn,
                        Some(&ctx.host.name),
                        Some(&shell_id),
                        action.uri(),
                        "compressed stream unreadable",
                    );
                    return Err(Refusal::Malformed {
                        message: "a compressed stream could not be decoded".into(),
                    });
                }
            }
        } else {
            None
        };
        let (envelope, wire) = match &decoded {
            Some(env) => {
                // Framed again for a host that compresses: it decodes what was judged.
                let framed = host_compressed
                    .then(|| compression::compress_streams(env))
                    .flatten();
                (
                    env,
                    Bytes::from(wsman::build(framed.as_ref().unwrap_or(env))),
                )
            }
            None => (&ctx.envelope, host_body(&ctx)),
        };

        // Inspect, then record what was decided before anything is sent.
        let subject = ctx.subject();
        let judge = ctx.judge(&subject);
        let request = Request {
            envelope,
            wire: &wire,
        };
        let (verdict, facts, held) = {
            let mut inspector = inspector.lock().map_err(|_| Refusal::Internal)?;
            let (verdict, facts) = inspector.on_request(request, &judge, &mut uuid::Uuid::new_v4);
            (verdict, facts, inspector.held_bytes())
        };
        self.limits.held.set(&shell.owner, &shell_id, held);
        self.record(&shell, ctx.conn, facts);
        let bodies = match verdict {
            Verdict::Forward(bodies) => bodies,
            Verdict::Reply(envelope) => {
                let envelope = match compressed.then(|| compression::compress_streams(&envelope)) {
                    Some(Some(framed)) => framed,
                    _ => *envelope,
                };
                return Ok(soap_response(
                    StatusCode::OK,
                    Bytes::from(wsman::build(&envelope)),
                ));
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
        // The idle timer starts again when the answer comes (and the wait allowed for it
        // ends).
        let _ = self
            .sessions
            .check(&shell_id, &ctx.principal.name, &ctx.host.name);

        // Observe: what the host started, finished and printed.
        let observed = matches!(action, Action::Command | Action::Receive | Action::Signal);
        let mut body = body;
        match observed.then(|| wsman::parse(&body, &self.answer_limits)) {
            None => {}
            Some(Ok(answer)) => {
                // A compressing host's streams are recorded decoded; what cannot be decoded
                // cannot be recorded, so it is not passed on.
                let plain = match host_compressed
                    .then(|| compression::decompress_streams(&answer))
                    .transpose()
                {
                    Ok(plain) => plain.flatten(),
                    Err(error) => {
                        tracing::warn!(%error, "Compressed stream from the host does not decode");
                        return Err(Refusal::Internal);
                    }
                };
                let facts = match inspector.lock() {
                    Ok(mut inspector) => {
                        inspector.on_answer(envelope, plain.as_ref().unwrap_or(&answer))
                    }
                    Err(_) => Vec::new(),
                };
                self.record(&shell, ctx.conn, facts);
                // A host that streamed plain data to a compressing client: frame it. A
                // compressing host's answer goes on as it came.
                if let Some(framed) = (compressed && !host_compressed)
                    .then(|| compression::compress_streams(&answer))
                    .flatten()
                {
                    body = Bytes::from(wsman::build(&framed));
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, ?action, "Host answer not readable; not recorded");
                if compressed && action == Action::Receive {
                    // Streams the gateway cannot read cannot be framed for the client.
                    return Err(Refusal::Internal);
                }
            }
        }
        match (&action, &ctx.envelope.body) {
            (Action::Delete, _) => self.close(&shell_id, "client closed the shell"),
            (Action::Disconnect, _) => self.session_connection(&shell, ctx.conn, "disconnect"),
            (Action::Reconnect, _) => self.session_connection(&shell, ctx.conn, "reconnect"),
            (
                Action::Connect,
                Body::Connect {
                    connect_xml: Some(_),
                },
            ) => self.session_connection(&shell, ctx.conn, "connect"),
            (Action::Connect, _) => self.session_connection(&shell, ctx.conn, "connect_command"),
            _ => {}
        }
        Ok(soap_response(StatusCode::OK, body))
    }

    /// Enumerate of shells (`Get-PSSession -ComputerName`) or of one shell's commands:
    /// the host's answer, showing only the principal's own shells. The host knows every
    /// shell by the gateway's backend account, whoever opened it, so the list is filtered
    /// here; a command list is asked for only on the principal's own shell.
    async fn enumerate(&self, ctx: Ctx<'_>) -> Reply {
        let resource = ctx
            .envelope
            .header
            .resource_uri
            .as_deref()
            .unwrap_or_default();
        let commands_resource = format!("{}/Command", wsman::ns::SHELL);
        let shells = if resource == wsman::ns::SHELL {
            true
        } else if resource == commands_resource {
            false
        } else {
            let action = ctx.envelope.action().uri().to_string();
            self.access_denied(
                &ctx.principal,
                ctx.conn,
                Some(&ctx.host.name),
                None,
                &action,
                "action not relayed",
            );
            return Err(Refusal::ActionNotSupported {
                action: format!("{action} of {resource}"),
            });
        };
        let owned = |shell_id: &str| {
            matches!(
                self.sessions
                    .check(shell_id, &ctx.principal.name, &ctx.host.name),
                Access::Granted(_)
            ) && self.inspectors.get(shell_id).is_some()
        };
        if !shells {
            let filter =
                wsman::enumerate_filter_shell_id(&ctx.body, &self.wsman_limits).map_err(|e| {
                    Refusal::Malformed {
                        message: e.to_string(),
                    }
                })?;
            if !filter.as_deref().is_some_and(owned) {
                self.access_denied(
                    &ctx.principal,
                    ctx.conn,
                    Some(&ctx.host.name),
                    filter.as_deref(),
                    ctx.envelope.action().uri(),
                    "commands of a shell that is not the principal's",
                );
                return Err(Refusal::InvalidShell);
            }
        }
        let backend = self.backend(&ctx).await?;
        let (status, body) = self.send_to_host(&ctx, &backend, host_body(&ctx)).await?;
        if status != StatusCode::OK || !shells {
            return Ok(soap_response(status, body));
        }
        let listed = wsman::enumerated_shells(&body, &self.wsman_limits).map_err(|error| {
            // A list the gateway cannot filter is not passed on.
            tracing::warn!(%error, "Host's shell enumeration not readable");
            Refusal::Internal
        })?;
        let hidden: Vec<_> = listed
            .into_iter()
            .filter(|s| !s.shell_id.as_deref().is_some_and(owned))
            .map(|s| s.span)
            .collect();
        Ok(soap_response(
            status,
            Bytes::from(wsman::remove_ranges(&body, &hidden)),
        ))
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

/// The `rsp:Shell` a CreateResponse echoes.
fn created_shell(env: &wsman::Envelope) -> Option<&wsman::Shell> {
    match &env.body {
        Body::ResourceCreated { shell, .. } => shell.as_deref(),
        Body::Shell(shell) => Some(shell),
        _ => None,
    }
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
