//! One backend client per (host, vault entry), built on first use from the vault.
//!
//! A client owns a pool of authenticated connections, so reusing it across requests keeps
//! the NTLM handshakes off the hot path. When the host rejects the vaulted password (it was
//! rotated), the cached client is dropped so the next request reads the vault again.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::backend::delegate_env::{self, DelegateError};
use crate::backend::{
    BackendAuth, BackendClient, BackendError, BackendSettings, BackendTls, Credential, HostTarget,
    Scheme,
};
use crate::config::{Host, HostAuth, Scheme as CfgScheme};
use crate::vault::{resolve_ref, Store, VaultError};

#[derive(Debug, Error)]
pub enum BackendsError {
    #[error("credential reference for host {host}: {source}")]
    Reference { host: String, source: VaultError },
    #[error("vault entry {entry} for host {host}: {source}")]
    Vault {
        host: String,
        entry: String,
        source: VaultError,
    },
    #[error("backend client for host {host}: {source}")]
    Client {
        host: String,
        source: Box<BackendError>,
    },
    /// Delegation: the person has no realm principal, or the gateway's keytab is unusable.
    #[error("delegation for host {host}: {source}")]
    Delegate {
        host: String,
        source: Box<DelegateError>,
    },
}

/// A ready client and the account it logs in as (for the audit trail).
#[derive(Debug, Clone)]
pub struct Backend {
    pub client: BackendClient,
    pub entry: String,
    pub user: String,
}

/// Cache of backend clients.
#[derive(Clone)]
pub struct Backends {
    settings: BackendSettings,
    vault: Arc<dyn Store>,
    clients: moka::sync::Cache<(String, String), Backend>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("clients", &self.clients.entry_count())
            .finish()
    }
}

// === impl Backends ===

impl Backends {
    pub fn new(vault: Arc<dyn Store>) -> Self {
        Self::with_settings(vault, BackendSettings::default())
    }

