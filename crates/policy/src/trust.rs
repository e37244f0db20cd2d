//! Trusted code by content: scripts a role runs without analysing them, named by their
//! SHA-256 (listed in the role, or every file of a directory the gateway reads at start-up
//! and on reload and hands in as [`TrustedDir`]). A trusted script's text is not parsed, so
//! code the analyser cannot follow (Ansible's wrappers and modules: `if`, `foreach`,
//! variables) can run under a role with deny rules; its arguments and input are still
//! judged. A script that differs by one byte has another hash and is analysed as usual.
//!
//! Pure: the gateway reads the files; this module only hashes what it is given.

use crate::prelude::*;

use alloc::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256 as Hasher};

/// A SHA-256 digest.
pub type Sha256 = [u8; 32];

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Sha256 {
    Hasher::digest(bytes).into()
}

/// Lower-case hex of a digest (as roles list them and the audit shows them).
pub fn hex(h: &Sha256) -> String {
    let mut s = String::with_capacity(64);
    for b in h {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses 64 hex digits.
pub fn parse_hex(text: &str) -> Option<Sha256> {
    let t = text.trim();
    if t.len() != 64 || !t.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(t.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What ansible-core's `_encode_script` puts before a script in strict mode.
const ANSIBLE_STRICT_PREFIX: &str = "Set-StrictMode -Version Latest\r\n";
/// What it puts after a script to propagate its exit code.
const ANSIBLE_RC_SUFFIX: &str = "\r\nIf (-not $?) { If (Get-Variable LASTEXITCODE -ErrorAction \
                                 SilentlyContinue) { exit $LASTEXITCODE } Else { exit 1 } }\r\n";

/// The forms in which a trusted file's text reaches a host, hashed: the file as it is,
/// and the file as a PowerShell `-EncodedCommand` carries it when Ansible encodes it
/// (every line trimmed, blank lines dropped, lines joined by `\n`; with or without
/// Ansible's fixed strict-mode line before it and exit-code lines after it: ansible-core's
/// `_encode_script`). All are the same code; any other change gives another hash.
pub fn content_hashes(content: &[u8]) -> Vec<Sha256> {
    let mut out = vec![sha256(content)];
    if let Ok(text) = core::str::from_utf8(content) {
        for (strict, rc) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut script = String::new();
            if strict {
                script.push_str(ANSIBLE_STRICT_PREFIX);
            }
            script.push_str(text);
            if rc {
                script.push_str(ANSIBLE_RC_SUFFIX);
            }
            let h = sha256(encoded_form(&script).as_bytes());
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// Ansible's normalisation of a script it sends as `-EncodedCommand`.
pub fn encoded_form(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

/// One file of a trusted directory, as the gateway read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedFile {
    /// Path relative to its directory, with `/` separators (`plugins/modules/win_ping.ps1`).
    pub path: String,
    /// [`content_hashes`] of its bytes.
    pub hashes: Vec<Sha256>,
}

/// A directory a role trusts, with every file in it (recursively) that the gateway read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDir {
    /// The directory as the role names it.
    pub dir: String,
    /// Its files.
    pub files: Vec<TrustedFile>,
}

/// What a trusted hash is known as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    /// The directory it was found in, or empty for a hash a role lists.
    pub(crate) dir: String,
    /// Path relative to `dir`, or the hex digest for a listed hash.
    pub(crate) path: String,
}

/// Every hash any role trusts, and what it is (for messages and module identity).
#[derive(Debug, Default)]
pub(crate) struct TrustIndex {
    pub(crate) known: BTreeMap<Sha256, Known>,
}

impl TrustIndex {
    /// What `text` is, when some role trusts it.
    pub(crate) fn lookup(&self, text: &str) -> Option<(Sha256, &Known)> {
        if self.known.is_empty() {
            return None;
        }
        let h = sha256(text.as_bytes());
        self.known.get(&h).map(|k| (h, k))
    }
}

/// A role's trust, as compiled: listed hashes plus the directories it names (expanded
/// into `hashes` once the gateway has read them).
#[derive(Debug, Default)]
pub(crate) struct TrustRules {
    pub(crate) hashes: BTreeSet<Sha256>,
    pub(crate) dirs: Vec<String>,
}

impl TrustRules {
    pub(crate) fn compile(doc: &crate::file::TrustDoc) -> Result<Self, String> {
        let mut hashes = BTreeSet::new();
        for h in &doc.sha256 {
            hashes.insert(
                parse_hex(h).ok_or_else(|| format!("trust.sha256 '{h}' is not 64 hex digits"))?,
            );
        }
        for d in &doc.dirs {
            if d.trim().is_empty() {
                return Err("trust.dirs has an empty directory".into());
            }
        }
        Ok(Self {
            hashes,
            dirs: doc.dirs.clone(),
        })
    }
}

/// Expands each role's directories into hashes and builds the index of everything
/// trusted. A directory a role names that the gateway could not read trusts nothing (its
/// scripts are analysed like any other, which fails closed) and is reported in
/// `warnings`, so that one missing install does not take every other role down with it.
pub(crate) fn resolve(
    roles: &mut [crate::role::Role],
    dirs: &[TrustedDir],
    warnings: &mut Vec<String>,
) -> TrustIndex {
    let mut index = TrustIndex::default();
    for role in roles.iter_mut() {
        for h in &role.trust.hashes {
            index.known.entry(*h).or_insert_with(|| Known {
                dir: String::new(),
                path: hex(h),
            });
        }
        for d in role.trust.dirs.clone() {
            let Some(found) = dirs.iter().find(|t| t.dir == d) else {
                warnings.push(format!(
                    "{}: role '{}': trusted directory '{d}' was not read: nothing in it is \
                     trusted",
                    role.source, role.name
                ));
                continue;
            };
            for f in &found.files {
                for h in &f.hashes {
                    role.trust.hashes.insert(*h);
                    index.known.entry(*h).or_insert_with(|| Known {
                        dir: d.clone(),
                        path: f.path.clone(),
                    });
                }
            }
        }
    }
    index
}

/// Every directory the roles of `sources` trust, for the gateway to read.
pub fn trusted_dirs(sources: &[crate::PolicySource]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sources
        .iter()
        .filter(|s| s.path.to_ascii_lowercase().ends_with(".toml"))
    {
        // Errors surface when the engine is built; here only what parses counts.
        let Ok(doc) = toml::from_str::<crate::file::FileDoc>(&s.text) else {
            continue;
        };
        for d in doc
            .role
            .iter()
            .filter_map(|r| r.trust.as_ref())
            .flat_map(|t| &t.dirs)
        {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
    }
    out
}
