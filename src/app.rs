//! Composition root: builds the gateway from a validated [`Config`] and runs it until
//! shutdown. The only place that knows every module.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::audit::export::{ExportTuning, Exporters};
use crate::audit::{AuditHandle, AuditTask};
use crate::authn::kerberos::{Acceptor, AcceptorSettings, ServiceKeyInput};
use crate::authn::{keytab, Authenticator, JwtValidator};
use crate::config::{Config, JwtAlgorithm as CfgAlg};
use crate::listener::tls::ServerTls;
use crate::listener::{self, fdlimit, Listener, ListenerLimits};
use crate::proxy::backends::Backends;
use crate::proxy::signin::ConnSignIn;
use crate::proxy::{Gateway, PolicyHandle};
use crate::session::LocalRegistry;
use crate::vault;
use crate::wsman;

/// Most shells remembered at once, across all principals.
const MAX_SHELLS: u64 = 100_000;
/// How long shutdown waits for each host to confirm closing a shell left open.
const SHUTDOWN_CLOSE: Duration = Duration::from_secs(15);

/// A gateway whose socket is bound and whose state is built, ready to serve.
#[derive(Debug)]
pub struct Bound {
    listener: Listener,
    /// The listener's TLS configuration in force (reloaded on SIGHUP).
    tls: Arc<ServerTls>,
    gateway: Gateway,
    audit_task: AuditTask,
    /// Audit export (syslog, stdout), when configured; also held by the writer.
    exporters: Option<Arc<Exporters>>,
    policy_dir: std::path::PathBuf,
    admin: Option<(Listener, crate::admin::Admin)>,
    /// Shells the registry let go (idle, evicted), for the reaper to close.
    ended: tokio::sync::mpsc::UnboundedReceiver<crate::session::Ended>,
    /// SHA-256 of the policy set loaded at start-up (`gateway.start`).
    policy_sha256: String,
    /// The plain-HTTP listener (Kerberos with message encryption only), when configured.
    http: Option<Listener>,
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Address of the plain-HTTP listener, when configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Address of the admin API listener, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The audit export destinations, for their counters (metrics).
    pub fn audit_exporters(&self) -> Option<Arc<Exporters>> {
        self.exporters.clone()
    }

    /// The listener's TLS configuration (what a reload swaps).
    pub fn tls(&self) -> Arc<ServerTls> {
        self.tls.clone()
    }

