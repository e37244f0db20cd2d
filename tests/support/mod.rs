//! Test support: the Python stand-in host, an in-process gateway in front of it, the real
//! client scripts, and a raw HTTPS client for requests real clients would never send.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    reason = "test support"
)]

pub mod gwdir;
pub mod kdc;
pub mod raw;
pub mod samba;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ALICE: &str = "alice@hopgate.test";
pub const BACKEND_USER: &str = "svc-gw";
pub const BACKEND_DOMAIN: &str = "STANDIN";
pub const BACKEND_PASSWORD: &str = "Test-Fixture-Passw0rd";
pub const JWT_AUDIENCE: &str = "hopgate";
pub const JWT_ISSUER: &str = "hopgate-tests";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python stand-in Windows host (tests/standin), killed on drop.
pub struct Standin {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Standin {
    /// Spawns `cmd` (a `tests/standin/host.py` command line) and waits for its `ready port=`
    /// line; stdout keeps being drained so the child never blocks on a full pipe.
    pub async fn spawn(mut cmd: Command, log: PathBuf) -> Standin {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 tests/standin/host.py starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(p) = line.strip_prefix("ready port=") {
                    return p.trim().parse::<u16>().unwrap();
                }
            }
            panic!("stand-in host exited before it was ready");
        })
        .await
        .expect("stand-in host ready within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Standin { child, port, log }
    }

    /// Starts the stand-in over http with NTLM and message encryption.
    pub async fn start_ntlm(dir: &Path, hostname: &str) -> Standin {
        Self::start_ntlm_with(dir, hostname, &[]).await
    }

    /// [`Standin::start_ntlm`] with more `host.py` arguments (e.g. `--compression`).
    pub async fn start_ntlm_with(dir: &Path, hostname: &str, extra: &[&str]) -> Standin {
        let users = dir.join("standin-users.txt");
        std::fs::write(
            &users,
            format!("{BACKEND_DOMAIN}:{BACKEND_USER}:{BACKEND_PASSWORD}\n"),
        )
        .unwrap();
        let log = dir.join(format!("standin-{hostname}.jsonl"));
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/standin/host.py"))
            .args(["--port", "0", "--scheme", "http", "--auth", "ntlm"])
            .arg("--users")
            .arg(&users)
            .arg("--log")
            .arg(&log)
            .args(["--hostname", hostname])
            .args(extra);
        Standin::spawn(cmd, log).await
    }

    /// Starts the stand-in with pyspnego's CredSSP acceptor (NTLM inside, checked against the
    /// vaulted account in the users file): over https when `tls` holds (certificate, key) PEM
    /// files, else over http with CredSSP message encryption.
    pub async fn start_credssp(dir: &Path, hostname: &str, tls: Option<(&Path, &Path)>) -> Standin {
        Self::start_with(dir, hostname, "credssp", tls, None).await
    }

    /// Starts the stand-in with `--auth <auth>` (NTLM accounts: the vaulted account in the
    /// users file), over https when `tls` holds (certificate, key) PEM files, and with
    /// Kerberos accepted when `kerberos` holds (krb5.conf, keytab).
    pub async fn start_with(
        dir: &Path,
        hostname: &str,
        auth: &str,
        tls: Option<(&Path, &Path)>,
        kerberos: Option<(&Path, &Path)>,
    ) -> Standin {
        let users = dir.join(format!("standin-{hostname}-users.txt"));
        std::fs::write(
            &users,
            format!("{BACKEND_DOMAIN}:{BACKEND_USER}:{BACKEND_PASSWORD}\n"),
        )
        .unwrap();
        let log = dir.join(format!("standin-{hostname}.jsonl"));
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/standin/host.py"))
            .args(["--port", "0", "--auth", auth]);
        if let Some((krb5_conf, keytab)) = kerberos {
            cmd.arg("--keytab")
                .arg(keytab)
                .env("KRB5_CONFIG", krb5_conf);
        }
        match tls {
            Some((cert, key)) => {
                cmd.args(["--scheme", "https", "--cert"])
                    .arg(cert)
                    .arg("--key")
                    .arg(key);
            }
            None => {
                cmd.args(["--scheme", "http"]);
            }
        }
        cmd.arg("--users")
            .arg(&users)
            .arg("--log")
            .arg(&log)
            .args(["--hostname", hostname]);
        Standin::spawn(cmd, log).await
    }

    /// Every request the host received, in order.
    pub fn requests(&self) -> Vec<Value> {
        read_jsonl(&self.log)
    }

    /// Waits (briefly) until the host has logged a request mentioning `needle`: the
    /// stand-in may write its log line just after it answered.
    pub async fn wait_for_command(&self, needle: &str) -> bool {
        eventually(Duration::from_secs(5), || self.saw_command(needle)).await
    }

    /// Whether any request the host received mentions `needle` in a command line, stdin or
    /// PSRP pipeline.
    pub fn saw_command(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| {
            let hay = [
                r.get("command_line").cloned().unwrap_or(Value::Null),
                r.get("stdin").cloned().unwrap_or(Value::Null),
                r.get("psrp").cloned().unwrap_or(Value::Null),
            ];
            hay.iter().any(|v| {
                v.to_string()
                    .to_lowercase()
                    .contains(&needle.to_lowercase())
            })
        })
    }
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Output of a client script: its exit code and the JSON it printed.
#[derive(Debug)]
pub struct ClientRun {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl ClientRun {
    pub fn stdout(&self) -> &str {
        self.json["stdout"].as_str().unwrap_or_default()
    }
}

/// Runs a program and parses the last line of its stdout as JSON.
pub async fn run_client(program: &str, args: &[String]) -> ClientRun {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(program).args(args).kill_on_drop(true).output(),
    )
    .await
    .expect("client finished within 120 s")
    .expect("client starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{program} printed no JSON; stdout={stdout} stderr={stderr}"));
    ClientRun {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

pub async fn python(script: &str, args: &[String]) -> ClientRun {
    let mut all = vec![repo().join(script).display().to_string()];
    all.extend_from_slice(args);
    run_client("python3", &all).await
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Paths of the generated certificates.
pub struct Certs {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A gateway running in this process, in front of a stand-in host.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub standin: Standin,
    pub certs: Certs,
    jwt_secret: Vec<u8>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The `hopgate serve` process, when the gateway runs as one.
    pid: Option<u32>,
}

pub struct GatewayOptions {
    /// Policy files written into the gateway's policy directory: (file name, text).
    pub policies: Vec<(&'static str, String)>,
    /// `target.default_host`.
    pub default_host: Option<&'static str>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            policies: vec![("tests.toml", test_policy())],
            default_host: Some("standin"),
        }
    }
}

/// The policy the end-to-end tests run under.
pub fn test_policy() -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/policies/e2e.toml")).unwrap()
}

