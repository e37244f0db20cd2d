//! Composition root: builds the gateway from a validated [`Config`] and runs it until
//! shutdown. The only place that knows every module.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::audit::AuditTask;
use crate::authn::{Authenticator, JwtValidator};
use crate::config::{Config, JwtAlgorithm as CfgAlg};
use crate::listener::{self, ListenerLimits};
use crate::proxy::backends::Backends;
use crate::proxy::{Gateway, PolicyHandle};
use crate::session::LocalRegistry;
use crate::vault::{self, LocalVault};
use crate::wsman;

/// Most shells remembered at once, across all principals.
const MAX_SHELLS: u64 = 100_000;

/// A gateway whose socket is bound and whose state is built, ready to serve.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    gateway: Gateway,
    audit_task: AuditTask,
    limits: ListenerLimits,
    policy_dir: std::path::PathBuf,
    admin: Option<(TcpListener, crate::admin::Admin)>,
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Address of the admin API listener, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves; reloads policies on SIGHUP.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let audit = self.gateway.audit.clone();
        let writer = tokio::spawn(self.audit_task.run());
        let reloader = tokio::spawn(reload_on_sighup(
            self.policy_dir.clone(),
            self.gateway.policy.clone(),
        ));
        let admin = self.admin.map(|(listener, admin)| {
            tokio::spawn(crate::admin::serve(listener, admin, std::future::pending()))
        });
        let gateway = self.gateway;
        let hook_audit = audit.clone();
        let on_handshake_error: listener::HandshakeHook = Arc::new(move |peer, error| {
            // Only certificate problems are authentication failures worth a record; port
            // scanners and clients that hang up are not.
            let text = error.to_string();
            if text.contains("certificate") {
                hook_audit.emit(crate::audit::Event {
                    session_id: None,
                    kind: crate::audit::EventKind::AuthnFailure {
                        source_ip: peer.ip().to_string(),
                        reason: "tls_handshake".into(),
                        claimed_user: None,
                    },
                });
            }
        });
        listener::serve(
            self.listener,
            self.tls,
            self.limits,
            on_handshake_error,
            move |conn| {
                let gateway = gateway.clone();
                let conn = Arc::new(conn);
                move |req| {
                    let gateway = gateway.clone();
                    let conn = conn.clone();
                    async move { gateway.handle(req, &conn).await }
                }
            },
            shutdown,
        )
        .await;
        reloader.abort();
        if let Some(a) = admin {
            a.abort();
        }
        audit.flush().await;
        drop(audit);
        // The writer ends when the last handle (held by connections) is gone.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
}

/// Builds everything and binds the listener. Errors here are start-up errors.
pub async fn bind(config: Config) -> anyhow::Result<Bound> {
    let tls = listener::tls::server_config(&config.listener).context("listener TLS")?;
    for h in config.inventory.iter() {
        if h.insecure_skip_verify {
            tracing::warn!(
                host = %h.name,
                "Backend TLS certificate verification is disabled for this host"
            );
        }
    }

    let jwt = match &config.authn.jwt {
        Some(j) => Some(JwtValidator::new(&jwt_settings(j)).context("authn.jwt")?),
        None => None,
    };
    let authn = Arc::new(Authenticator::new(jwt, config.authn.client_certificates));

    let vault_settings = vault_settings(&config);
    let store = LocalVault::open(&vault_settings)
        .with_context(|| format!("vault {}", config.vault.path.display()))?;

    let engine = crate::policy::load_dir(&config.policy_dir)
        .with_context(|| format!("policies in {}", config.policy_dir.display()))?;
    tracing::info!(roles = engine.role_names().len(), dir = %config.policy_dir.display(), "Policies loaded");

    let (audit, audit_task) = AuditTask::open_with(&config.audit_dir, audit_sink(&config)).await?;

    let listener = TcpListener::bind(config.listener.address)
        .await
        .with_context(|| format!("bind {}", config.listener.address))?;

    let limits = ListenerLimits {
        max_connections: config.limits.max_connections,
        handshake_timeout: config.limits.handshake_timeout,
        drain_timeout: Duration::from_secs(10),
    };
    let wsman_limits = wsman::Limits {
        max_bytes: config.limits.max_body_bytes,
        ..wsman::Limits::default()
    };
    let policy_dir = config.policy_dir.clone();
    let sessions = Arc::new(LocalRegistry::new(config.limits.shell_idle, MAX_SHELLS));
    let policy: PolicyHandle = Arc::new(arc_swap::ArcSwap::from_pointee(engine));
    let backends = Backends::new(Arc::new(store));
    let config = Arc::new(config);
    let admin = match &config.admin {
        None => None,
        Some(a) => {
            let token = crate::admin::AdminToken::from_file(&a.token_file)?;
            let l = TcpListener::bind(a.listen)
                .await
                .with_context(|| format!("bind admin {}", a.listen))?;
            let admin = crate::admin::Admin {
                sessions: sessions.clone(),
                audit: audit.clone(),
                policy: policy.clone(),
                token,
                closer: Some(Arc::new(HostCloser {
                    backends: backends.clone(),
                    config: config.clone(),
                })),
            };
            Some((l, admin))
        }
    };
    let gateway = Gateway {
        config,
        authn,
        policy,
        backends,
        sessions,
        audit,
        wsman_limits,
    };
    Ok(Bound {
        listener,
        tls,
        gateway,
        audit_task,
        limits,
        policy_dir,
        admin,
    })
}