    /// Serves until `shutdown` resolves; reloads policies and certificates on SIGHUP.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let audit = self.gateway.audit.clone();
        let writer = tokio::spawn(self.audit_task.run());
        let reloader = tokio::spawn(reload_on_sighup(
            self.policy_dir.clone(),
            self.gateway.policy.clone(),
            self.tls.clone(),
            audit.clone(),
        ));
        let admin = self.admin.map(|(listener, admin)| {
            tokio::spawn(crate::admin::serve(listener, admin, std::future::pending()))
        });
        let gateway = self.gateway;
        let started = std::time::Instant::now();
        audit.emit(crate::audit::Event {
            session_id: None,
            kind: crate::audit::EventKind::GatewayStart {
                version: env!("CARGO_PKG_VERSION").to_string(),
                config_sha256: gateway.config.source_sha256.clone(),
                policy_sha256: self.policy_sha256,
                roles: u64::try_from(gateway.policy.load().role_names().len()).unwrap_or(u64::MAX),
                hosts: u64::try_from(gateway.config.inventory.len()).unwrap_or(u64::MAX),
            },
        });
        let (stop_reaper, reaper_stop) = tokio::sync::oneshot::channel();
        let reaper = tokio::spawn(gateway.clone().reap(self.ended, reaper_stop));
        let owner = gateway.clone();
        let hook_audit = audit.clone();
        let on_handshake_error: listener::HandshakeHook = Arc::new(move |peer, failure| {
            // Only refused client certificates are authentication failures worth a record;
            // port scanners, plain HTTP and clients that hang up are not.
            if let Some(reason) = failure.audit_reason() {
                hook_audit.emit(crate::audit::Event {
                    session_id: None,
                    kind: crate::audit::EventKind::AuthnFailure {
                        source_ip: peer.ip().to_string(),
                        reason: reason.into(),
                        claimed_user: None,
                    },
                });
            }
        });
        // One service per connection, with the connection's Kerberos sign-in state.
        let make_service = move |gateway: Gateway| {
            move |conn: listener::ConnInfo| {
                let gateway = gateway.clone();
                let conn = Arc::new(conn);
                let signin = Arc::new(ConnSignIn::default());
                move |req| {
                    let gateway = gateway.clone();
                    let conn = conn.clone();
                    let signin = signin.clone();
                    async move { gateway.handle_conn(req, &conn, &signin).await }
                }
            }
        };
        // Both listeners stop on the same signal.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let http = self.http.map(|l| {
            tokio::spawn(l.serve(make_service(gateway.clone()), stopped(stop_rx.clone())))
        });
        let main = self
            .listener
            .on_handshake_error(on_handshake_error)
            .serve(make_service(gateway), stopped(stop_rx));
        tokio::pin!(main);
        tokio::select! {
            () = &mut main => {}
            () = shutdown => {
                let _ = stop_tx.send(true);
                main.await;
            }
        }
        let _ = stop_tx.send(true);
        if let Some(h) = http {
            let _ = h.await;
        }
        reloader.abort();
        if let Some(a) = admin {
            a.abort();
        }
        // Drained: no request is in flight. Shells still open are the gateway's to close
        // (their clients can no longer reach them): on their hosts, each with its end.
        let _ = stop_reaper.send(());
        // The reaper finishes the ends it started (each bounded by its host timeout).
        let _ = tokio::time::timeout(SHUTDOWN_CLOSE + Duration::from_secs(5), reaper).await;
        let sessions_closed = owner
            .close_all(crate::proxy::SHUTDOWN_REASON, SHUTDOWN_CLOSE)
            .await;
        drop(owner);
        audit.emit(crate::audit::Event {
            session_id: None,
            kind: crate::audit::EventKind::GatewayStop {
                sessions_closed,
                uptime_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        });
        audit.flush().await;
        drop(audit);
        // The writer ends when the last handle (held by connections) is gone.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        // Give the exporters a moment to send the last lines (the file has them anyway).
        if let Some(x) = self.exporters {
            if !x.drain(Duration::from_secs(5)).await {
                tracing::warn!(stats = ?x.stats(), "Audit export not drained at shutdown");
            }
        }
    }
}