impl Gateway {
    /// A gateway in this process in front of an NTLM stand-in (`standin`) and an
    /// `unreachable` host.
    pub async fn start(opts: GatewayOptions) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let standin = Standin::start_ntlm(dir.path(), "STANDIN-01").await;
        Self::standin_dir(&standin, opts).launch(dir, standin).await
    }

    /// [`Gateway::start`] with more arguments for the stand-in host.
    pub async fn start_with_standin_args(opts: GatewayOptions, extra: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let standin = Standin::start_ntlm_with(dir.path(), "STANDIN-01", extra).await;
        Self::standin_dir(&standin, opts).launch(dir, standin).await
    }

    /// The directory [`Gateway::start`] writes, to change before launching.
    pub fn standin_dir(standin: &Standin, opts: GatewayOptions) -> gwdir::GatewayDir {
        gwdir::GatewayDir {
            default_host: opts.default_host.map(str::to_string),
            policies: opts
                .policies
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect(),
            hosts: format!(
                r#"
[[hosts]]
name = "standin"
address = "127.0.0.1"
port = {port}
scheme = "http"
auth = "ntlm"
credential = "standin-admin"
labels = ["test"]

[[hosts]]
name = "unreachable"
address = "127.0.0.1"
port = 9
scheme = "http"
auth = "ntlm"
credential = "standin-admin"
"#,
                port = standin.port
            ),
            ..Default::default()
        }
        .vault_entries(&[(
            "standin-admin",
            &format!("{BACKEND_DOMAIN}\\{BACKEND_USER}"),
            BACKEND_PASSWORD,
        )])
    }

    /// Sends SIGHUP to a gateway running as its own process (reload policies and
    /// certificates).
    pub async fn sighup(&self) {
        let pid = self.pid.expect("a gateway started with launch_process");
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// A raw HTTPS client presenting alice's client certificate.
    pub fn alice_client(&self) -> raw::RawClient {
        raw::RawClient::new(
            self.addr,
            &self.certs.ca,
            Some((&self.certs.client_cert, &self.certs.client_key)),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// Mints a token signed with the gateway's secret.
    pub fn token(&self, sub: &str, groups: &[&str], target: Option<&str>, ttl: Duration) -> String {
        self.token_with(sub, groups, target, ttl, Some(JWT_AUDIENCE))
    }

    pub fn token_with(
        &self,
        sub: &str,
        groups: &[&str],
        target: Option<&str>,
        ttl: Duration,
        audience: Option<&str>,
    ) -> String {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        hopgate::authn::TokenMinter::new(hopgate::authn::JwtAlgorithm::Hs256, &self.jwt_secret)
            .unwrap()
            .with_issuer(Some(JWT_ISSUER.into()))
            .with_audience(audience.map(str::to_string))
            .mint(sub, &groups, target, ttl)
            .unwrap()
    }

    /// A correctly signed token whose `exp` passed `minutes` ago (beyond any leeway).
    pub fn token_expired_minutes_ago(&self, sub: &str, minutes: u64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "sub": sub, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE,
            "iat": now - 3600, "nbf": now - 3600, "exp": now - minutes * 60,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.jwt_secret),
        )
        .unwrap()
    }

    pub fn audit(&self) -> Vec<Value> {
        read_jsonl(&self.dir.path().join("audit/audit.jsonl"))
    }

    /// Waits until an audit event matching `pred` is on disk.
    pub async fn audit_has(&self, pred: impl Fn(&Value) -> bool) -> bool {
        eventually(Duration::from_secs(5), || self.audit().iter().any(&pred)).await
    }

    /// Common pypsrp arguments for this gateway with the client certificate.
    pub fn pypsrp_cert_args(&self, host_path: &str) -> Vec<String> {
        let mut a = self.pypsrp_base(host_path, "certificate");
        a.extend([
            "--cert".into(),
            self.certs.client_cert.display().to_string(),
            "--key".into(),
            self.certs.client_key.display().to_string(),
        ]);
        a
    }

    pub fn pypsrp_base(&self, host_path: &str, auth: &str) -> Vec<String> {
        vec![
            "--server".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.addr.port().to_string(),
            "--path".into(),
            host_path.into(),
            "--auth".into(),
            auth.into(),
            "--ca".into(),
            self.certs.ca.display().to_string(),
        ]
    }

    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the gateway (as SIGTERM does: drain, then close what it owns) and waits until
    /// it has; its directory and the stand-in stay for the test to read.
    pub async fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
        }
    }
}
