//! Reading a policy directory into sources for the pure engine
//! ([`Engine::from_sources`], [`lint_sources`]).

use std::path::Path;

use hopgate_policy::trust::content_hashes;
use hopgate_policy::{
    lint_sources, trusted_dirs, Engine, LintFinding, PolicyError, PolicySource, Severity,
    TrustedDir, TrustedFile,
};

/// Most files read from one trusted directory (an installed collection has a few
/// hundred scripts; a directory with far more was probably named by mistake).
const MAX_TRUSTED_FILES: usize = 20_000;
/// Largest file hashed in a trusted directory; larger ones are skipped (no script is).
const MAX_TRUSTED_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads every `*.toml` and `*.psrc` file directly in `dir` (sorted by name, so load
/// order and first-match role order are stable).
pub(crate) fn read_sources(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
    let io = |path: &Path, e: std::io::Error| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_file() && matches!(ext.as_deref(), Some("toml") | Some("psrc")) {
            paths.push(path);
        }
    }
    paths.sort();
    let mut sources = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        sources.push(PolicySource {
            path: path.display().to_string(),
            text,
        });
    }
    Ok(sources)
}

/// Loads and validates a policy directory (start-up and SIGHUP). On error the caller
/// keeps its current engine.
pub fn load_dir(dir: &Path) -> Result<Engine, PolicyError> {
    let sources = read_sources(dir)?;
    engine_from(dir, &sources)
}

/// The engine of `sources` read from `dir`, with the trusted directories they name.
fn engine_from(dir: &Path, sources: &[PolicySource]) -> Result<Engine, PolicyError> {
    let mut trusted = Vec::new();
    for name in trusted_dirs(sources) {
        match read_trusted_dir(dir, &name) {
            Ok(t) => trusted.push(t),
            // Not handed in: the engine trusts nothing from it and warns.
            Err(e) => tracing::warn!(dir = %name, error = %e, "Trusted directory not read"),
        }
    }
    let engine = Engine::from_sources_with_trust(sources, &trusted)?;
    for w in engine.warnings() {
        tracing::warn!(warning = %w, "Policy loaded with a warning");
    }
    Ok(engine)
}

/// Hashes every regular file under the directory a role trusts (`name`, relative to the
/// policy directory unless absolute), recursively, without following symbolic links out.
fn read_trusted_dir(policy_dir: &Path, name: &str) -> Result<TrustedDir, PolicyError> {
    let root = policy_dir.join(name);
    let io = |path: &Path, e: std::io::Error| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let len = entry.metadata().map_err(|e| io(&path, e))?.len();
            if len > MAX_TRUSTED_FILE_BYTES {
                continue;
            }
            if files.len() >= MAX_TRUSTED_FILES {
                return Err(PolicyError::Io {
                    path: root.display().to_string(),
                    message: format!("more than {MAX_TRUSTED_FILES} files to trust"),
                });
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push(TrustedFile {
                path: rel,
                hashes: content_hashes(&bytes),
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(TrustedDir {
        dir: name.to_string(),
        files,
    })
}

/// As [`load_dir`], with the SHA-256 (hex) of the set: each file's name (not its
/// directory) and text, in load order, so the record can say which set was in force.
pub fn load_dir_with_digest(dir: &Path) -> Result<(Engine, String), PolicyError> {
    use sha2::{Digest, Sha256};
    let sources = read_sources(dir)?;
    let mut sha = Sha256::new();
    for s in &sources {
        let name = Path::new(&s.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Lengths first: no two different sets hash the same bytes.
        for part in [name.as_bytes(), s.text.as_bytes()] {
            sha.update((part.len() as u64).to_be_bytes());
            sha.update(part);
        }
    }
    // The same engine as `load_dir`: with the trusted directories the roles name.
    let engine = engine_from(dir, &sources)?;
    Ok((engine, hex::encode(sha.finalize())))
}

/// Lints a policy directory: every mistake, not only the first.
pub fn lint(dir: &Path) -> Vec<LintFinding> {
    match read_sources(dir) {
        Ok(sources) => lint_sources(&sources),
        Err(e) => vec![LintFinding {
            severity: Severity::Error,
            file: dir.display().to_string(),
            role: None,
            message: e.to_string(),
        }],
    }
}