/// Builds everything and binds the listener. Errors here are start-up errors.
pub async fn bind(config: Config) -> anyhow::Result<Bound> {
    let tls = Arc::new(ServerTls::load(&config.listener).context("listener TLS")?);
    let summary = tls.summary();
    tracing::info!(subject = %summary.subject, not_after = %summary.not_after, crl_revoked = ?summary.crl_revoked, "Listener certificate loaded");
    // Before any socket: the caps must fit in the descriptor limit.
    let fds = fdlimit::raise(fdlimit::needed(
        config.limits.max_connections,
        config.admin.as_ref().map_or(0, |a| a.max_connections),
    ))?;
    tracing::debug!(?fds, "Open-file limit");
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
    let mut authn = Authenticator::new(jwt, config.authn.client_certificates);
    if let Some(k) = &config.authn.kerberos {
        let acceptor = kerberos_acceptor(k).context("authn.kerberos")?;
        tracing::info!(service = %acceptor.service(), "Kerberos sign-in enabled");
        authn = authn.with_kerberos(acceptor);
    }
    let authn = Arc::new(authn);

    let store = vault::open_store(&store_settings(&config)).context("vault")?;

    let (engine, policy_sha256) = crate::policy::load_dir_with_digest(&config.policy_dir)
        .with_context(|| format!("policies in {}", config.policy_dir.display()))?;
    tracing::info!(roles = engine.role_names().len(), dir = %config.policy_dir.display(), "Policies loaded");

    let (audit, audit_task) = AuditTask::open_with(
        &config.audit_dir,
        audit_sink(&config, store.as_ref()).await?,
    )
    .await?;
    let exporters = Exporters::start(&config.audit_export, ExportTuning::default())
        .await
        .context("audit export")?;
    let audit_task = audit_task.with_exporters(exporters.clone());

    let limits = ListenerLimits {
        max_connections: config.limits.max_connections,
        handshake_timeout: config.limits.handshake_timeout,
        header_timeout: config.limits.header_timeout,
        idle_timeout: config.limits.idle_timeout,
        drain_timeout: Duration::from_secs(10),
        max_connections_per_source: config.limits.max_connections_per_source,
        max_handshakes_per_source: config.limits.max_handshakes_per_source,
        first_byte_timeout: config.limits.first_byte_timeout,
    };
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let listener = Listener::new(
        "gateway",
        TcpListener::bind(config.listener.address)
            .await
            .with_context(|| format!("bind {}", config.listener.address))?,
        limits,
    )
    .with_tls(tls.clone())
    .with_metrics(metrics.listener("gateway"));
    let http = match config.listener.http_address {
        None => None,
        Some(addr) => Some(
            Listener::new(
                "gateway_http",
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("bind listener.http_address {addr}"))?,
                limits,
            )
            .with_metrics(metrics.listener("gateway_http")),
        ),
    };
    let wsman_limits = wsman::Limits {
        max_bytes: config.limits.max_body_bytes,
        max_attributes: config.limits.max_xml_attributes,
        max_attribute_bytes: config.limits.max_xml_attribute_bytes,
        ..wsman::Limits::default()
    };
    let answer_limits = wsman::Limits {
        max_bytes: crate::backend::BackendSettings::default()
            .max_response_bytes
            .max(wsman_limits.max_bytes),
        ..wsman_limits
    };
    let policy_dir = config.policy_dir.clone();
    let (sessions, ended) = LocalRegistry::with_ends(config.limits.shell_idle, MAX_SHELLS);
    let sessions = Arc::new(sessions);
    let inspectors = crate::proxy::inspectors::Inspectors::new(2 * MAX_SHELLS);
    let policy: PolicyHandle = Arc::new(arc_swap::ArcSwap::from_pointee(engine));
    let backends = Backends::with_settings(
        store,
        crate::backend::BackendSettings {
            max_connections: config.backend.max_connections,
            max_idle: config.backend.max_idle,
            max_long_polls: config.backend.max_long_polls,
            idle_timeout: config.backend.idle_timeout,
            ..crate::backend::BackendSettings::default()
        },
    );
    let config = Arc::new(config);
    let admin = match &config.admin {
        None => None,
        Some(a) => {
            let token = crate::admin::AdminToken::from_file(&a.token_file)?;
            let l = Listener::new(
                "admin",
                TcpListener::bind(a.listen)
                    .await
                    .with_context(|| format!("bind admin {}", a.listen))?,
                ListenerLimits {
                    max_connections: a.max_connections,
                    ..limits
                },
            )
            .with_metrics(metrics.listener("admin"));
            let admin = crate::admin::Admin {
                metrics: metrics.clone(),
                exporters: exporters.clone(),
                sessions: sessions.clone(),
                audit: audit.clone(),
                policy: policy.clone(),
                token,
                closer: Some(Arc::new(crate::proxy::terminate::HostCloser::new(
                    backends.clone(),
                    config.clone(),
                    inspectors.clone(),
                ))),
            };
            Some((l, admin))
        }
    };
    let request_limits = crate::proxy::limits::RequestLimits::new(&config.limits);
    let gateway = Gateway {
        config,
        authn,
        policy,
        backends,
        sessions,
        inspectors,
        audit,
        wsman_limits,
        answer_limits,
        metrics,
        limits: request_limits,
    };
    Ok(Bound {
        listener,
        tls,
        gateway,
        audit_task,
        exporters,
        policy_dir,
        admin,
        ended,
        policy_sha256,
        http,
    })
}

