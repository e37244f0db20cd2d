//! What `hopgate vault set|get|list|rm` do; the lead's CLI parses arguments and prints.
//!
//! Owns reading the password (stdin when it is not a terminal, otherwise a no-echo prompt
//! on the terminal, twice) and the four operations. Passwords never come from argv, and
//! nothing here prints a password: `get` returns only the user name.

use std::io::{BufRead, IsTerminal, Read};

use zeroize::Zeroizing;

use super::error::VaultError;
use super::local::LocalVault;
use super::secret::{Credential, Secret};
use super::settings::VaultSettings;
use super::{validate_name, Store};

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
    settings: &VaultSettings,
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
    // Open (and check the key against an existing file) before prompting, too.
    let vault = LocalVault::open_or_create(settings)?;
    let secret = read_password(password, name, user)?;
    let replaced = vault.set(name, Credential::new(user, secret))?;
    Ok(SetOutcome {
        name: name.to_owned(),
        user: user.to_owned(),
        replaced,
    })
}

/// `hopgate vault get NAME`: the user name stored under `NAME` (never the password).
pub fn cmd_get(settings: &VaultSettings, name: &str) -> Result<String, VaultError> {
    validate_name(name)?;
    Ok(LocalVault::open(settings)?.get(name)?.user)
}

/// `hopgate vault list`: all entry names, sorted.
pub fn cmd_list(settings: &VaultSettings) -> Result<Vec<String>, VaultError> {
    Ok(LocalVault::open(settings)?.list())
}

/// `hopgate vault rm NAME`: removes the entry; [`VaultError::NotFound`] if absent.
pub fn cmd_rm(settings: &VaultSettings, name: &str) -> Result<(), VaultError> {
    if LocalVault::open(settings)?.remove(name)? {
        Ok(())
    } else {
        Err(VaultError::NotFound {
            name: name.to_owned(),
        })
    }
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
