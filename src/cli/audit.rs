//! `hopgate audit verify|sessions|replay`: reading an audit log offline.
//!
//! Works on a copy of the log as well as on the live files (the writer only appends and
//! renames). A PATH is one file or the audit directory, whose rotated files and
//! `audit.jsonl` are read as one chain. It reads the logs, never writes them. `sessions`
//! and `replay` warn on stderr when the chain does not verify, so nobody reads a tampered
//! transcript without knowing. `keygen` creates the checkpoint signing key in the vault.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::audit::checkpoint::{PublicKey, SigningKey};
use crate::audit::files::{self, AUDIT_FILE};
use crate::audit::transcript::{self, SessionFilter};
use crate::audit::verify::{self, Segment, Start};

/// `hopgate audit …` on its own, for running it in-process (tests, embedding).
#[derive(Debug, Parser)]
#[command(name = "hopgate audit")]
struct AuditCli {
    #[command(subcommand)]
    action: AuditAction,
}

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain: exit 0 when intact and complete, 1 naming the first bad file
    /// and line, or the `audit.gap` lines (events lost), otherwise.
    Verify {
        /// The audit directory (every rotated file and audit.jsonl, as one chain), or one
        /// file.
        path: PathBuf,
        /// Public key file (from `audit keygen`): every checkpoint's signature is checked.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// The oldest files were archived or pruned on purpose: start the chain at the
        /// first file present (its start is reported) instead of requiring seq 1.
        #[arg(long)]
        partial: bool,
        /// Report `audit.gap` lines (events the gateway lost) as a warning instead of a
        /// failure.
        #[arg(long)]
        allow_gaps: bool,
    },
    /// List sessions: id, principal, host, start, end, commands, denied.
    Sessions {
        path: PathBuf,
        /// Only this principal (`alice` also matches `alice@realm`).
        #[arg(long)]
        user: Option<String>,
        /// Only this inventory host.
        #[arg(long)]
        host: Option<String>,
        /// Only sessions that ran or attempted this command (e.g. `ipconfig`, `Get-Service`),
        /// written as is or inside decoded code (`-EncodedCommand`, `Invoke-Expression`).
        #[arg(long)]
        command: Option<String>,
        /// Only sessions active at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
    /// Print one session as a transcript, in time order, each command followed by the code
    /// policy decoded from it (`-EncodedCommand`, `Invoke-Expression`, `cmd /c`, stdin).
    Replay {
        path: PathBuf,
        /// The session id, or a prefix of it that no other session id begins with.
        session_id: String,
    },
    /// Create the Ed25519 key that signs audit checkpoints: the private key goes into the
    /// vault, the public key (for `verify --pubkey`) is printed or written to a file.
    Keygen {
        #[arg(short, long, default_value = "hopgate.toml")]
        config: PathBuf,
        /// Vault entry (default: `[audit] signing_key`, else `audit-signing`).
        #[arg(long)]
        name: Option<String>,
        /// Write the public key file here.
        #[arg(long)]
        pubkey_out: Option<PathBuf>,
        /// Replace an existing key (checkpoints signed with it then need the old public key).
        #[arg(long)]
        force: bool,
    },
}

/// Parses `args` (what follows `hopgate audit`) and runs it, writing to `out` and `err`.
/// Returns the process exit code: 0 success, 1 verification failure, 2 usage or error.
pub fn run_args(args: &[&str], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cli = match AuditCli::try_parse_from(std::iter::once("audit").chain(args.iter().copied())) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "{e}");
            return 2;
        }
    };
    match run(cli.action, out, err) {
        Ok(code) if code == ExitCode::SUCCESS => 0,
        Ok(_) => 1,
        Err(e) => {
            let _ = writeln!(err, "hopgate: {e:#}");
            2
        }
    }
}