/// Reads the keytab (which must not be readable by others: it is the gateway's password)
/// and prepares the acceptor.
fn kerberos_acceptor(k: &crate::config::KerberosSignInConfig) -> anyhow::Result<Acceptor> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&k.keytab_file)
            .with_context(|| format!("keytab {}", k.keytab_file.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "keytab {} is readable by group or others (mode {:o}); chmod 600 it",
                k.keytab_file.display(),
                mode & 0o777
            );
        }
    }
    let bytes = std::fs::read(&k.keytab_file)
        .with_context(|| format!("keytab {}", k.keytab_file.display()))?;
    let bytes = zeroize::Zeroizing::new(bytes);
    let entries =
        keytab::parse(&bytes).with_context(|| format!("keytab {}", k.keytab_file.display()))?;
    Ok(Acceptor::new(AcceptorSettings {
        service: k.service.clone(),
        realm: k.realm.clone(),
        keys: entries.iter().map(ServiceKeyInput::from).collect(),
        max_skew: k.max_skew,
        groups: k.groups.clone(),
    })?)
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

/// Reloads the policy directory and the listener's certificates on SIGHUP; an invalid
/// policy set or certificate file is refused and what is in force kept.
async fn reload_on_sighup(
    dir: std::path::PathBuf,
    policy: PolicyHandle,
    tls: Arc<ServerTls>,
    audit: AuditHandle,
) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            reload_policies(&dir, &policy, &audit).await;
            reload_tls(&tls, &audit).await;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, policy, tls, audit);
    }
}

/// Reads the listener's certificate, key, client CA and CRLs again and puts them in force
/// for new handshakes (established connections keep theirs), or keeps the configuration in
/// force when a file is bad; either way a `tls.reload` event records it. True when applied.
pub async fn reload_tls(tls: &Arc<ServerTls>, audit: &AuditHandle) -> bool {
    let t = tls.clone();
    let loaded = tokio::task::spawn_blocking(move || t.reload())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let (applied, reason) = match loaded {
        Ok(s) => {
            tracing::info!(subject = %s.subject, not_after = %s.not_after, crl_revoked = ?s.crl_revoked, "Listener certificates reloaded");
            (true, None)
        }
        Err(error) => {
            tracing::error!(%error, "Certificate reload refused; keeping the configuration in force");
            (false, Some(error))
        }
    };
    let s = tls.summary();
    audit.emit(crate::audit::Event {
        session_id: None,
        kind: crate::audit::EventKind::TlsReload {
            outcome: if applied { "applied" } else { "refused" }.into(),
            subject: s.subject.clone(),
            not_after: s.not_after.clone(),
            client_ca: s.client_ca,
            crl_revoked: s.crl_revoked,
            reason,
        },
    });
    applied
}

/// Loads the policy directory again and swaps it in, or keeps the set in force when the new
/// one does not load; either way a `config.reload` event records it. True when applied.
pub async fn reload_policies(
    dir: &std::path::Path,
    policy: &PolicyHandle,
    audit: &AuditHandle,
) -> bool {
    let d = dir.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || crate::policy::load_dir_with_digest(&d))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let applied = loaded.is_ok();
    let (reason, policy_sha256) = match loaded {
        Ok((engine, sha)) => {
            tracing::info!(roles = engine.role_names().len(), "Policies reloaded");
            policy.store(Arc::new(engine));
            (None, Some(sha))
        }
        Err(error) => {
            tracing::error!(%error, "Policy reload refused; keeping the previous set");
            (Some(error), None)
        }
    };
    audit.emit(crate::audit::Event {
        session_id: None,
        kind: crate::audit::EventKind::ConfigReload {
            what: "policies".into(),
            outcome: if applied { "applied" } else { "refused" }.into(),
            roles: u64::try_from(policy.load().role_names().len()).unwrap_or(u64::MAX),
            policy_sha256,
            reason,
        },
    });
    applied
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
    s.max_lifetime_secs = j.max_token_lifetime.as_secs();
    s.user_claim = j.user_claim.clone();
    s.groups_claim = j.groups_claim.clone();
    s.target_claim = j.target_claim.clone();
    s
}

