//! An emulated Windows WinRM host for the demo and benchmarks (`hopgate testhost`).
//!
//! Speaks what a Windows listener speaks to pywinrm/pypsrp and to hopgate's backend client:
//! http with NTLM (sspi acceptor) and WinRM message encryption, https with Basic, and WinRS
//! cmd shells running a few emulated commands (`hostname`, `whoami`, `ipconfig [/all]`,
//! `echo ...`, `exit N`), and PowerShell (PSRP) pools whose pipelines get emulated output. It is a test peer, not evidence of interoperability on its own
//! (TESTING.md). It never runs real commands.
//!
//! * `auth`: NTLM acceptor and account table; `server`: HTTP, auth dance, encryption;
//!   `winrs`: shells and Windows-shaped envelopes; `commands`: the command table;
//!   `psrp`: a minimal PowerShell (PSRP) runspace pool answering pipelines.

mod auth;
pub mod commands;
mod psrp;
mod server;
pub mod winrs;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use tokio::net::TcpListener;

use crate::listener::tls::ServerTls;
use crate::listener::{Listener, ListenerLimits};

pub use crate::backend::Scheme;
pub use winrs::{JournalEntry, JournalKind};

use auth::Accounts;
use server::HostState;
use winrs::WinRs;

/// Settings of one emulated host (filled from the CLI / demo).
#[derive(Clone)]
pub struct TesthostSettings {
    /// Address to listen on (use port 0 to let the OS choose; see [`Testhost::local_addr`]).
    pub listen: SocketAddr,
    /// http (NTLM + message encryption) or https (Basic, and NTLM bound to the TLS channel
    /// with plaintext bodies).
    pub scheme: Scheme,
    /// PEM certificate chain (https).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (https).
    pub tls_key: Option<PathBuf>,
    /// Accounts: (`user` or `DOMAIN\user`, password).
    pub users: Vec<(String, String)>,
    /// The computer name `hostname`/`whoami` print, e.g. `WIN-HOPGATE01`.
    pub hostname: String,
    /// Hold a Receive with nothing to report for the request's OperationTimeout, as
    /// Windows does (benchmarks: every open PowerShell session keeps one waiting); off,
    /// it is answered after a short pause so tests that poll stay quick.
    pub hold_receives: bool,
}

impl std::fmt::Debug for TesthostSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TesthostSettings")
            .field("listen", &self.listen)
            .field("scheme", &self.scheme)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field(
                "users",
                &self.users.iter().map(|(u, _)| u).collect::<Vec<_>>(),
            )
            .field("hostname", &self.hostname)
            .field("hold_receives", &self.hold_receives)
            .finish()
    }
}

/// Errors starting or running the test host.
#[derive(Debug, thiserror::Error)]
pub enum TesthostError {
    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key is missing or unusable.
    #[error("test host tls setup failed: {reason}")]
    Tls {
        /// What went wrong.
        reason: String,
    },
    /// Accepting connections failed.
    #[error("accepting connections failed")]
    Accept {
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet serving, test host.
pub struct Testhost {
    listener: Listener,
    https: bool,
    state: Arc<HostState>,
}

impl std::fmt::Debug for Testhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testhost")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

// === impl Testhost ===

impl Testhost {
    /// Binds the listener and loads TLS material.
    pub async fn bind(settings: TesthostSettings) -> Result<Self, TesthostError> {
        let (tls, channel_binding) = match settings.scheme {
            Scheme::Http => (None, None),
            Scheme::Https => {
                let (tls, leaf) = server_tls(&settings)?;
                (
                    Some(tls),
                    Some(crate::backend::ntlm::tls_server_end_point(&leaf)),
                )
            }
        };
        let tcp =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| TesthostError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let mut listener = Listener::new("testhost", tcp, LIMITS);
        if let Some(tls) = tls {
            listener = listener.with_tls(tls);
        }
        Ok(Self {
            listener,
            https: settings.scheme == Scheme::Https,
            state: Arc::new(HostState {
                accounts: Accounts::new(&settings.users),
                winrs: WinRs::new(settings.hostname),
                https: settings.scheme == Scheme::Https,
                channel_binding,
                hold_receives: settings.hold_receives,
            }),
        })
    }

    /// The bound address (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TesthostError> {
        self.listener
            .local_addr()
            .map_err(|source| TesthostError::Accept { source })
    }

    /// A handle that reads the journal of commands that reached this host, usable while
    /// it serves.
    pub fn journal(&self) -> TesthostJournal {
        TesthostJournal {
            state: self.state.clone(),
        }
    }

    /// Serves until `shutdown` completes, then closes every connection (requests in
    /// flight get a second to finish).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), TesthostError> {
        server::serve(self.listener, self.state, shutdown).await;
        Ok(())
    }
}

/// Reads the commands and stdin a running test host received.
#[derive(Debug, Clone)]
pub struct TesthostJournal {
    state: Arc<HostState>,
}

impl TesthostJournal {
    /// Entries, oldest first (the newest 10 000 are kept).
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.state.winrs.journal()
    }
}

/// Binds and serves until `shutdown` completes.
pub async fn run(
    settings: TesthostSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TesthostError> {
    let host = Testhost::bind(settings).await?;
    tracing::info!(addr = ?host.local_addr().ok(), "Test host listening");
    host.serve(shutdown).await
}

/// The test host's connection limits: a Windows listener's, with a short drain.
const LIMITS: ListenerLimits = ListenerLimits {
    max_connections: 1024,
    handshake_timeout: Duration::from_secs(10),
    header_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(120),
    drain_timeout: Duration::from_secs(1),
    // The test host serves the gateway and benchmarks from loopback: one source.
    max_connections_per_source: 1024,
    max_handshakes_per_source: 1024,
    first_byte_timeout: Duration::from_secs(10),
};

/// The fixed TLS configuration and the DER of the leaf certificate (for channel binding).
fn server_tls(settings: &TesthostSettings) -> Result<(Arc<ServerTls>, Vec<u8>), TesthostError> {
    let tls_err = |reason: String| TesthostError::Tls { reason };
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Err(tls_err("https needs tls_cert and tls_key".into()));
    };
    let chain = crate::tls::load_certs(cert).map_err(|e| tls_err(e.to_string()))?;
    let summary =
        crate::listener::tls::summarize(chain.first(), cert).map_err(|e| tls_err(e.to_string()))?;
    let leaf = chain.first().map(|c| c.to_vec()).unwrap_or_default();
    let key = crate::tls::load_key(key).map_err(|e| tls_err(e.to_string()))?;
    let config = crate::tls::server_config(chain, key, None, crate::tls::TLS12_AND_13)
        .map_err(|e| tls_err(e.to_string()))?;
    Ok((Arc::new(ServerTls::fixed(config, summary)), leaf))
}