/// Runs one `audit` subcommand.
pub fn run(
    action: AuditAction,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match action {
        AuditAction::Verify {
            path,
            pubkey,
            partial,
            allow_gaps,
        } => {
            let key = match pubkey {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    Some(PublicKey::parse(&text).with_context(|| p.display().to_string())?)
                }
            };
            let mut log = Log::read(&path)?;
            if partial {
                log.start = Start::FirstLine;
            }
            match log.verify(key.as_ref()) {
                Ok(v) if !v.gaps.is_empty() && !allow_gaps => {
                    writeln!(out, "FAILED: {}", gap_summary(&v))?;
                    Ok(ExitCode::from(1))
                }
                Ok(v) => {
                    writeln!(
                        out,
                        "ok: {} lines in {} file(s), seq {}..={}, last hash {}",
                        v.lines, v.files, v.first_seq, v.last_seq, v.last_hash
                    )?;
                    if !v.gaps.is_empty() {
                        writeln!(out, "WARNING: {}", gap_summary(&v))?;
                    }
                    if log.start == Start::FirstLine && v.first_seq > 1 {
                        writeln!(
                            out,
                            "note: the chain starts at seq {} here: the lines before it are not here and were not checked",
                            v.first_seq
                        )?;
                    }
                    if let Some(k) = &key {
                        let signed = v
                            .last_signed_seq
                            .map_or("none".to_string(), |s| format!("lines up to seq {s}"));
                        writeln!(
                            out,
                            "{} checkpoint signature(s) good (key id {}); signed: {signed}",
                            v.verified_signatures,
                            k.key_id()
                        )?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    writeln!(out, "FAILED: {e}")?;
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditAction::Sessions {
            path,
            user,
            host,
            command,
            since,
        } => {
            let log = Log::read(&path)?;
            warn_if_broken(&log, err);
            let text = log.joined();
            let filter = SessionFilter {
                user,
                host,
                command,
                since: since.as_deref().map(transcript::parse_since).transpose()?,
            };
            writeln!(
                out,
                "SESSION\tPRINCIPAL\tHOST\tSTART\tEND\tCOMMANDS\tDENIED"
            )?;
            for s in transcript::sessions(&text)?
                .iter()
                .filter(|s| filter.matches(s))
            {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    s.session_id,
                    s.principal,
                    s.host,
                    s.start,
                    s.end.as_deref().unwrap_or("-"),
                    s.commands,
                    s.denied
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Replay { path, session_id } => {
            let log = Log::read(&path)?;
            warn_if_broken(&log, err);
            let text = log.joined();
            for line in transcript::replay(&text, &session_id)? {
                writeln!(out, "{line}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Keygen {
            config,
            name,
            pubkey_out,
            force,
        } => {
            keygen(&config, name, pubkey_out.as_deref(), force, out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit keygen`: a new signing key into the vault, its public key out.
fn keygen(
    config: &Path,
    name: Option<String>,
    pubkey_out: Option<&Path>,
    force: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = crate::config::Config::load(config)?;
    let name = name
        .or_else(|| config.audit_signing_key.clone())
        .unwrap_or_else(|| "audit-signing".to_string());
    let store = crate::app::store_settings(&config);
    if !force && crate::vault::cli::cmd_get(store.clone(), &name).is_ok() {
        anyhow::bail!(
            "vault entry `{name}` exists; pass --force to replace the key (keep its public key to verify older checkpoints)"
        );
    }
    let (key, secret) = SigningKey::generate()?;
    let user = format!("ed25519:{}", key.key_id());
    // The vault CLI's own path, so a file vault and a KV v2 server both work.
    let mut line = std::io::Cursor::new(zeroize::Zeroizing::new(
        format!("{}\n", secret.as_str()).into_bytes(),
    ));
    crate::vault::cli::cmd_set(
        store,
        &name,
        &user,
        crate::vault::cli::PasswordSource::Reader(&mut line),
    )?;
    let public = key.public_key();
    if let Some(p) = pubkey_out {
        std::fs::write(p, public.to_file_text())
            .with_context(|| format!("cannot write {}", p.display()))?;
        writeln!(out, "public key written to {}", p.display())?;
    } else {
        write!(out, "{}", public.to_file_text())?;
    }
    writeln!(
        out,
        "stored signing key {} in vault entry `{name}`; set `signing_key = \"{name}\"` in [audit]",
        key.key_id()
    )?;
    Ok(())
}

/// The files of a log, read, in chain order.
#[derive(Debug)]
struct Log {
    /// (file name, text, rotated)
    files: Vec<(String, String, bool)>,
    start: Start,
}

impl Log {
    /// Reads a directory's chain files, or one file.
    fn read(path: &Path) -> anyhow::Result<Self> {
        let (paths, dir_mode) = if path.is_dir() {
            let paths = files::chain_files(path)
                .with_context(|| format!("cannot list {}", path.display()))?;
            if paths.is_empty() {
                anyhow::bail!(
                    "no {AUDIT_FILE} or rotated audit files in {}",
                    path.display()
                );
            }
            (paths, true)
        } else {
            (vec![path.to_path_buf()], false)
        };
        let mut files = Vec::new();
        for p in &paths {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let name = p
                .file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
            let rotated = files::rotated_seq(&name).is_some();
            files.push((name, text, rotated));
        }
        // One file on its own may continue a chain begun in earlier files: a rotated file,
        // or the current file of a directory with rotated files. Anything else must start
        // at the beginning, so lines cut from its head are found.
        let start = match files.first() {
            Some((_, text, rotated)) if !dir_mode => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let continues =
                    first_seq(text).is_some_and(|s| s > 1) && files::has_rotated(parent);
                if *rotated || continues {
                    Start::FirstLine
                } else {
                    Start::Genesis
                }
            }
            _ => Start::Genesis,
        };
        Ok(Self { files, start })
    }

    fn verify(&self, key: Option<&PublicKey>) -> Result<verify::Report, verify::VerifyError> {
        let segments: Vec<Segment<'_>> = self
            .files
            .iter()
            .map(|(name, text, rotated)| Segment {
                name,
                text,
                rotated: *rotated,
            })
            .collect();
        verify::verify_segments(&segments, self.start, key)
    }

    /// Every file's text, in order, as one log.
    fn joined(&self) -> String {
        let mut all = String::new();
        for (_, text, _) in &self.files {
            all.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                all.push('\n');
            }
        }
        all
    }
}

/// What the `audit.gap` lines of an intact chain say was lost.
fn gap_summary(v: &verify::Report) -> String {
    let seqs: Vec<String> = v.gaps.iter().take(10).map(|g| g.seq.to_string()).collect();
    let more = if v.gaps.len() > seqs.len() {
        ", ..."
    } else {
        ""
    };
    format!(
        "the chain is intact but incomplete: {} audit.gap line(s) record {} lost event(s) (at seq {}{more})",
        v.gaps.len(),
        v.dropped(),
        seqs.join(", ")
    )
}

fn first_seq(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("seq")?
        .as_u64()
}

fn warn_if_broken(log: &Log, err: &mut dyn Write) {
    if let Err(e) = log.verify(None) {
        let _ = writeln!(
            err,
            "hopgate: WARNING: this audit log does not verify ({e}); what follows may have been altered"
        );
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
