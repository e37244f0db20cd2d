//! Kerberos / Negotiate sign-in at the gateway (issue #15): the gateway accepts service
//! tickets for its own name `HTTP/gw.gw.test`, issued by a real Heimdal KDC on loopback, from
//! pypsrp and pywinrm (pyspnego over MIT GSSAPI) over HTTPS and over plain HTTP with WinRM
//! message encryption; the NTLM stand-in is the host behind it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::support::kdc::{Kdc, REALM};
use crate::support::{repo, ClientRun, Gateway, GatewayOptions, Standin};

const GW_SPN: &str = "HTTP/gw.gw.test";
const ALICE_PW: &str = "Alice-Krb-Passw0rd";
const BOB_PW: &str = "Bob-Krb-Passw0rd";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    kdc: Kdc,
    gw: Gateway,
    http_port: u16,
}

/// A realm with alice and bob, and a gateway that accepts tickets for [`GW_SPN`] on its
/// HTTPS listener and on a plain-HTTP one; alice is in the `ops` group (the e2e role).
async fn setup() -> Setup {
    setup_with(None).await
}

/// [`setup`] with the gateway's largest clock skew set.
async fn setup_with(skew_secs: Option<u64>) -> Setup {
    let kdc = Kdc::start(&[("alice", ALICE_PW), ("bob", BOB_PW)], &[GW_SPN], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let keytab = dir.path().join("gateway.keytab");
    std::fs::copy(kdc.keytab(GW_SPN), &keytab).unwrap();
    set_mode(&keytab, 0o600);
    let standin = Standin::start_ntlm(dir.path(), "STANDIN-01").await;
    let http_port = free_port();
    let mut d = Gateway::standin_dir(&standin, GatewayOptions::default());
    d.listener_extra = format!("http_address = \"127.0.0.1:{http_port}\"");
    d.extra = format!(
        r#"
[authn.kerberos]
service_principal = "{GW_SPN}@{REALM}"
keytab_file = "gateway.keytab"
{skew}

[authn.kerberos.groups]
"alice@{REALM}" = ["ops"]
"#,
        skew = skew_secs
            .map(|s| format!("max_clock_skew_secs = {s}"))
            .unwrap_or_default(),
    );
    let gw = d.launch(dir, standin).await;
    Setup { kdc, gw, http_port }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs a Python client with the realm's krb5.conf and a private credential cache, so
/// pyspnego gets alice's (or bob's) ticket from the test KDC with her password.
pub(crate) async fn client(kdc: &Kdc, script: &str, args: &[String]) -> ClientRun {
    client_with_tgt(kdc, script, args, None).await
}

/// [`client`], with a TGT put in the cache first by MIT `kinit` (`user`, `password`):
/// pywinrm's Kerberos transport (pykerberos) only uses a cache, never a password.
async fn client_with_tgt(
    kdc: &Kdc,
    script: &str,
    args: &[String],
    tgt: Option<(&str, &str)>,
) -> ClientRun {
    let cache = tempfile::NamedTempFile::new().unwrap();
    if let Some((user, password)) = tgt {
        use tokio::io::AsyncWriteExt as _;
        let mut kinit = Command::new("kinit")
            .arg(user)
            .env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", cache.path().display()))
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kinit (krb5-user) starts");
        let mut stdin = kinit.stdin.take().unwrap();
        stdin
            .write_all(format!("{password}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        assert!(kinit.wait().await.unwrap().success(), "kinit {user}");
    }
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("python3")
            .arg(repo().join(script))
            .args(args)
            .env("KRB5_CONFIG", kdc.krb5_conf())
            .env("KRB5CCNAME", format!("FILE:{}", cache.path().display()))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client finished within 120 s")
    .expect("python3 starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{script} printed no JSON; stdout={stdout} stderr={stderr}"));
    ClientRun {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// pypsrp arguments: Kerberos to [`GW_SPN`] as `user`, over HTTPS (the gateway's port) or
/// HTTP (`http_port`, message encryption always).
fn pypsrp_args(s: &Setup, user: &str, password: &str, http: bool) -> Vec<String> {
    let mut a = vec![
        "--server".into(),
        "127.0.0.1".into(),
        "--auth".into(),
        "kerberos".into(),
        "--user".into(),
        format!("{user}@{REALM}"),
        "--password".into(),
        password.into(),
        "--spn-service".into(),
        "HTTP".into(),
        "--spn-host".into(),
        "gw.gw.test".into(),
        "--path".into(),
        "wsman/standin".into(),
    ];
    if http {
        a.extend([
            "--port".into(),
            s.http_port.to_string(),
            "--scheme".into(),
            "http".into(),
            "--encryption".into(),
            "always".into(),
            // Only to satisfy the wrapper's CA/--no-verify choice; plain HTTP has no TLS.
            "--no-verify".into(),
        ]);
    } else {
        a.extend([
            "--port".into(),
            s.gw.addr.port().to_string(),
            "--ca".into(),
            s.gw.certs.ca.display().to_string(),
        ]);
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_signs_in_with_kerberos_over_https_and_sealed_http() {
    let s = setup().await;
    for http in [false, true] {
        // An allowed command runs on the host...
        let mut a = pypsrp_args(&s, "alice", ALICE_PW, http);
        a.extend(["--cmdlet".into(), "Get-Service".into()]);
        a.extend(["--param".into(), "Name=Spooler".into()]);
        let run = client(&s.kdc, "tests/clients/pypsrp_client.py", &a).await;
        assert_eq!(run.code, 0, "http={http}: {run:?}");
        // ...a denied one fails its pipeline, with the gateway's reason.
        let mut a = pypsrp_args(&s, "alice", ALICE_PW, http);
        a.extend(["--cmdlet".into(), "Stop-Computer".into()]);
        let run = client(&s.kdc, "tests/clients/pypsrp_client.py", &a).await;
        assert!(
            run.json.to_string().contains("HopgateDenied"),
            "http={http}: {run:?}"
        );
    }
    assert!(!s.gw.standin.saw_command("Stop-Computer"));
    // The record names the person as the ticket did, signed in with Kerberos.
    let audit = s.gw.audit();
    let starts: Vec<_> = audit
        .iter()
        .filter(|e| e["kind"] == "session.start" || e["event"] == "session.start")
        .collect();
    assert!(!starts.is_empty(), "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|e| e.to_string().contains(&format!("alice@{REALM}"))
                && e.to_string().contains("kerberos")),
        "{audit:?}"
    );
    assert!(audit.iter().any(
        |e| e.to_string().contains("command.denied") && e.to_string().contains("Stop-Computer")
    ));
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_signs_in_with_kerberos_over_sealed_http() {
    let s = setup().await;
    let a: Vec<String> = vec![
        "--endpoint".into(),
        format!("http://127.0.0.1:{}/wsman/standin", s.http_port),
        "--transport".into(),
        "kerberos".into(),
        "--user".into(),
        format!("alice@{REALM}"),
        "--password".into(),
        ALICE_PW.into(),
        "--service".into(),
        "HTTP".into(),
        "--hostname-override".into(),
        "gw.gw.test".into(),
        "--cmd".into(),
        "hostname".into(),
    ];
    let alice = format!("alice@{REALM}");
    let run = client_with_tgt(
        &s.kdc,
        "tests/clients/pywinrm_client.py",
        &a,
        Some((&alice, ALICE_PW)),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "STANDIN-01", "{run:?}");
    s.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sign_ins_are_audited_and_reach_nothing() {
    let s = setup().await;
    // bob holds a valid ticket but no role grants him the host: it looks unknown.
    let mut a = pypsrp_args(&s, "bob", BOB_PW, false);
    a.extend(["--cmd".into(), "hostname".into()]);
    let run = client(&s.kdc, "tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        s.gw.audit_has(|e| e.to_string().contains(&format!("bob@{REALM}"))
            && e.to_string().contains("no role grants this host"))
            .await,
        "{:?}",
        s.gw.audit()
    );

    // A ticket for another service (the client asks for HTTP/other.gw.test, which the
    // KDC does not know) never gets as far as the gateway: the client fails.
    let mut a = pypsrp_args(&s, "alice", ALICE_PW, false);
    let i = a.iter().position(|x| x == "gw.gw.test").unwrap();
    a[i] = "other.gw.test".into();
    a.extend(["--cmd".into(), "hostname".into()]);
    let run = client(&s.kdc, "tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");

    // Garbage under Negotiate, and Basic over plain HTTP: 401, audited, Basic not offered.
    let http = reqwest_plain(s.http_port, Some("Negotiate AAAA")).await;
    assert_eq!(http.0, 401);
    let basic = reqwest_plain(s.http_port, Some("Basic YWxpY2U6c2VjcmV0")).await;
    assert_eq!(basic.0, 401);
    assert!(
        !basic
            .1
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("basic")),
        "{basic:?}"
    );
    assert!(basic.1.iter().any(|h| h == "Negotiate"), "{basic:?}");
    assert!(
        s.gw.audit_has(|e| e.to_string().contains("plain_http_needs_kerberos"))
            .await
    );
    assert!(
        s.gw.audit_has(|e| e.to_string().contains("malformed_header")
            || e.to_string().contains("kerberos_unknown_mechanism"))
            .await
    );
    assert!(!s.gw.standin.saw_command("hostname"));
    s.gw.stop().await;
}

/// One POST over plain HTTP with an optional `Authorization`; the status and the
/// `WWW-Authenticate` values.
async fn reqwest_plain(port: u16, authorization: Option<&str>) -> (u16, Vec<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /wsman/standin HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let challenges = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("www-authenticate")
                .then(|| v.trim().to_string())
        })
        .collect();
    (status, challenges)
}

/// Stands in for the gateway just long enough to catch the client's first Kerberos token:
/// answers the unauthenticated request with a Negotiate challenge, records the token of
/// the next one and answers it 500 (so the client gives up). Returns the header value.
async fn capture_token(kdc: &Kdc, user: &str, password: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let catcher = tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + len {
                    continue;
                }
                buf.drain(..end + 4 + len);
                let auth = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().to_string())
                });
                match auth {
                    Some(a) => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 500 Caught\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return a;
                    }
                    None => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Kerberos\r\nContent-Length: 0\r\n\r\n")
                            .await;
                    }
                }
            }
        }
    });
    let a: Vec<String> = vec![
        "--server".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--scheme".into(),
        "http".into(),
        "--encryption".into(),
        "never".into(),
        "--no-verify".into(),
        "--auth".into(),
        "kerberos".into(),
        "--user".into(),
        format!("{user}@{REALM}"),
        "--password".into(),
        password.into(),
        "--spn-service".into(),
        "HTTP".into(),
        "--spn-host".into(),
        "gw.gw.test".into(),
        "--cmd".into(),
        "hostname".into(),
    ];
    let _ = client(kdc, "tests/clients/pypsrp_client.py", &a).await;
    tokio::time::timeout(Duration::from_secs(10), catcher)
        .await
        .expect("the client sent a token")
        .unwrap()
}