/// The audit writer's settings; loads the checkpoint signing key from the vault (a
/// configured key that is missing or unusable stops start-up).
async fn audit_sink(
    config: &Config,
    store: &dyn vault::Store,
) -> anyhow::Result<crate::audit::SinkConfig> {
    let signing_key = match &config.audit_signing_key {
        None => None,
        Some(name) => {
            let cred = store
                .get(name)
                .await
                .with_context(|| format!("audit.signing_key: vault entry `{name}`"))?;
            let key = crate::audit::checkpoint::SigningKey::from_secret(cred.secret.expose())
                .with_context(|| format!("audit.signing_key: vault entry `{name}`"))?;
            tracing::info!(key_id = key.key_id(), "Audit checkpoints are signed");
            Some(Arc::new(key))
        }
    };
    Ok(crate::audit::SinkConfig {
        fsync: config.audit_fsync_interval.map_or(
            crate::audit::FsyncPolicy::EveryBatch,
            crate::audit::FsyncPolicy::Interval,
        ),
        rotate: crate::audit::RotatePolicy {
            daily: config.audit_rotate_daily,
            max_bytes: config.audit_max_file_bytes,
        },
        signing_key,
        noise_interval: config.audit_failures_interval,
        ..Default::default()
    })
}

/// The credential store settings for `config` (also used by the `vault` CLI).
pub fn store_settings(config: &Config) -> vault::StoreSettings {
    match &config.vault {
        crate::config::VaultConfig::File { path, key } => {
            let (key_file, key_env) = match key {
                crate::config::VaultKey::File(p) => (Some(p.clone()), None),
                crate::config::VaultKey::Env(e) => (None, Some(e.clone())),
            };
            vault::StoreSettings::File(vault::VaultSettings {
                path: path.clone(),
                key_file,
                key_env,
            })
        }
        crate::config::VaultConfig::Kv2(kv2) => vault::StoreSettings::Kv2(kv2.clone()),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn a_policy_reload_is_audited_and_a_broken_set_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let policies = dir.path().join("policies");
        std::fs::create_dir(&policies).unwrap();
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies/read-only-operator.toml"
        );
        std::fs::copy(shipped, policies.join("ro.toml")).unwrap();
        let (audit, task) = AuditTask::open(&dir.path().join("audit")).await.unwrap();
        let writer = tokio::spawn(task.run());
        let policy: PolicyHandle = Arc::new(arc_swap::ArcSwap::from_pointee(
            crate::policy::Engine::default(),
        ));

        assert!(reload_policies(&policies, &policy, &audit).await);
        let roles = policy.load().role_names().len();
        assert!(roles > 0);

        std::fs::write(policies.join("broken.toml"), "[[role]\nname = ").unwrap();
        assert!(!reload_policies(&policies, &policy, &audit).await);
        assert_eq!(policy.load().role_names().len(), roles, "old set kept");

        audit.flush().await;
        let text = std::fs::read_to_string(dir.path().join("audit/audit.jsonl")).unwrap();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|e: &serde_json::Value| e["event"] == "config.reload")
            .collect();
        assert_eq!(events.len(), 2, "{text}");
        assert_eq!(events[0]["outcome"], "applied");
        assert_eq!(events[0]["roles"], roles as u64);
        assert_eq!(events[0]["policy_sha256"].as_str().unwrap().len(), 64);
        assert!(events[1].get("policy_sha256").is_none());
        assert_eq!(events[1]["outcome"], "refused");
        assert!(
            events[1]["reason"]
                .as_str()
                .unwrap()
                .contains("broken.toml"),
            "{}",
            events[1]
        );
        drop(audit);
        writer.abort();
    }
}
