//! The backend leg: a client for the host, sending one body to it with the right wait,
//! and what each way of failing means for the client and the audit trail.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;

use super::backends::{Backend, BackendsError};
use super::{Ctx, Gateway};
use crate::backend::BackendError;
use crate::error::Refusal;
use crate::wsman::parse_xs_duration;

/// Time allowed beyond the client's OperationTimeout for the host to answer a long poll.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// The longest OperationTimeout honoured; longer requests are cut here.
const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(600);

// === impl Gateway ===

impl Gateway {
    pub(super) async fn backend(&self, ctx: &Ctx<'_>) -> Result<Backend, Refusal> {
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
                self.backend_auth_failure(&ctx.host.name, "", reason);
                Refusal::BackendAuth {
                    host: ctx.host.name.clone(),
                }
            })
    }

    /// How long the host may take to answer this request: its OperationTimeout (capped)
    /// plus a margin.
    pub(super) fn host_wait(&self, ctx: &Ctx<'_>) -> Duration {
        ctx.envelope
            .header
            .operation_timeout
            .as_deref()
            .and_then(parse_xs_duration)
            .unwrap_or(Duration::ZERO)
            .min(MAX_OPERATION_TIMEOUT)
            + LONG_POLL_MARGIN.max(self.config.limits.request_timeout)
    }

    /// Sends an already rewritten body to the host.
    pub(super) async fn send_to_host(
        &self,
        ctx: &Ctx<'_>,
        backend: &Backend,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Refusal> {
        let wait = self.host_wait(ctx);
        let started = Instant::now();
        let sent = if ctx.envelope.header.action == crate::wsman::Action::Receive {
            backend.client.send_long_poll(body, wait).await
        } else {
            backend.client.send_with_timeout(body, wait).await
        };
        match sent {
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
                Err(self.backend_auth_failed(ctx, backend, source.reason()))
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
        self.backend_auth_failure(&ctx.host.name, &backend.user, reason);
        Refusal::BackendAuth {
            host: ctx.host.name.clone(),
        }
    }
}
