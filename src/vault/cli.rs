//! What `hopgate vault set|get|list|rm` do; the lead's CLI parses arguments and prints.
//!
//! Owns reading the password (stdin when it is not a terminal, otherwise a no-echo prompt
//! on the terminal, twice) and the four operations, against the local file or a KV v2
//! server (each call then runs on its own small runtime: call these outside async code).
//! Passwords never come from argv, and nothing here prints a password: `get` returns only
//! the user name.

use std::io::{BufRead, IsTerminal, Read};

use zeroize::Zeroizing;

use super::error::VaultError;
use super::kv2::Kv2Store;
use super::local::LocalVault;
use super::settings::StoreSettings;
use super::{validate_name, Store};
use crate::secret::{Credential, Secret};

/// Longest password read from stdin, in bytes.
const MAX_PASSWORD_LEN: u64 = 64 * 1024;

/// Where `vault set` reads the password from.
pub enum PasswordSource<'a> {
    /// Standard input when it is not a terminal (first line), else an interactive no-echo
    /// prompt on the terminal, asked twice.
    Auto,
    /// The first line of this reader (for tests and embedding).
    Reader(&'a mut dyn BufRead),
}

impl std::fmt::Debug for PasswordSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::Reader(_) => f.write_str("Reader(..)"),
        }
    }
}

/// What `vault set` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// The entry name.
    pub name: String,
    /// The account user name stored.
    pub user: String,
    /// Whether an existing entry was replaced.
    pub replaced: bool,
}

/// `hopgate vault set NAME --user USER`: stores a credential, creating the vault file if
/// needed. The password is read from `password` (never from the command line).
pub fn cmd_set(
    settings: impl Into<StoreSettings>,
    name: &str,
    user: &str,
    password: PasswordSource<'_>,
) -> Result<SetOutcome, VaultError> {
    // Validate before asking for a password, so a typo does not cost a prompt.
    validate_name(name)?;
    if user.is_empty() {
        return Err(VaultError::InvalidCredential {
            why: "the user name is empty",
        });
    }
    let replaced = match settings.into() {
        StoreSettings::File(settings) => {
            // Open (and check the key against an existing file) before prompting, too.
            let vault = LocalVault::open_or_create(&settings)?;
            let secret = read_password(password, name, user)?;
            vault.set(name, Credential::new(user, secret))?
        }
        StoreSettings::Kv2(settings) => {
            let store = Kv2Store::open(&settings)?;
            let secret = read_password(password, name, user)?;
            on_runtime(store.set(name, Credential::new(user, secret)))?
        }
    };
    Ok(SetOutcome {
        name: name.to_owned(),
        user: user.to_owned(),
        replaced,
    })
}

/// `hopgate vault get NAME`: the user name stored under `NAME` (never the password).
pub fn cmd_get(settings: impl Into<StoreSettings>, name: &str) -> Result<String, VaultError> {
    validate_name(name)?;
    match settings.into() {
        StoreSettings::File(settings) => Ok(LocalVault::open(&settings)?.get(name)?.user),
        StoreSettings::Kv2(settings) => {
            let store = Kv2Store::open(&settings)?;
            on_runtime(async { Ok(Store::get(&store, name).await?.user) })
        }
    }
}

/// `hopgate vault list`: all entry names, sorted.
pub fn cmd_list(settings: impl Into<StoreSettings>) -> Result<Vec<String>, VaultError> {
    match settings.into() {
        StoreSettings::File(settings) => Ok(LocalVault::open(&settings)?.list()),
        StoreSettings::Kv2(settings) => on_runtime(Kv2Store::open(&settings)?.names()),
    }
}

/// `hopgate vault rm NAME`: removes the entry (on a KV v2 server: with all its versions);
/// [`VaultError::NotFound`] if absent.
pub fn cmd_rm(settings: impl Into<StoreSettings>, name: &str) -> Result<(), VaultError> {
    let removed = match settings.into() {
        StoreSettings::File(settings) => LocalVault::open(&settings)?.remove(name)?,
        StoreSettings::Kv2(settings) => {
            let store = Kv2Store::open(&settings)?;
            on_runtime(store.remove(name))?
        }
    };
    if removed {
        Ok(())
    } else {
        Err(VaultError::NotFound {
            name: name.to_owned(),
        })
    }
}

/// Runs one future to completion on a fresh current-thread runtime.
fn on_runtime<T>(
    future: impl std::future::Future<Output = Result<T, VaultError>>,
) -> Result<T, VaultError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| VaultError::Io {
            op: "start a runtime for",
            path: "the vault server requests".into(),
            source,
        })?
        .block_on(future)
}

fn read_password(source: PasswordSource<'_>, name: &str, user: &str) -> Result<Secret, VaultError> {
    let mut password = match source {
        PasswordSource::Reader(r) => first_line(r)?,
        PasswordSource::Auto if !std::io::stdin().is_terminal() => {
            first_line(&mut std::io::stdin().lock())?
        }
        PasswordSource::Auto => {
            let prompt_err = |source| VaultError::Io {
                op: "read the password from",
                path: "the terminal".into(),
                source,
            };
            let first = Zeroizing::new(
                rpassword::prompt_password(format!("Password for {user} (vault entry {name}): "))
                    .map_err(prompt_err)?,
            );
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the password: ").map_err(prompt_err)?,
            );
            if *first != *again {
                return Err(VaultError::InvalidCredential {
                    why: "the two passwords differ",
                });
            }
            first
        }
    };
    if password.is_empty() {
        return Err(VaultError::InvalidCredential {
            why: "the password is empty",
        });
    }
    // Move the String out (no copy); the emptied wrapper is dropped.
    Ok(Secret::new(std::mem::take(&mut *password)))
}

/// The first line, without its `\n` or `\r\n`; bounded in length.
fn first_line(reader: &mut dyn BufRead) -> Result<Zeroizing<String>, VaultError> {
    let mut line = Zeroizing::new(String::new());
    reader
        .take(MAX_PASSWORD_LEN)
        .read_line(&mut line)
        .map_err(|source| VaultError::Io {
            op: "read the password from",
            path: "standard input".into(),
            source,
        })?;
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(line)
}
