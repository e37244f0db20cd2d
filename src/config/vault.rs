//! Validation of `[vault]`: the local encrypted file or a Vault / OpenBao KV v2 server.
//!
//! Owns turning [`VaultFile`] into [`VaultConfig`], with errors naming the key
//! (`vault.address`, `vault.approle.secret_id_file`). Keys of the other kind are refused
//! rather than ignored, so a half-converted config is caught at start-up. No secret is
//! read here: tokens, role ids and secret ids are files or variable names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{AppRoleFile, VaultFile};
use super::{existing_file, ConfigError, VaultConfig, VaultKey};
use crate::vault::kv2::settings::{
    normalize_path, DEFAULT_APPROLE_MOUNT, DEFAULT_CACHE_TTL, DEFAULT_MOUNT, DEFAULT_TIMEOUT,
};
use crate::vault::kv2::{Kv2Address, Kv2Auth, Kv2Settings, SecretSource};

/// Validates `[vault]`.
pub(super) fn validate_vault(
    v: &VaultFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<VaultConfig, ConfigError> {
    match v.kind.as_deref() {
        None | Some("file") => validate_file(v, resolve),
        Some("kv2") => validate_kv2(v, resolve).map(VaultConfig::Kv2),
        Some(other) => Err(ConfigError::invalid(
            "vault.kind",
            format!("`{other}` must be \"file\" or \"kv2\""),
        )),
    }
}

fn validate_file(
    v: &VaultFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<VaultConfig, ConfigError> {
    let kv2_only = [
        ("address", v.address.is_some()),
        ("mount", v.mount.is_some()),
        ("prefix", v.prefix.is_some()),
        ("token_env", v.token_env.is_some()),
        ("token_file", v.token_file.is_some()),
        ("ca_file", v.ca_file.is_some()),
        ("cache_ttl_secs", v.cache_ttl_secs.is_some()),
        ("timeout_secs", v.timeout_secs.is_some()),
        ("namespace", v.namespace.is_some()),
        ("approle", v.approle.is_some()),
    ];
    if let Some((key, _)) = kv2_only.iter().find(|(_, set)| *set) {
        return Err(ConfigError::invalid(
            format!("vault.{key}"),
            "only used with kind = \"kv2\"",
        ));
    }
    let path = v.path.as_deref().ok_or_else(|| {
        ConfigError::invalid("vault.path", "is required: the encrypted vault file")
    })?;
    let key = match (&v.key_file, &v.key_env) {
        (Some(f), None) => VaultKey::File(resolve(f)),
        (None, Some(e)) if !e.is_empty() => VaultKey::Env(e.clone()),
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "vault.key_env",
                "must name an environment variable",
            ))
        }
        _ => {
            return Err(ConfigError::invalid(
                "vault",
                "set exactly one of `key_file` and `key_env`",
            ))
        }
    };
    Ok(VaultConfig::File {
        path: resolve(path),
        key,
    })
}

