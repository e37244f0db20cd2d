//! Reading a policy directory into sources for the pure engine
//! ([`Engine::from_sources`], [`lint_sources`]).

use std::path::Path;

use hopgate_policy::{lint_sources, Engine, LintFinding, PolicyError, PolicySource, Severity};

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
    Engine::from_sources(&read_sources(dir)?)
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
    let engine = Engine::from_sources(&sources)?;
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
