//! The gateway's Vault token: where it comes from and when it must be renewed or replaced.
//!
//! Owns the current token and its lifecycle: a configured token (file or variable, its
//! lifetime read with `auth/token/lookup-self`), or an AppRole login (`POST
//! /v1/auth/<mount>/login`). When two thirds of the lease have passed, a renewable token
//! is renewed (`auth/token/renew-self`); when it cannot be (not renewable, renewal refused,
//! or it reached its maximum lifetime) the gateway logs in again (AppRole) or re-reads the
//! token source. So requests never run into an expired token. After a 403 the caller may
//! ask once for a fresh token (a revoked AppRole token, a rotated token file). Logins are
//! serialised: concurrent requests wait for one login instead of starting many. Tokens,
//! role ids and secret ids are never logged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::Method;
use zeroize::Zeroizing;

use super::http::HttpClient;
use super::settings::{Kv2Auth, SecretSource};
use super::wire;
use crate::secret::Secret;
use crate::vault::error::VaultError;

/// How long a token whose lifetime could not be looked up is used before looking again.
const UNKNOWN_LEASE_RECHECK: Duration = Duration::from_secs(300);

/// A token and when to renew or replace it.
struct Current {
    token: Secret,
    /// `None`: never (a lease of zero).
    refresh_at: Option<Instant>,
    /// Renew at `refresh_at` instead of logging in again.
    renewable: bool,
    /// The lease at login: a renewal granting much less means the token is near its
    /// maximum lifetime.
    lease: Duration,
}

/// Holds the token; hands out copies to requests.
pub(crate) struct Auth {
    method: Kv2Auth,
    current: tokio::sync::Mutex<Option<Current>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.method {
            Kv2Auth::Token(_) => "token",
            Kv2Auth::AppRole { .. } => "approle",
        };
        f.debug_struct("Auth")
            .field("method", &method)
            .finish_non_exhaustive()
    }
}

// === impl Auth ===

impl Auth {
    pub(crate) fn new(method: Kv2Auth) -> Self {
        Self {
            method,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The token to use now; renews it or logs in first when its lease is two-thirds over.
    pub(crate) async fn token(&self, http: &HttpClient) -> Result<Secret, VaultError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_mut() {
            if c.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(c.token.clone());
            }
            if c.renewable {
                match renew(http, &c.token).await {
                    // Less than a third of the original lease: near the maximum lifetime,
                    // a new login is due.
                    Ok(lease) if !lease.is_zero() && lease >= c.lease / 3 => {
                        tracing::debug!(lease_secs = lease.as_secs(), "Renewed the vault token");
                        c.refresh_at = refresh_at(Instant::now(), lease);
                        return Ok(c.token.clone());
                    }
                    Ok(_) => tracing::debug!("Vault token near its maximum lifetime"),
                    Err(error) => {
                        tracing::warn!(%error, "Vault token renewal failed, logging in again");
                    }
                }
            }
        }
        let fresh = self.login(http).await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// After the server refused `used` with 403: a different token to retry with, or `None`
    /// when a new login yields the same token (the policy really denies the path).
    pub(crate) async fn after_denied(
        &self,
        http: &HttpClient,
        used: &Secret,
    ) -> Result<Option<Secret>, VaultError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            if c.token != *used {
                // Another request already replaced it.
                return Ok(Some(c.token.clone()));
            }
        }
        let fresh = self.login(http).await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok((token != *used).then_some(token))
    }

    async fn login(&self, http: &HttpClient) -> Result<Current, VaultError> {
        match &self.method {
            Kv2Auth::Token(source) => {
                let token = load(source, "vault token")
                    .await
                    .map_err(|e| VaultError::Login {
                        method: "token",
                        why: e.to_string(),
                    })?;
                let now = Instant::now();
                Ok(match lookup(http, &token).await? {
                    Some((ttl, renewable)) => Current {
                        token,
                        refresh_at: refresh_at(now, ttl),
                        renewable,
                        lease: ttl,
                    },
                    // Lookup denied by policy: use the token, look again later.
                    None => Current {
                        token,
                        refresh_at: Some(now + UNKNOWN_LEASE_RECHECK),
                        renewable: false,
                        lease: Duration::ZERO,
                    },
                })
            }
            Kv2Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => approle_login(http, mount, role_id, secret_id).await,
        }
    }
}