    /// Backends whose clients use `settings` (pool sizes and timeouts).
    pub fn with_settings(vault: Arc<dyn Store>, settings: BackendSettings) -> Self {
        Self {
            settings,
            vault,
            clients: moka::sync::Cache::builder()
                .max_capacity(10_000)
                // Idle clients (and their connections) go away; a vault change is then
                // picked up on the next use.
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// The client for `host` acting for `principal` (per-person vault entries use
    /// `{user}` in the host's credential reference).
    pub async fn get(&self, host: &Host, principal: &str) -> Result<Backend, BackendsError> {
        if host.auth == HostAuth::Delegate {
            return self.get_delegate(host, principal).await;
        }
        let entry = resolve_ref(&host.credential, principal).map_err(|source| {
            BackendsError::Reference {
                host: host.name.clone(),
                source,
            }
        })?;
        let key = (host.name.clone(), entry.clone());
        if let Some(b) = self.clients.get(&key) {
            return Ok(b);
        }
        let cred = self
            .vault
            .get(&entry)
            .await
            .map_err(|source| BackendsError::Vault {
                host: host.name.clone(),
                entry: entry.clone(),
                source,
            })?;
        let user = cred.user.clone();
        let client = BackendClient::with_settings(
            target_for(host),
            Credential::new(
                login_name(host, &cred.user),
                cred.secret.expose().to_string(),
            ),
            self.settings.clone(),
        )
        .map_err(|source| BackendsError::Client {
            host: host.name.clone(),
            source: Box::new(source),
        })?;
        let backend = Backend {
            client,
            entry,
            user,
        };
        self.clients.insert(key, backend.clone());
        Ok(backend)
    }

    /// The client for a `delegate` host: one per person (their realm principal), logging in
    /// through the gateway's keytab (the host's vault entry: user = the gateway's principal,
    /// secret = base64 of the keytab file).
    async fn get_delegate(&self, host: &Host, principal: &str) -> Result<Backend, BackendsError> {
        let delegate_err = |source| BackendsError::Delegate {
            host: host.name.clone(),
            source: Box::new(source),
        };
        let k = host.kerberos.as_ref();
        let realm = k.and_then(|k| k.realm.as_deref()).unwrap_or_default();
        let template = k
            .and_then(|k| k.user_principal.as_deref())
            .unwrap_or(delegate_env::USER_PLACEHOLDER);
        let user = delegate_env::impersonation_principal(template, principal, realm)
            .map_err(delegate_err)?;
        // The entry field of the cache key and of the audit trail: the person's principal.
        let entry = format!("delegate:{user}");
        let key = (host.name.clone(), entry.clone());
        if let Some(b) = self.clients.get(&key) {
            return Ok(b);
        }
        let cred =
            self.vault
                .get(&host.credential)
                .await
                .map_err(|source| BackendsError::Vault {
                    host: host.name.clone(),
                    entry: host.credential.clone(),
                    source,
                })?;
        let keytab = delegate_env::decode_keytab(&host.credential, cred.secret.expose())
            .map_err(delegate_err)?;
        delegate_env::register_keytab(&host.credential, &keytab).map_err(delegate_err)?;
        let mut target = target_for(host);
        target.impersonator = Some(login_name(host, &cred.user));
        // No password exists: the credential only names the person.
        let client = BackendClient::with_settings(
            target,
            Credential::new(user.clone(), String::new()),
            self.settings.clone(),
        )
        .map_err(|source| BackendsError::Client {
            host: host.name.clone(),
            source: Box::new(source),
        })?;
        let backend = Backend {
            client,
            entry,
            user,
        };
        self.clients.insert(key, backend.clone());
        Ok(backend)
    }

    /// Forgets the client for (host, entry), e.g. after the host rejected its password;
    /// the store drops its cached copy too, so the next use reads the rotated password.
    pub fn invalidate(&self, host: &str, entry: &str) {
        self.clients
            .invalidate(&(host.to_string(), entry.to_string()));
        self.vault.forget(entry);
    }
}

/// The backend's view of an inventory entry.
pub fn target_for(host: &Host) -> HostTarget {
    let scheme = match host.scheme {
        CfgScheme::Http => Scheme::Http,
        CfgScheme::Https => Scheme::Https,
    };
    let auth = match host.auth {
        HostAuth::Ntlm => BackendAuth::Ntlm,
        HostAuth::Basic => BackendAuth::Basic,
        HostAuth::Kerberos => BackendAuth::Kerberos,
        HostAuth::Negotiate => BackendAuth::Negotiate,
        HostAuth::CredSsp => BackendAuth::CredSsp,
        HostAuth::Delegate => BackendAuth::Delegate,
    };
    let mut t = HostTarget::new(&host.name, &host.address, host.port, scheme, auth);
    t.tls = BackendTls {
        ca_file: host.ca_file.clone(),
        insecure_skip_verify: host.insecure_skip_verify,
        server_name: host.tls_server_name.clone(),
    };
    if let Some(k) = &host.kerberos {
        t.kdc = Some(k.kdc.clone());
        t.spn = k.spn.clone();
        t.ntlm_fallback = k.ntlm_fallback;
    }
    t
}

/// The user name the gateway logs in with: a Kerberos host's `realm` completes a vaulted
/// name that has none (`svc` → `svc@REALM`).
fn login_name(host: &Host, user: &str) -> String {
    match host.kerberos.as_ref().and_then(|k| k.realm.as_deref()) {
        Some(realm) if !user.contains('@') && !user.contains('\\') => format!("{user}@{realm}"),
        _ => user.to_owned(),
    }
}

/// The URL the host is addressed by, for `wsa:To` on the backend leg.
pub fn backend_url(host: &Host) -> String {
    let scheme = match host.scheme {
        CfgScheme::Http => "http",
        CfgScheme::Https => "https",
    };
    let authority = if host.address.contains(':') && !host.address.starts_with('[') {
        format!("[{}]:{}", host.address, host.port)
    } else {
        format!("{}:{}", host.address, host.port)
    };
    format!("{scheme}://{authority}/wsman")
}
