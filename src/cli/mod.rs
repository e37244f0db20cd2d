//! Command-line interface: argument parsing and the small glue each subcommand needs.
//!
//! Exit codes: 0 success, 1 a negative answer (deny, verification failure), 2 usage or
//! runtime error, 64 invalid configuration (checked before any socket is bound).
#![allow(clippy::print_stdout, reason = "the CLI's output is its interface")]

pub mod audit;
mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Exit code for configuration errors (EX_USAGE-like, per STYLE.md).
const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "hopgate",
    version,
    about = "Authenticating, policy-enforcing WinRM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Configuration file.
        #[arg(short, long, default_value = "hopgate.toml")]
        config: PathBuf,
    },
    /// Generate a development CA, server certificate and client certificate.
    Certs {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// UPN put in the client certificate.
        #[arg(long, default_value = "alice@hopgate.test")]
        user: String,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Mint a development JWT with the gateway's configured key.
    Token {
        #[arg(short, long, default_value = "hopgate.toml")]
        config: PathBuf,
        /// Signing key (HS256 secret file, or RS256/ES256 private key PEM). Defaults to
        /// the configured `authn.jwt.key_file` for HS256.
        #[arg(long)]
        signing_key: Option<PathBuf>,
        #[arg(long)]
        sub: String,
        /// Comma-separated groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Target host name (the token's target claim).
        #[arg(long)]
        target: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Manage the local credential vault.
    Vault {
        #[arg(short, long, default_value = "hopgate.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: VaultAction,
    },
    /// Run an emulated Windows WinRM host (for the demo and benchmarks).
    Testhost {
        #[arg(long, default_value = "127.0.0.1:55985")]
        listen: std::net::SocketAddr,
        /// Serve HTTPS with Basic instead of HTTP with NTLM.
        #[arg(long, requires_all = ["cert", "key"])]
        https: bool,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
        /// File of `user:password` lines (keep it private).
        #[arg(long)]
        users: PathBuf,
        #[arg(long, default_value = "TESTHOST")]
        hostname: String,
        /// Hold a Receive with nothing to report for its OperationTimeout, as Windows does
        /// (for benchmarks; the default answers after a short pause).
        #[arg(long)]
        hold_receives: bool,
    },
    /// Load a gateway or an emulated host on this machine (benchmarks; loopback only):
    /// concurrent WinRS sessions, or sessions holding a Receive like PowerShell. Prints one
    /// JSON report.
    Load {
        /// Target address, e.g. 127.0.0.1:5986 (loopback only).
        #[arg(long)]
        target: std::net::SocketAddr,
        /// URL path, e.g. /wsman/standin.
        #[arg(long, default_value = "/wsman")]
        path: String,
        /// CA of the target's certificate (HTTPS); plain HTTP without it.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Client certificate and key (mTLS sign-in).
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Basic sign-in: user (password from HOPGATE_LOAD_PASSWORD).
        #[arg(long, conflicts_with = "cert")]
        basic_user: Option<String>,
        #[arg(long, default_value_t = 16)]
        sessions: usize,
        /// Commands per shell before it is deleted and another created.
        #[arg(long, default_value_t = 100)]
        commands_per_shell: usize,
        /// The command line each Command runs (the emulated host: hostname, bench-output N).
        #[arg(long, default_value = "hostname")]
        command: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Sessions that run commands in long-poll mode; the others hold a Receive.
        #[arg(long)]
        long_poll_active: Option<usize>,
        /// OperationTimeout of Receives, seconds.
        #[arg(long, default_value_t = 20)]
        operation_timeout: u64,
        /// Process whose CPU per round trip and memory are reported (the gateway's pid).
        #[arg(long)]
        pid: Option<u32>,
        /// Tasks sending hostile requests beside the load (soak runs): no credentials, bad
        /// tokens, malformed and attribute-heavy envelopes, stalled connections.
        #[arg(long, default_value_t = 0)]
        hostile: usize,
        /// Loopback address the hostile traffic comes from (its own source, as an
        /// attacker's would be).
        #[arg(long, default_value = "127.0.0.2")]
        hostile_source: std::net::IpAddr,
    },
    /// Print what the gateway sees in recorded WinRM traffic: one JSON object per envelope.
    /// Reads a recording (YAML `messages: [{request, response}]`) or one envelope (XML).
    Decode { file: PathBuf },
    /// Check or lint policies.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Verify, list and replay the audit log.
    Audit {
        #[command(subcommand)]
        action: audit::AuditAction,
    },
    /// Run the gateway and an emulated host on loopback with generated demo settings.
    Demo {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Gateway port (default 5986, or the one in an existing demo config).
        #[arg(long)]
        port: Option<u16>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Decide one command line or script; prints {"decision","role","reason"} and exits
    /// 0 on allow, 1 on deny, 2 on error.
    Check {
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        host: String,
        /// Inventory labels of the host.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// A cmd-shell command line.
        #[arg(long, conflicts_with = "ps", required_unless_present = "ps")]
        cmd: Option<String>,
        /// A PowerShell script.
        #[arg(long)]
        ps: Option<String>,
    },
    /// Report mistakes in a policy directory; exits 1 when there are errors.
    Lint { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
enum VaultAction {
    /// Store a credential; the password is read from stdin or a prompt, never argv.
    Set {
        name: String,
        #[arg(long)]
        user: String,
    },
    /// Show the user of a credential (never the password).
    Get { name: String },
    /// List credential names.
    List,
    /// Remove a credential.
    Rm { name: String },
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init("info");
    match run(cli) {
        Ok(code) => code,
        Err(CliError::Config(e)) => {
            eprintln!("hopgate: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(CliError::Other(e)) => {
            eprintln!("hopgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug)]
enum CliError {
    Config(crate::config::ConfigError),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

fn load(path: &std::path::Path) -> Result<Config, CliError> {
    Config::load(path).map_err(CliError::Config)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(e.into()))
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve { config } => {
            let config = load(&config)?;
            // Before the runtime: it sets process environment variables (delegate hosts).
            let _delegation = crate::app::prepare_delegation(&config)?;
            runtime()?.block_on(async {
                let bound = crate::app::bind(config).await?;
                let addr = bound.local_addr().map_err(anyhow::Error::from)?;
                tracing::info!(%addr, "hopgate ready");
                bound.run(crate::app::shutdown_signal()).await;
                Ok::<_, CliError>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs { dir, user, force } => {
            let paths = crate::devcerts::generate(
                &dir,
                crate::devcerts::DevCertOptions {
                    client_user: user,
                    overwrite: force,
                    ..Default::default()
                },
            )
            .map_err(anyhow::Error::from)?;
            println!("{paths:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            config,
            signing_key,
            sub,
            groups,
            target,
            ttl,
        } => {
            let config = load(&config)?;
            let token =
                demo::mint_token(&config, signing_key.as_deref(), &sub, &groups, target, ttl)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Vault { config, action } => {
            let config = load(&config)?;
            vault_command(&config, action)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Testhost {
            listen,
            https,
            cert,
            key,
            users,
            hostname,
            hold_receives,
        } => {
            let mut settings = demo::testhost_settings(listen, https, cert, key, &users, hostname)?;
            settings.hold_receives = hold_receives;
            runtime()?.block_on(async {
                let server = crate::testhost::Testhost::bind(settings)
                    .await
                    .map_err(anyhow::Error::from)?;
                let addr = server.local_addr().map_err(anyhow::Error::from)?;
                tracing::info!(%addr, "testhost ready");
                server
                    .serve(crate::app::shutdown_signal())
                    .await
                    .map_err(anyhow::Error::from)?;
                Ok::<_, CliError>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load {
            target,
            path,
            ca,
            cert,
            key,
            basic_user,
            sessions,
            commands_per_shell,
            command,
            seconds,
            long_poll_active,
            operation_timeout,
            pid,
            hostile,
            hostile_source,
        } => {
            let auth = match (cert, key, basic_user) {
                (Some(cert), Some(key), _) => crate::load::Auth::ClientCert { cert, key },
                (_, _, Some(user)) => crate::load::Auth::Basic {
                    user,
                    password: std::env::var("HOPGATE_LOAD_PASSWORD").unwrap_or_default(),
                },
                _ => return Err(anyhow::anyhow!("give --cert/--key or --basic-user").into()),
            };
            let settings = crate::load::LoadSettings {
                target,
                path,
                tls_ca: ca,
                auth,
                sessions,
                commands_per_shell,
                command,
                duration: std::time::Duration::from_secs(seconds),
                mode: match long_poll_active {
                    Some(active) => crate::load::Mode::LongPoll { active },
                    None => crate::load::Mode::Cmd,
                },
                operation_timeout_secs: operation_timeout,
                pid,
                hostile,
                hostile_source,
            };
            let report = runtime()?
                .block_on(crate::load::run(settings))
                .map_err(anyhow::Error::from)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy { action } => Ok(policy_command(action)),
        Command::Decode { file } => {
            // Bad input is exit 1 with a clear message, never a panic (issue 3).
            let input = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("hopgate: cannot read {}: {e}", file.display());
                    return Ok(ExitCode::from(1));
                }
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let stats = match crate::decode::decode_recording(&input, &mut out) {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::io::Write::flush(&mut out);
                    eprintln!("hopgate: {}: {e}", file.display());
                    return Ok(ExitCode::from(1));
                }
            };
            std::io::Write::flush(&mut out).map_err(anyhow::Error::from)?;
            eprintln!(
                "{} envelopes, {} PSRP messages, {} pipelines, {} errors",
                stats.envelopes, stats.psrp_messages, stats.pipelines, stats.errors
            );
            Ok(if stats.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Audit { action } => Ok(audit::run(
            action,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )?),
        Command::Demo { dir, port } => {
            runtime()?.block_on(demo::run(&dir, port))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn policy_command(action: PolicyAction) -> ExitCode {
    use crate::policy::{check_cli, lint, CheckInput, Severity};
    match action {
        PolicyAction::Check {
            policies,
            user,
            groups,
            host,
            labels,
            cmd,
            ps,
        } => {
            let input = match (cmd, ps) {
                (Some(c), _) => CheckInput::Cmd(c),
                (None, Some(p)) => CheckInput::Ps(p),
                (None, None) => return ExitCode::from(2),
            };
            let (json, code) = check_cli(&policies, &user, &groups, &host, &labels, &input);
            println!("{json}");
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        PolicyAction::Lint { dir } => {
            let findings = lint(&dir);
            let mut errors = 0;
            for f in &findings {
                if f.severity == Severity::Error {
                    errors += 1;
                }
                let role = f
                    .role
                    .as_deref()
                    .map(|r| format!(" role {r}:"))
                    .unwrap_or_default();
                println!("{:?}: {}:{role} {}", f.severity, f.file, f.message);
            }
            if findings.is_empty() {
                println!("no findings");
            }
            if errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn vault_command(config: &Config, action: VaultAction) -> Result<(), CliError> {
    let settings = crate::app::store_settings(config);
    match action {
        VaultAction::Set { name, user } => {
            let outcome = crate::vault::cli::cmd_set(
                &settings,
                &name,
                &user,
                crate::vault::cli::PasswordSource::Auto,
            )
            .map_err(anyhow::Error::from)?;
            let verb = if outcome.replaced {
                "replaced"
            } else {
                "stored"
            };
            println!("{verb} {} (user {})", outcome.name, outcome.user);
        }
        VaultAction::Get { name } => {
            let user = crate::vault::cli::cmd_get(&settings, &name).map_err(anyhow::Error::from)?;
            println!("{user}");
        }
        VaultAction::List => {
            for name in crate::vault::cli::cmd_list(&settings).map_err(anyhow::Error::from)? {
                println!("{name}");
            }
        }
        VaultAction::Rm { name } => {
            crate::vault::cli::cmd_rm(&settings, &name).map_err(anyhow::Error::from)?;
            println!("removed {name}");
        }
    }
    Ok(())
}