/// A POST over HTTPS (no client certificate) to the gateway with `authorization` and an
/// empty body, on a new connection; the status.
async fn https_post(gw: &Gateway, authorization: &str) -> u16 {
    let raw = crate::support::raw::RawClient::new(gw.addr, &gw.certs.ca, None);
    raw.post("/wsman/standin", Some(authorization), "")
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_token_is_refused_on_any_connection() {
    let s = setup().await;
    let token = capture_token(&s.kdc, "alice", ALICE_PW).await;
    // The first use signs in (the empty POST that finishes a handshake gets 200)...
    assert_eq!(https_post(&s.gw, &token).await, 200);
    // ...the same authenticator again, on a new connection, is a replay.
    assert_eq!(https_post(&s.gw, &token).await, 401);
    assert!(
        s.gw.audit_has(|e| e.to_string().contains("kerberos_replay"))
            .await
    );
    s.gw.stop().await;
}

/// A captured token used later than the clock skew allows is refused: its authenticator
/// is stale (checked before the ticket's end time; real clients never send an expired
/// ticket, they fetch a new one, so the end-time check is sspi's and not exercised here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_token_is_refused_and_audited() {
    let s = setup_with(Some(1)).await;
    let token = capture_token(&s.kdc, "alice", ALICE_PW).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(https_post(&s.gw, &token).await, 401);
    assert!(
        s.gw.audit_has(|e| e["event"] == "authn.failure" && e["reason"] == "kerberos_clock_skew")
            .await,
        "{:?}",
        s.gw.audit()
    );
    s.gw.stop().await;
}