fn validate_kv2(
    v: &VaultFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Kv2Settings, ConfigError> {
    let file_only = [
        ("path", v.path.is_some()),
        ("key_file", v.key_file.is_some()),
        ("key_env", v.key_env.is_some()),
    ];
    if let Some((key, _)) = file_only.iter().find(|(_, set)| *set) {
        return Err(ConfigError::invalid(
            format!("vault.{key}"),
            "only used with kind = \"file\" (a kv2 server needs no local key)",
        ));
    }
    let text = v.address.as_deref().ok_or_else(|| {
        ConfigError::invalid(
            "vault.address",
            "is required with kind = \"kv2\", e.g. \"https://vault.example.com:8200\"",
        )
    })?;
    let address = Kv2Address::parse(text)
        .map_err(|why| ConfigError::invalid("vault.address", format!("`{text}` {why}")))?;
    let ca_file = match (&v.ca_file, address.tls) {
        (Some(p), true) => Some(existing_file("vault.ca_file", &resolve(p))?),
        (None, true) => {
            return Err(ConfigError::invalid(
                "vault.ca_file",
                "an https address needs the CA file the server's certificate chains to",
            ))
        }
        (Some(_), false) => {
            return Err(ConfigError::invalid(
                "vault.ca_file",
                "only used with an https address",
            ))
        }
        (None, false) => None,
    };
    let path_key = |key: &str, value: Option<&str>, default: &str, allow_empty: bool| {
        normalize_path(value.unwrap_or(default), allow_empty)
            .map_err(|why| ConfigError::invalid(format!("vault.{key}"), why))
    };
    let mount = path_key("mount", v.mount.as_deref(), DEFAULT_MOUNT, false)?;
    let prefix = path_key("prefix", v.prefix.as_deref(), "", true)?;
    let namespace = v
        .namespace
        .as_deref()
        .map(|n| path_key("namespace", Some(n), "", false))
        .transpose()?;
    let timeout = match v.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(0) => {
            return Err(ConfigError::invalid(
                "vault.timeout_secs",
                "must be greater than zero",
            ))
        }
        Some(s) => Duration::from_secs(s),
    };
    Ok(Kv2Settings {
        address,
        mount,
        prefix,
        auth: validate_auth(v, resolve)?,
        ca_file,
        namespace,
        cache_ttl: v
            .cache_ttl_secs
            .map_or(DEFAULT_CACHE_TTL, Duration::from_secs),
        timeout,
    })
}

fn validate_auth(
    v: &VaultFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Kv2Auth, ConfigError> {
    match (&v.token_env, &v.token_file, &v.approle) {
        (Some(_), None, None) | (None, Some(_), None) => Ok(Kv2Auth::Token(source(
            "vault.token_file",
            "vault.token_env",
            v.token_file.as_deref(),
            v.token_env.as_deref(),
            resolve,
        )?)),
        (None, None, Some(a)) => validate_approle(a, resolve),
        _ => Err(ConfigError::invalid(
            "vault",
            "set exactly one of `token_env`, `token_file` and `[vault.approle]` \
             (the token never goes in the config file)",
        )),
    }
}

fn validate_approle(
    a: &AppRoleFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Kv2Auth, ConfigError> {
    let mount = normalize_path(a.mount.as_deref().unwrap_or(DEFAULT_APPROLE_MOUNT), false)
        .map_err(|why| ConfigError::invalid("vault.approle.mount", why))?;
    let one = |name: &str, file: Option<&Path>, env: Option<&str>| match (file, env) {
        (Some(_), None) | (None, Some(_)) => source(
            &format!("vault.approle.{name}_file"),
            &format!("vault.approle.{name}_env"),
            file,
            env,
            resolve,
        ),
        _ => Err(ConfigError::invalid(
            "vault.approle",
            format!("set exactly one of `{name}_file` and `{name}_env`"),
        )),
    };
    Ok(Kv2Auth::AppRole {
        mount,
        role_id: one(
            "role_id",
            a.role_id_file.as_deref(),
            a.role_id_env.as_deref(),
        )?,
        secret_id: one(
            "secret_id",
            a.secret_id_file.as_deref(),
            a.secret_id_env.as_deref(),
        )?,
    })
}

/// A secret from exactly one of a file (which must exist) or a variable name.
fn source(
    file_key: &str,
    env_key: &str,
    file: Option<&Path>,
    env: Option<&str>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SecretSource, ConfigError> {
    match (file, env) {
        (Some(f), None) => Ok(SecretSource::File(existing_file(file_key, &resolve(f))?)),
        (None, Some(e)) if valid_env_name(e) => Ok(SecretSource::Env(e.to_owned())),
        (None, Some(_)) => Err(ConfigError::invalid(
            env_key,
            "must name an environment variable (letters, digits, `_`)",
        )),
        _ => Err(ConfigError::invalid(
            file_key,
            format!("set exactly one of `{file_key}` and `{env_key}`"),
        )),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}
