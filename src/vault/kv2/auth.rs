//! The gateway's Vault token: where it comes from and when a new one is needed.
//!
//! Owns the current token and the login: a configured token (file or variable), or an
//! AppRole login (`POST /v1/auth/<mount>/login`) repeated when two thirds of the token's
//! lease have passed, so requests never run into an expired token. After a 403 the caller
//! may ask once for a fresh token (a revoked AppRole token, a rotated token file). Logins
//! are serialised: concurrent requests wait for one login instead of starting many. Tokens,
//! role ids and secret ids are never logged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::Method;

use super::http::HttpClient;
use super::settings::{Kv2Auth, SecretSource};
use super::wire;
use crate::vault::error::VaultError;
use crate::vault::secret::Secret;

/// A token and when to replace it.
struct Current {
    token: Secret,
    /// `None`: never (a configured token, or a lease of zero).
    refresh_at: Option<Instant>,
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

    /// The token to use now; logs in first when there is none or its lease is two-thirds
    /// over.
    pub(crate) async fn token(&self, http: &HttpClient) -> Result<Secret, VaultError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            if c.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(c.token.clone());
            }
            tracing::debug!("Vault token lease nearly over, logging in again");
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
            Kv2Auth::Token(source) => Ok(Current {
                token: load(source, "vault token")
                    .await
                    .map_err(|e| VaultError::Login {
                        method: "token",
                        why: e.to_string(),
                    })?,
                refresh_at: None,
            }),
            Kv2Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
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
                    // Vault answers a wrong role or secret id with 400 "invalid role or
                    // secret ID" (older versions) or 403.
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
                    "Logged in to the vault server with AppRole"
                );
                Ok(Current {
                    token: login.token,
                    refresh_at: refresh_at(Instant::now(), login.lease),
                })
            }
        }
    }
}

/// When to log in again for a lease starting `now`: after two thirds of it, so a slow
/// server or a clock step still leaves time. `None` for a lease of zero (no expiry).
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
