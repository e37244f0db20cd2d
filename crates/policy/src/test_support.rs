//! Test-only file access: the shipped `policies/` directory and the shared corpus, read
//! the way the gateway's loader reads them (this crate itself never touches files).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::{Path, PathBuf};

use super::{lint_sources, Engine, LintFinding, PolicyError, PolicySource};

/// The repository root (two levels above this crate).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped example policies.
pub(crate) fn policies_dir() -> PathBuf {
    repo_root().join("policies")
}

/// Every `*.toml` and `*.psrc` file directly in `dir`, sorted by name.
pub(crate) fn read_sources(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| PolicyError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            p.is_file() && matches!(ext.as_deref(), Some("toml") | Some("psrc"))
        })
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|p| PolicySource {
            text: std::fs::read_to_string(&p).unwrap(),
            path: p.display().to_string(),
        })
        .collect())
}

/// Loads a directory into an engine.
pub(crate) fn load_dir(dir: &Path) -> Result<Engine, PolicyError> {
    Engine::from_sources(&read_sources(dir)?)
}

/// Lints a directory.
pub(crate) fn lint(dir: &Path) -> Vec<LintFinding> {
    lint_sources(&read_sources(dir).unwrap())
}
