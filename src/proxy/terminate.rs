//! Ending a shell on its host for the admin API's terminate: a WS-Man Signal `terminate`
//! to every command the gateway saw start and not finish, then a Delete of the shell, sent
//! with the same vaulted identity the shell was opened with.
//!
//! The Signals come first because a Delete alone leaves a long-running command to the
//! host's own clean-up, and a client blocked in a Receive on it would wait for its
//! OperationTimeout; a terminated command answers that Receive at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::backends::{backend_url, Backend, Backends};
use super::inspectors::Inspectors;
use crate::admin::Closed;
use crate::config::{Config, Host};
use crate::session::ShellIdentity;
use crate::wsman::{self, Action, Body, SignalCode};

/// How long the host gets to answer each Signal and the Delete.
const HOST_TIMEOUT: Duration = Duration::from_secs(10);

/// Closes shells terminated through the admin API on their hosts.
#[derive(Debug)]
pub struct HostCloser {
    backends: Backends,
    config: Arc<Config>,
    inspectors: Inspectors,
}

impl HostCloser {
    pub fn new(backends: Backends, config: Arc<Config>, inspectors: Inspectors) -> Self {
        Self {
            backends,
            config,
            inspectors,
        }
    }
}

impl crate::admin::ShellCloser for HostCloser {
    fn close(&self, shell: ShellIdentity) -> Pin<Box<dyn Future<Output = Closed> + Send>> {
        let backends = self.backends.clone();
        let config = self.config.clone();
        // The shell's inspection state goes now: no request on it will be relayed again.
        let (live, counts) = self
            .inspectors
            .remove(&shell.shell_id)
            .and_then(|i| i.lock().ok().map(|i| (i.live_commands(), i.counts())))
            .unwrap_or_default();
        Box::pin(async move {
            let closed = |host_closed| Closed {
                host_closed,
                counts,
            };
            let Some(host) = config.inventory.get(&shell.host) else {
                return closed(false);
            };
            let backend = match backends.get(host, &shell.owner).await {
                Ok(b) => b,
                Err(error) => {
                    tracing::warn!(%error, "No backend client to close a terminated shell");
                    return closed(false);
                }
            };
            // One after another: a shell rarely has more than a couple of live commands,
            // and the host handles a shell's requests in order anyway.
            for id in live {
                let body = Body::Signal {
                    command_id: Some(id.clone()),
                    code: SignalCode::Terminate,
                };
                if !send(&backend, request(host, &shell, Action::Signal, body)).await {
                    tracing::info!(command = %id, host = %shell.host, "Host did not confirm terminating a command");
                }
            }
            closed(send(&backend, request(host, &shell, Action::Delete, Body::Empty)).await)
        })
    }
}

/// True when the host answered 200.
async fn send(backend: &Backend, body: Bytes) -> bool {
    match backend.client.send_with_timeout(body, HOST_TIMEOUT).await {
        Ok(resp) => resp.status == http::StatusCode::OK,
        Err(error) => {
            tracing::warn!(%error, "Host did not answer a terminate request");
            false
        }
    }
}

/// A request of the gateway's own on `shell`, addressed to `host`.
fn request(host: &Host, shell: &ShellIdentity, action: Action, body: Body) -> Bytes {
    let resource = shell.kind.resource_uri();
    let mut header = wsman::Header::new(action);
    header.to = Some(backend_url(host));
    header.reply_to = Some(wsman::ns::ANONYMOUS.to_string());
    header.message_id = Some(format!(
        "uuid:{}",
        uuid::Uuid::new_v4().to_string().to_uppercase()
    ));
    header.resource_uri = Some(resource);
    header.operation_timeout = Some("PT20S".into());
    header.max_envelope_size = Some(153_600);
    header.selectors = vec![wsman::Selector {
        name: "ShellId".into(),
        value: shell.shell_id.clone(),
    }];
    Bytes::from(wsman::build(&wsman::Envelope::new(header, body)))
}
