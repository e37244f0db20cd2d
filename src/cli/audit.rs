//! `hopgate audit verify|sessions|replay`: reading an audit log offline.
//!
//! Works on a copy of the log as well as on the live file (the writer only appends). It
//! reads the file, never writes it. `sessions` and `replay` warn on stderr when the chain
//! does not verify, so nobody reads a tampered transcript without knowing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::audit::chain;
use crate::audit::sink::AUDIT_FILE;
use crate::audit::transcript::{self, SessionFilter};

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
    /// Check the hash chain: exit 0 when intact, 1 naming the first bad line otherwise.
    Verify {
        /// The audit file, or the audit directory holding audit.jsonl.
        path: PathBuf,
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
        /// Only sessions that ran or attempted this command (e.g. `ipconfig`, `Get-Service`).
        #[arg(long)]
        command: Option<String>,
        /// Only sessions active at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
    /// Print one session as a transcript, in time order.
    Replay { path: PathBuf, session_id: String },
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
        AuditAction::Verify { path } => {
            let text = read(&path)?;
            match chain::verify(&text) {
                Ok(v) => {
                    writeln!(
                        out,
                        "ok: {} lines, last seq {}, last hash {}",
                        v.lines, v.last_seq, v.last_hash
                    )?;
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
            let text = read(&path)?;
            warn_if_broken(&text, err);
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
            let text = read(&path)?;
            warn_if_broken(&text, err);
            for line in transcript::replay(&text, &session_id)? {
                writeln!(out, "{line}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads the log; a directory means its audit.jsonl.
fn read(path: &Path) -> anyhow::Result<String> {
    let file = if path.is_dir() {
        path.join(AUDIT_FILE)
    } else {
        path.to_path_buf()
    };
    std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))
}

fn warn_if_broken(text: &str, err: &mut dyn Write) {
    if let Err(e) = chain::verify(text) {
        let _ = writeln!(
            err,
            "hopgate: WARNING: this audit log does not verify ({e}); what follows may have been altered"
        );
    }
}