async fn approle_login(
    http: &HttpClient,
    mount: &str,
    role_id: &SecretSource,
    secret_id: &SecretSource,
) -> Result<Current, VaultError> {
    let login_err = |why: String| VaultError::Login {
        method: "approle",
        why,
    };
    let role_id = load(role_id, "approle role_id")
        .await
        .map_err(|e| login_err(e.to_string()))?;
    let secret_id = load(secret_id, "approle secret_id")
        .await
        .map_err(|e| login_err(e.to_string()))?;
    let fields = BTreeMap::from([
        ("role_id".to_owned(), role_id),
        ("secret_id".to_owned(), secret_id),
    ]);
    let body = wire::json_object(&fields)?;
    let path = format!("auth/{mount}/login");
    let reply = http.send(Method::POST, &path, None, Some(body)).await?;
    match reply.status {
        200 => {}
        // A wrong role or secret id: 400 "invalid role or secret ID" (403 in some versions).
        400 | 403 => {
            return Err(login_err(non_empty(wire::error_text(&reply.body))));
        }
        status => {
            return Err(wire::status_error(
                status,
                &reply.body,
                &path,
                http.address(),
            ))
        }
    }
    let login = wire::parse_login(&reply.body, &path)?;
    tracing::info!(
        lease_secs = login.lease.as_secs(),
        renewable = login.renewable,
        "Logged in to the vault server with AppRole"
    );
    Ok(Current {
        token: login.token,
        refresh_at: refresh_at(Instant::now(), login.lease),
        renewable: login.renewable,
        lease: login.lease,
    })
}

/// The remaining lifetime of a configured token and whether it is renewable; `None` when
/// the policy does not allow the lookup (or the server does not offer it).
async fn lookup(http: &HttpClient, token: &Secret) -> Result<Option<(Duration, bool)>, VaultError> {
    let path = "auth/token/lookup-self";
    let reply = http.send(Method::GET, path, Some(token), None).await?;
    match reply.status {
        200 => wire::parse_lookup(&reply.body, path).map(Some),
        503 => Err(wire::status_error(503, &reply.body, path, http.address())),
        status => {
            tracing::debug!(status, "Vault token lookup not possible, lifetime unknown");
            Ok(None)
        }
    }
}

/// Renews the token; the new lease.
async fn renew(http: &HttpClient, token: &Secret) -> Result<Duration, VaultError> {
    let path = "auth/token/renew-self";
    let body = Zeroizing::new(b"{}".to_vec());
    let reply = http
        .send(Method::POST, path, Some(token), Some(body))
        .await?;
    if reply.status != 200 {
        return Err(wire::status_error(
            reply.status,
            &reply.body,
            path,
            http.address(),
        ));
    }
    Ok(wire::parse_login(&reply.body, path)?.lease)
}

/// When to renew or log in again for a lease starting `now`: after two thirds of it, so a
/// slow server or a clock step still leaves time. `None` for a lease of zero (no expiry).
pub(crate) fn refresh_at(now: Instant, lease: Duration) -> Option<Instant> {
    if lease.is_zero() {
        None
    } else {
        Some(now + lease.mul_f64(2.0 / 3.0))
    }
}

/// Reads a login secret off the runtime (a file read may block).
async fn load(source: &SecretSource, what: &'static str) -> Result<Secret, VaultError> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || source.load(what))
        .await
        .map_err(|e| VaultError::KeySource {
            why: format!("{what}: reading it failed: {e}"),
        })?
}

fn non_empty(text: String) -> String {
    if text.is_empty() {
        "the server gave no reason".to_owned()
    } else {
        text
    }
}
