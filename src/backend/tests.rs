//! Backend client tests against real peers that share no code with hopgate: pyspnego as the
//! NTLM acceptor with WinRM message encryption, and a Python https server for Basic, both in
//! `tests/support/ntlm_echo_host.py`; certificates come from the `openssl` command line.
//! They need `python3` with `pyspnego` and `openssl` on PATH (CI installs them) and fail,
//! not skip, without them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: panics are the failure report"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/ntlm_echo_host.py"
);

/// A running Python peer; killed on drop.
pub(crate) struct PyHost {
    _child: Child,
    pub(crate) port: u16,
    pub(crate) log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyHost {
    /// Starts the echo host in NTLM mode with the given `DOMAIN:user:password` lines.
    pub(crate) async fn ntlm(users: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users_file = dir.path().join("users");
        std::fs::write(&users_file, users.join("\n") + "\n").unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .args(["--mode", "ntlm"])
            .env("NTLM_USER_FILE", &users_file);
        Self::start(cmd, dir).await
    }

    /// Starts the echo host in NTLM mode inside TLS; the acceptor expects channel binding
    /// to the certificate in `cbt_from`.
    async fn ntlm_tls(users: &[&str], cert: &Path, key: &Path, cbt_from: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users_file = dir.path().join("users");
        std::fs::write(&users_file, users.join("\n") + "\n").unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .args(["--mode", "ntlm", "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--cbt-from")
            .arg(cbt_from)
            .env("NTLM_USER_FILE", &users_file);
        Self::start(cmd, dir).await
    }

    /// Starts the echo host in https + Basic mode.
    async fn basic(cert: &Path, key: &Path, user: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .args(["--mode", "basic", "--user", user, "--cert"])
            .arg(cert)
            .arg("--key")
            .arg(key);
        Self::start(cmd, dir).await
    }

    async fn start(mut cmd: Command, dir: tempfile::TempDir) -> Self {
        let log = dir.path().join("requests.jsonl");
        let mut child = cmd
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 must be installed");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("python host did not start in time (is pyspnego installed?)")
            .unwrap()
            .expect("python host exited before listening (is pyspnego installed?)");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let port = u16::try_from(v["port"].as_u64().unwrap()).unwrap();
        Self {
            _child: child,
            port,
            log,
            _dir: dir,
        }
    }

    /// The request log as JSON values.
    pub(crate) fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn ntlm_target(port: u16) -> HostTarget {
    HostTarget::new(
        "py-ntlm",
        "127.0.0.1",
        port,
        Scheme::Http,
        BackendAuth::Ntlm,
    )
}

fn fast_settings() -> BackendSettings {
    BackendSettings {
        connect_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(20),
        ..BackendSettings::default()
    }
}

fn handshakes(entries: &[serde_json::Value]) -> usize {
    entries.iter().filter(|e| e["leg"] == "complete").count()
}

#[tokio::test]
async fn ntlm_several_requests_share_one_sealed_connection() {
    let host = PyHost::ntlm(&["HOPGATE:alice:Secr3t!"]).await;
    let client = BackendClient::with_settings(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "Secr3t!"),
        fast_settings(),
    )
    .unwrap();
    for i in 0..4 {
        let body = format!(
            "<s:Envelope>request {i} {}</s:Envelope>",
            "x".repeat(i * 5000)
        );
        let resp = client.send(Bytes::from(body.clone())).await.unwrap();
        assert_eq!(resp.status, http::StatusCode::OK);
        assert_eq!(resp.body, Bytes::from(format!("ECHO:{body}")));
    }
    assert_eq!(client.idle_connections(), 1);
    let entries = host.entries();
    // One handshake; every request decrypted by pyspnego on that same connection.
    assert_eq!(handshakes(&entries), 1, "{entries:?}");
    let served: Vec<_> = entries
        .iter()
        .filter(|e| e["status"] == 200 && e["leg"].is_null())
        .collect();
    assert_eq!(served.len(), 4);
    assert!(served.iter().all(|e| e["conn"] == entries[0]["conn"]));
    assert!(served.iter().all(|e| e["user"] == "HOPGATE\\alice"));
}

#[tokio::test]
async fn ntlm_fault_response_is_decrypted() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
    )
    .unwrap();
    let resp = client.send(Bytes::from_static(b"FAULT")).await.unwrap();
    assert_eq!(resp.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(std::str::from_utf8(&resp.body)
        .unwrap()
        .contains("canned fault"));
    // The sequence numbers stay in step after a fault.
    let resp = client.send(Bytes::from_static(b"next")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:next"));
}

#[tokio::test]
async fn ntlm_wrong_password_is_rejected() {
    let host = PyHost::ntlm(&["HOPGATE:alice:right"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "wrong"),
    )
    .unwrap();
    let err = client.send(Bytes::from_static(b"hello")).await.unwrap_err();
    assert!(
        matches!(err, BackendError::AuthRejected { status, .. } if status == http::StatusCode::UNAUTHORIZED),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    // Nothing but handshake legs reached the host.
    assert!(host.entries().iter().all(|e| e["status"] == 401));
}

#[tokio::test]
async fn ntlm_recovers_after_host_closes_idle_connection() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
    )
    .unwrap();
    let resp = client
        .send(Bytes::from_static(b"CLOSE after this"))
        .await
        .unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:CLOSE after this"));
    // Let hyper observe the FIN on the idle connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = client.send(Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:second"));
    assert_eq!(handshakes(&host.entries()), 2);
}

#[tokio::test]
async fn ntlm_request_dropped_mid_flight_is_not_replayed() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
    )
    .unwrap();
    let err = client
        .send(Bytes::from_static(b"DROP me"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Closed {
                delivery: Delivery::Maybe,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let dropped = host
        .entries()
        .iter()
        .filter(|e| e["dropped"] == true)
        .count();
    assert_eq!(dropped, 1, "the host saw the request exactly once");
    // The client works again afterwards.
    let resp = client.send(Bytes::from_static(b"again")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:again"));
}

#[tokio::test]
async fn ntlm_401_on_established_session_reauthenticates_once() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
    )
    .unwrap();
    client.send(Bytes::from_static(b"warm up")).await.unwrap();
    let resp = client.send(Bytes::from_static(b"REAUTH:1")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:REAUTH:1"));
    let entries = host.entries();
    assert_eq!(handshakes(&entries), 2, "{entries:?}");
    assert_eq!(entries.iter().filter(|e| e["reauth"] == true).count(), 1);
}

#[tokio::test]
async fn response_timeout_drops_the_connection() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let client = BackendClient::new(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
    )
    .unwrap();
    let err = client
        .send_with_timeout(Bytes::from_static(b"SLEEP:2"), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Timeout {
                phase: TimeoutPhase::Response,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(client.idle_connections(), 0);
    let resp = client.send(Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:after"));
}

#[tokio::test]
async fn connect_refused_is_retryable() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = BackendClient::new(ntlm_target(port), Credential::new("a", "b")).unwrap();
    let err = client.send(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, BackendError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn basic_over_http_is_refused() {
    let target = HostTarget::new("h", "127.0.0.1", 5985, Scheme::Http, BackendAuth::Basic);
    let err = BackendClient::new(target, Credential::new("a", "b")).unwrap_err();
    assert!(matches!(err, BackendError::Config { .. }), "{err:?}");
}

#[test]
fn errors_stay_small() {
    // Results carrying BackendError travel through every proxy call (clippy result_large_err).
    assert!(
        std::mem::size_of::<BackendError>() <= 64,
        "{}",
        std::mem::size_of::<BackendError>()
    );
}

#[test]
fn credential_debug_hides_password() {
    let c = Credential::new("alice", "hunter2");
    assert!(!format!("{c:?}").contains("hunter2"));
}

/// A CA and a leaf for `localhost`/127.0.0.1 signed by it, made with the openssl CLI.
pub(crate) struct TestPki {
    pub(crate) dir: tempfile::TempDir,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl must be installed");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for (name, cn) in [("ca", "hopgate test ca"), ("other-ca", "someone else")] {
            run(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
            ]);
        }
        std::fs::write(
            dir.path().join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        Self { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn https_target(port: u16, tls: BackendTls) -> HostTarget {
    let mut t = HostTarget::new(
        "py-https",
        "127.0.0.1",
        port,
        Scheme::Https,
        BackendAuth::Basic,
    );
    t.tls = tls;
    t
}

#[tokio::test]
async fn basic_over_https_with_custom_ca() {
    let pki = TestPki::new();
    let host = PyHost::basic(
        &pki.path("leaf.pem"),
        &pki.path("leaf.key"),
        "admin:P@ss w0rd",
    )
    .await;
    let trusted = BackendTls {
        ca_file: Some(pki.path("ca.pem")),
        insecure_skip_verify: false,
        server_name: Some("localhost".into()),
    };

    let client = BackendClient::new(
        https_target(host.port, trusted.clone()),
        Credential::new("admin", "P@ss w0rd"),
    )
    .unwrap();
    for body in ["one", "two"] {
        let resp = client.send(Bytes::from(body)).await.unwrap();
        assert_eq!(resp.status, http::StatusCode::OK);
        assert_eq!(resp.body, Bytes::from(format!("ECHO:{body}")));
    }
    assert_eq!(client.idle_connections(), 1);

    // Verification by IP address SAN works too.
    let by_ip = BackendTls {
        server_name: None,
        ..trusted.clone()
    };
    let client = BackendClient::new(
        https_target(host.port, by_ip),
        Credential::new("admin", "P@ss w0rd"),
    )
    .unwrap();
    client.send(Bytes::from_static(b"ip")).await.unwrap();

    // Wrong password.
    let client = BackendClient::new(
        https_target(host.port, trusted.clone()),
        Credential::new("admin", "nope"),
    )
    .unwrap();
    let err = client.send(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, BackendError::AuthRejected { .. }), "{err:?}");

    // A CA that did not sign the host's certificate.
    let untrusted = BackendTls {
        ca_file: Some(pki.path("other-ca.pem")),
        ..trusted.clone()
    };
    let client = BackendClient::new(
        https_target(host.port, untrusted),
        Credential::new("admin", "P@ss w0rd"),
    )
    .unwrap();
    let err = client.send(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // Wrong name.
    let wrong_name = BackendTls {
        server_name: Some("not-localhost".into()),
        ..trusted
    };
    let client = BackendClient::new(
        https_target(host.port, wrong_name),
        Credential::new("admin", "P@ss w0rd"),
    )
    .unwrap();
    assert!(matches!(
        client.send(Bytes::from_static(b"x")).await.unwrap_err(),
        BackendError::Tls { .. }
    ));

    // Explicit insecure mode accepts it.
    let insecure = BackendTls {
        ca_file: None,
        insecure_skip_verify: true,
        server_name: None,
    };
    let client = BackendClient::new(
        https_target(host.port, insecure),
        Credential::new("admin", "P@ss w0rd"),
    )
    .unwrap();
    let resp = client.send(Bytes::from_static(b"lab")).await.unwrap();
    assert_eq!(resp.body, Bytes::from_static(b"ECHO:lab"));

    // https without any trust setting is a configuration error.
    let none = https_target(host.port, BackendTls::default());
    assert!(matches!(
        BackendClient::new(none, Credential::new("a", "b")).unwrap_err(),
        BackendError::Config { .. }
    ));
}

#[tokio::test]
async fn ntlm_over_https_binds_to_the_tls_channel() {
    let pki = TestPki::new();
    let tls = BackendTls {
        ca_file: Some(pki.path("ca.pem")),
        insecure_skip_verify: false,
        server_name: Some("localhost".into()),
    };
    let host = PyHost::ntlm_tls(
        &["HOPGATE:alice:pw"],
        &pki.path("leaf.pem"),
        &pki.path("leaf.key"),
        &pki.path("leaf.pem"),
    )
    .await;
    let mut target = HostTarget::new(
        "py-ntlm-tls",
        "127.0.0.1",
        host.port,
        Scheme::Https,
        BackendAuth::Ntlm,
    );
    target.tls = tls.clone();
    let client =
        BackendClient::new(target.clone(), Credential::new("HOPGATE\\alice", "pw")).unwrap();
    for body in ["plain one", "plain two"] {
        let resp = client.send(Bytes::from(body)).await.unwrap();
        assert_eq!(resp.body, Bytes::from(format!("ECHO:{body}")));
    }
    assert_eq!(handshakes(&host.entries()), 1);

    // An acceptor that expects a binding to another certificate (what a TLS-intercepting
    // box would cause) refuses the same client.
    let relayed = PyHost::ntlm_tls(
        &["HOPGATE:alice:pw"],
        &pki.path("leaf.pem"),
        &pki.path("leaf.key"),
        &pki.path("other-ca.pem"),
    )
    .await;
    target.port = relayed.port;
    let client = BackendClient::new(target, Credential::new("HOPGATE\\alice", "pw")).unwrap();
    let err = client.send(Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, BackendError::AuthRejected { .. }), "{err:?}");
}

#[tokio::test]
async fn connection_limit_queues_requests_instead_of_failing() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    for max_connections in [1usize, 3] {
        let settings = BackendSettings {
            max_connections,
            max_idle: max_connections,
            ..fast_settings()
        };
        let client = BackendClient::with_settings(
            ntlm_target(host.port),
            Credential::new("HOPGATE\\alice", "pw"),
            settings,
        )
        .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let client = client.clone();
            tasks.spawn(async move {
                let body = format!("SLEEP:0.05 #{i}");
                let resp = client.send(Bytes::from(body.clone())).await.unwrap();
                assert_eq!(resp.body, Bytes::from(format!("ECHO:{body}")));
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert!(client.idle_connections() <= max_connections);
    }
    // At most 1 + 3 connections were ever authenticated for the two clients.
    let handshakes = handshakes(&host.entries());
    assert!((2..=4).contains(&handshakes), "{handshakes}");
}

#[tokio::test]
async fn idle_connections_expire() {
    let host = PyHost::ntlm(&["HOPGATE:alice:pw"]).await;
    let settings = BackendSettings {
        idle_timeout: Duration::from_millis(200),
        ..fast_settings()
    };
    let client = BackendClient::with_settings(
        ntlm_target(host.port),
        Credential::new("HOPGATE\\alice", "pw"),
        settings,
    )
    .unwrap();
    client.send(Bytes::from_static(b"one")).await.unwrap();
    client.send(Bytes::from_static(b"two")).await.unwrap();
    assert_eq!(handshakes(&host.entries()), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.send(Bytes::from_static(b"three")).await.unwrap();
    // The expired connection was closed, not reused.
    assert_eq!(handshakes(&host.entries()), 2);
    assert_eq!(client.idle_connections(), 1);
}
