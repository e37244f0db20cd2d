//! A HashiCorp Vault / OpenBao KV v2 secrets engine as a credential [`Store`].
//!
//! Owns mapping entry names to secret paths (`<mount>/data/<prefix>/<name>`), reading
//! secrets (fields `username` and `password`, plus any other string field such as a base64
//! `keytab`), listing, writing a new version with check-and-set, a short cache of read
//! secrets, and retrying once with a fresh token after a 403. Login lives in `auth`, the
//! HTTP exchange in `http`, the JSON shapes in `wire`. It never logs a token or a secret
//! value, and it only talks to the one configured server.

mod auth;
mod http;
pub mod settings;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use ::http::Method;
use zeroize::Zeroizing;

use self::auth::Auth;
use self::http::{HttpClient, Reply};
use self::wire::SecretData;
use super::error::VaultError;
use super::{validate_name, Store, StoreFuture};
use crate::secret::{Credential, Secret};

pub use self::settings::{Kv2Address, Kv2Auth, Kv2Settings, SecretSource};

/// The field holding the account name.
pub const USERNAME_FIELD: &str = "username";
/// The field holding the password.
pub const PASSWORD_FIELD: &str = "password";

/// Longest number of cached secrets.
const CACHE_CAPACITY: u64 = 10_000;

/// Credentials in a KV v2 mount of a Vault / OpenBao server.
pub struct Kv2Store {
    http: HttpClient,
    auth: Auth,
    mount: String,
    prefix: String,
    /// Entry name → latest secret version; `None` when the cache is disabled.
    cache: Option<moka::sync::Cache<String, Arc<SecretData>>>,
}

impl std::fmt::Debug for Kv2Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv2Store")
            .field("address", &self.http.address())
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

// === impl Kv2Store ===

