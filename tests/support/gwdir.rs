//! The one builder of a gateway test directory: dev certificates, JWT secret, vault, policy
//! and `hopgate.toml`, and the two ways to run a gateway from it (in this process, or as
//! its own `hopgate serve` process for what is process-wide: delegation's `KRB5_*`
//! variables, SIGHUP).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::{test_policy, Certs, Gateway, Standin, ALICE, JWT_AUDIENCE, JWT_ISSUER};

/// The JWT secret of every test gateway.
pub const JWT_SECRET: &[u8] = b"test-fixture-jwt-secret-0123456789abcdef";

/// Where the gateway's backend credentials come from.
pub enum VaultSpec {
    /// The local encrypted file with these `(entry, user, password)` entries.
    Local(Vec<(String, String, String)>),
    /// A `[vault]` table written as given (e.g. `kind = "kv2"`), without its header.
    Toml(String),
}

/// What goes into a gateway test directory; [`GatewayDir::write`] puts it on disk.
pub struct GatewayDir {
    /// `listener.address`.
    pub listen: String,
    /// Extra lines of the `[listener]` table (e.g. `crl = "crl.pem"`).
    pub listener_extra: String,
    /// `target.default_host`.
    pub default_host: Option<String>,
    pub vault: VaultSpec,
    /// Policy files: (file name, text). Default: the e2e policy as `tests.toml`.
    pub policies: Vec<(String, String)>,
    /// The `[[hosts]]` tables, as TOML text.
    pub hosts: String,
    /// Extra top-level tables (e.g. `[admin]`, `[limits]`).
    pub extra: String,
    /// Extra lines of the `[audit]` table (e.g. `failures_interval_secs = 1`).
    pub audit_extra: String,
}

impl Default for GatewayDir {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            listener_extra: String::new(),
            default_host: None,
            vault: VaultSpec::Local(Vec::new()),
            policies: vec![("tests.toml".into(), test_policy())],
            hosts: String::new(),
            extra: String::new(),
            audit_extra: String::new(),
        }
    }
}

impl GatewayDir {
    /// The e2e policy with its host list (`standin`, `unreachable`) replaced by `names`.
    pub fn policy_for_hosts(mut self, names: &[&str]) -> Self {
        let policy = test_policy();
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let patched = policy.replace(
            r#"names = ["standin", "unreachable"]"#,
            &format!("names = [{}]", quoted.join(", ")),
        );
        assert_ne!(
            patched, policy,
            "tests/fixtures/policies/e2e.toml host list changed"
        );
        self.policies = vec![("tests.toml".into(), patched)];
        self
    }

    /// A vault file holding `(entry, user, password)` entries.
    pub fn vault_entries(mut self, entries: &[(&str, &str, &str)]) -> Self {
        self.vault = VaultSpec::Local(
            entries
                .iter()
                .map(|(e, u, p)| (e.to_string(), u.to_string(), p.to_string()))
                .collect(),
        );
        self
    }

    /// Writes everything into `d`; dev certificates already complete in `d` are kept.
    pub fn write(&self, d: &Path) -> hopgate::devcerts::DevCertPaths {
        let certs = hopgate::devcerts::generate(
            d,
            hopgate::devcerts::DevCertOptions {
                client_user: ALICE.into(),
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::write(d.join("jwt.secret"), JWT_SECRET).unwrap();
        let vault = match &self.vault {
            VaultSpec::Local(entries) => {
                let settings = hopgate::vault::VaultSettings {
                    path: d.join("vault.bin"),
                    key_file: Some(d.join("vault.key")),
                    key_env: None,
                };
                hopgate::vault::generate_key_file(&d.join("vault.key")).unwrap();
                let vault = hopgate::vault::LocalVault::open_or_create(&settings).unwrap();
                for (entry, user, password) in entries {
                    vault
                        .set(
                            entry,
                            hopgate::vault::Credential::new(user.as_str(), password.as_str()),
                        )
                        .unwrap();
                }
                "path = \"vault.bin\"\nkey_file = \"vault.key\"".to_string()
            }
            VaultSpec::Toml(text) => text.clone(),
        };
        std::fs::create_dir_all(d.join("policies")).unwrap();
        for (name, text) in &self.policies {
            std::fs::write(d.join("policies").join(name), text).unwrap();
        }
        let default_host = self
            .default_host
            .as_ref()
            .map(|h| format!("[target]\ndefault_host = \"{h}\"\n"))
            .unwrap_or_default();
        let config = format!(
            r#"
[listener]
address = "{listen}"
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
{listener_extra}

[authn.jwt]
algorithm = "HS256"
key_file = "jwt.secret"
issuer = "{JWT_ISSUER}"
audience = "{JWT_AUDIENCE}"

{default_host}

[vault]
{vault}

[audit]
dir = "audit"
{audit_extra}

[policy]
dir = "policies"

{extra}
{hosts}
"#,
            listen = self.listen,
            listener_extra = self.listener_extra,
            extra = self.extra,
            audit_extra = self.audit_extra,
            hosts = self.hosts,
        );
        std::fs::write(d.join("hopgate.toml"), config).unwrap();
        certs
    }

    /// Writes the directory and starts a gateway from it in this process.
    pub async fn launch(self, dir: tempfile::TempDir, standin: Standin) -> Gateway {
        let certs = self.write(dir.path());
        let config = hopgate::config::Config::load(&dir.path().join("hopgate.toml")).unwrap();
        let bound = hopgate::app::bind(config).await.unwrap();
        let addr = bound.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        Gateway::new(dir, addr, standin, &certs, Some(stop), Some(task), None)
    }

    /// Writes the directory (listening on a free port) and runs `hopgate serve` on it as
    /// its own process (killed by [`Gateway::stop`] or on drop); its log is `gateway.log`.
    pub async fn launch_process(mut self, dir: tempfile::TempDir, standin: Standin) -> Gateway {
        let port = free_port();
        self.listen = format!("127.0.0.1:{port}");
        let certs = self.write(dir.path());
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hopgate"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("hopgate.toml"))
            .env("RUST_LOG", "info,hopgate=debug")
            .env_remove("KRB5_CONFIG")
            .env_remove("KRB5CCNAME")
            .env_remove("KRB5_CLIENT_KTNAME")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("hopgate serve starts");
        let pid = child.id();
        let up = super::eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        if !up {
            let _ = child.start_kill();
            panic!(
                "hopgate serve did not listen on {}: {}",
                self.listen,
                std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default()
            );
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = stopped => {
                    let _ = child.kill().await;
                }
                status = child.wait() => {
                    eprintln!("hopgate serve exited early: {status:?}");
                }
            }
        });
        let addr = ([127, 0, 0, 1], port).into();
        Gateway::new(dir, addr, standin, &certs, Some(stop), Some(task), pid)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Gateway {
    fn new(
        dir: tempfile::TempDir,
        addr: std::net::SocketAddr,
        standin: Standin,
        certs: &hopgate::devcerts::DevCertPaths,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<tokio::task::JoinHandle<()>>,
        pid: Option<u32>,
    ) -> Gateway {
        Gateway {
            certs: Certs {
                ca: certs.ca_cert.clone(),
                client_cert: certs.client_cert.clone(),
                client_key: certs.client_key.clone(),
            },
            dir,
            addr,
            standin,
            jwt_secret: JWT_SECRET.to_vec(),
            stop,
            task,
            pid,
        }
    }
}