/// Closes shells terminated through the admin API on their hosts (WS-Man Delete with the
/// same vaulted identity the shell was opened with).
#[derive(Debug)]
struct HostCloser {
    backends: Backends,
    config: Arc<Config>,
}

impl crate::admin::ShellCloser for HostCloser {
    fn close(
        &self,
        shell: Arc<crate::session::ShellRecord>,
    ) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> {
        let backends = self.backends.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let Some(host) = config.inventory.get(&shell.host) else {
                return false;
            };
            let backend = match backends.get(host, &shell.owner) {
                Ok(b) => b,
                Err(error) => {
                    tracing::warn!(%error, "No backend client to close a terminated shell");
                    return false;
                }
            };
            let resource = match &shell.kind {
                crate::session::ShellKind::Cmd => {
                    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd".to_string()
                }
                crate::session::ShellKind::Psrp { configuration } => {
                    format!("http://schemas.microsoft.com/powershell/{configuration}")
                }
            };
            let mut header = wsman::Header::new(wsman::Action::Delete);
            header.to = Some(crate::proxy::backends::backend_url(host));
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
            let env = wsman::Envelope::new(header, wsman::Body::Empty);
            let body = bytes::Bytes::from(wsman::build(&env));
            match backend
                .client
                .send_with_timeout(body, Duration::from_secs(30))
                .await
            {
                Ok(resp) => resp.status == http::StatusCode::OK,
                Err(error) => {
                    tracing::warn!(%error, host = %shell.host, "Host did not close a terminated shell");
                    false
                }
            }
        })
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(error) => {
                    tracing::warn!(%error, "Cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Reloads the policy directory on SIGHUP; an invalid set is refused and the old one kept.
async fn reload_on_sighup(dir: std::path::PathBuf, policy: PolicyHandle) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let d = dir.clone();
            match tokio::task::spawn_blocking(move || crate::policy::load_dir(&d)).await {
                Ok(Ok(engine)) => {
                    tracing::info!(roles = engine.role_names().len(), "Policies reloaded");
                    policy.store(Arc::new(engine));
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "Policy reload refused; keeping the previous set")
                }
                Err(error) => tracing::error!(%error, "Policy reload failed"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, policy);
    }
}

fn jwt_settings(j: &crate::config::JwtConfig) -> crate::authn::JwtSettings {
    let alg = match j.algorithm {
        CfgAlg::Hs256 => crate::authn::JwtAlgorithm::Hs256,
        CfgAlg::Rs256 => crate::authn::JwtAlgorithm::Rs256,
        CfgAlg::Es256 => crate::authn::JwtAlgorithm::Es256,
    };
    let mut s = crate::authn::JwtSettings::new(alg, j.key_file.clone());
    s.issuer = j.issuer.clone();
    s.audience = j.audience.clone();
    s.leeway_secs = j.leeway_secs;
    s.user_claim = j.user_claim.clone();
    s.groups_claim = j.groups_claim.clone();
    s.target_claim = j.target_claim.clone();
    s
}

fn audit_sink(config: &Config) -> crate::audit::SinkConfig {
    crate::audit::SinkConfig {
        fsync: config.audit_fsync_interval.map_or(
            crate::audit::FsyncPolicy::EveryBatch,
            crate::audit::FsyncPolicy::Interval,
        ),
        ..Default::default()
    }
}

/// Prepares the process-wide Kerberos environment of `delegate` hosts (generated krb5.conf,
/// gateway keytab file, `KRB5_*` variables). Must run before the tokio runtime starts; keep
/// the guard until the gateway stops (it removes the private directory).
pub fn prepare_delegation(
    config: &Config,
) -> anyhow::Result<Option<crate::backend::delegate_env::EnvGuard>> {
    use crate::backend::delegate_env::{install, Krb5Realm};
    let mut realms: Vec<Krb5Realm> = Vec::new();
    let delegate_hosts = config
        .inventory
        .iter()
        .filter(|h| h.auth == crate::config::HostAuth::Delegate);
    for k in delegate_hosts.filter_map(|h| h.kerberos.as_ref()) {
        let (Some(realm), Some(kdc)) = (&k.realm, k.kdc.strip_prefix("tcp://")) else {
            continue;
        };
        match realms.iter_mut().find(|r| &r.realm == realm) {
            Some(r) if !r.kdcs.iter().any(|x| x == kdc) => r.kdcs.push(kdc.to_owned()),
            Some(_) => {}
            None => realms.push(Krb5Realm {
                realm: realm.clone(),
                kdcs: vec![kdc.to_owned()],
            }),
        }
    }
    install(&realms).context("delegate kerberos environment")
}

/// The vault settings for `config` (also used by the `vault` CLI).
pub fn vault_settings(config: &Config) -> vault::VaultSettings {
    let (key_file, key_env) = match &config.vault.key {
        crate::config::VaultKey::File(p) => (Some(p.clone()), None),
        crate::config::VaultKey::Env(e) => (None, Some(e.clone())),
    };
    vault::VaultSettings {
        path: config.vault.path.clone(),
        key_file,
        key_env,
    }
}