impl Kv2Store {
    /// Prepares the store: checks the settings and loads the CA file. No request is sent
    /// until the first read, so a server that is down at start-up delays nothing.
    pub fn open(settings: &Kv2Settings) -> Result<Self, VaultError> {
        let bad = |key: &str, why: &str| VaultError::Settings {
            why: format!("{key} {why}"),
        };
        let mount = settings::normalize_path(&settings.mount, false)
            .map_err(|why| bad("vault.mount", why))?;
        let prefix = settings::normalize_path(&settings.prefix, true)
            .map_err(|why| bad("vault.prefix", why))?;
        let cache = (!settings.cache_ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(settings.cache_ttl)
                .build()
        });
        let http = HttpClient::new(settings)?;
        tracing::info!(
            address = http.address(),
            mount = %mount,
            prefix = %prefix,
            auth = match settings.auth {
                Kv2Auth::Token(_) => "token",
                Kv2Auth::AppRole { .. } => "approle",
            },
            cache_ttl_secs = settings.cache_ttl.as_secs(),
            "Credentials come from a KV v2 server"
        );
        Ok(Self {
            http,
            auth: Auth::new(settings.auth.clone()),
            mount,
            prefix,
            cache,
        })
    }

    /// Reads the latest version of entry `name` (from the cache when fresh).
    async fn read(&self, name: &str) -> Result<Arc<SecretData>, VaultError> {
        let path = self.data_path(name)?;
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(name)) {
            return Ok(hit);
        }
        let data =
            Arc::new(
                self.fetch(name, &path)
                    .await?
                    .ok_or_else(|| VaultError::NotFound {
                        name: name.to_owned(),
                    })?,
            );
        if let Some(cache) = &self.cache {
            cache.insert(name.to_owned(), data.clone());
        }
        Ok(data)
    }

    /// Reads `path` from the server; `None` when it does not exist or its latest version
    /// is deleted.
    async fn fetch(&self, name: &str, path: &str) -> Result<Option<SecretData>, VaultError> {
        let reply = self.call(Method::GET, path, None).await?;
        match reply.status {
            200 => wire::parse_read(&reply.body, path),
            404 => Ok(None),
            status => Err(self.status_error(status, &reply, path)),
        }
        .inspect(|found| {
            tracing::debug!(entry = name, found = found.is_some(), "Read vault secret");
        })
    }

    /// All entry names in the prefix folder, sorted (sub-folders and names the gateway
    /// could not use are left out).
    pub async fn names(&self) -> Result<Vec<String>, VaultError> {
        let path = if self.prefix.is_empty() {
            format!("{}/metadata/", self.mount)
        } else {
            format!("{}/metadata/{}/", self.mount, self.prefix)
        };
        let query = format!("{path}?list=true");
        let reply = self.call(Method::GET, &query, None).await?;
        match reply.status {
            200 => Ok(wire::parse_list(&reply.body, &path)?
                .into_iter()
                .filter(|n| usable_name(n).is_ok())
                .collect()),
            // An empty or missing folder.
            404 => Ok(Vec::new()),
            status => Err(self.status_error(status, &reply, &path)),
        }
    }

    /// Stores `credential` as a new version of entry `name`, keeping the secret's other
    /// fields (a `keytab`, say). Returns whether the entry existed. Check-and-set makes a
    /// concurrent change of an existing secret fail instead of being overwritten.
    pub async fn set(&self, name: &str, credential: Credential) -> Result<bool, VaultError> {
        if credential.user.is_empty() {
            return Err(VaultError::InvalidCredential {
                why: "the user name is empty",
            });
        }
        self.set_fields(
            name,
            BTreeMap::from([
                (USERNAME_FIELD.to_owned(), Secret::new(credential.user)),
                (PASSWORD_FIELD.to_owned(), credential.secret),
            ]),
        )
        .await
    }

    /// Sets `fields` in entry `name` (a new version; other fields are kept). Returns whether
    /// the entry existed.
    pub async fn set_fields(
        &self,
        name: &str,
        fields: BTreeMap<String, Secret>,
    ) -> Result<bool, VaultError> {
        let path = self.data_path(name)?;
        let existing = self.fetch(name, &path).await?;
        let existed = existing.is_some();
        // Check-and-set against the version read; a new (or deleted) secret is written
        // without it, as a deleted latest version still counts as the current one.
        let (mut merged, cas) = match existing {
            Some(d) => (d.fields, d.version),
            None => (BTreeMap::new(), None),
        };
        merged.extend(fields);
        let body = wire::write_body(&merged, cas)?;
        let reply = self.call(Method::POST, &path, Some(body)).await?;
        self.forget(name);
        match reply.status {
            200 | 204 => Ok(existed),
            status => Err(self.status_error(status, &reply, &path)),
        }
    }

    /// Removes entry `name` with all its versions (`DELETE <mount>/metadata/<path>`).
    /// Returns whether it existed.
    pub async fn remove(&self, name: &str) -> Result<bool, VaultError> {
        let data_path = self.data_path(name)?;
        if self.fetch(name, &data_path).await?.is_none() {
            return Ok(false);
        }
        let path = self.metadata_path(name)?;
        let reply = self.call(Method::DELETE, &path, None).await?;
        self.forget(name);
        match reply.status {
            200 | 204 => Ok(true),
            status => Err(self.status_error(status, &reply, &path)),
        }
    }

    /// Drops a cached secret (after a write, or when a host rejected its password).
    pub fn forget(&self, name: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(name);
        }
    }

    /// Sends a request with the current token; after a 403, once more with a fresh token
    /// when a new login yields a different one.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, VaultError> {
        let token = self.auth.token(&self.http).await?;
        let reply = self
            .http
            .send(method.clone(), path, Some(&token), body.clone())
            .await?;
        if reply.status != 403 {
            return Ok(reply);
        }
        match self.auth.after_denied(&self.http, &token).await? {
            Some(fresh) => {
                tracing::debug!("Vault refused the token, retrying with a new one");
                self.http.send(method, path, Some(&fresh), body).await
            }
            None => Ok(reply),
        }
    }

    fn status_error(&self, status: u16, reply: &Reply, path: &str) -> VaultError {
        let path = path.split('?').next().unwrap_or(path);
        wire::status_error(status, &reply.body, path, self.http.address())
    }

    /// `<mount>/data/<prefix>/<name>`.
    fn data_path(&self, name: &str) -> Result<String, VaultError> {
        usable_name(name)?;
        Ok(self.join("data", name))
    }

    /// `<mount>/metadata/<prefix>/<name>`.
    fn metadata_path(&self, name: &str) -> Result<String, VaultError> {
        usable_name(name)?;
        Ok(self.join("metadata", name))
    }

    fn join(&self, kind: &str, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("{}/{kind}/{name}", self.mount)
        } else {
            format!("{}/{kind}/{}/{name}", self.mount, self.prefix)
        }
    }
}

impl Store for Kv2Store {
    fn get<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Credential> {
        Box::pin(async move {
            let data = self.read(name).await?;
            credential_from(name, &data)
        })
    }

    fn get_field<'a>(&'a self, name: &'a str, field: &'a str) -> StoreFuture<'a, Secret> {
        Box::pin(async move {
            let data = self.read(name).await?;
            field_of(name, &data, field)
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(self.names())
    }

    fn forget(&self, name: &str) {
        Kv2Store::forget(self, name);
    }
}

/// An entry name as a path segment: a valid entry name that is not `.` or `..` (which a
/// server would resolve to another path).
fn usable_name(name: &str) -> Result<(), VaultError> {
    validate_name(name)?;
    if name.chars().all(|c| c == '.') {
        return Err(VaultError::InvalidName {
            name: name.to_owned(),
            why: "a name of only dots is not a secret path",
        });
    }
    Ok(())
}

/// The non-empty string field `field` of a secret.
fn field_of(name: &str, data: &SecretData, field: &str) -> Result<Secret, VaultError> {
    data.fields
        .get(field)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| VaultError::MissingField {
            name: name.to_owned(),
            field: field.to_owned(),
        })
}

fn credential_from(name: &str, data: &SecretData) -> Result<Credential, VaultError> {
    let user = field_of(name, data, USERNAME_FIELD)?;
    let password = field_of(name, data, PASSWORD_FIELD)?;
    Ok(Credential::new(user.expose(), password))
}
