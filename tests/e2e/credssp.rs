//! CredSSP toward the host, against pyspnego's CredSSP acceptor in the stand-in (NTLM inside
//! its TLS tunnel; the delegated credentials are logged by name): the backend client alone
//! over https and over http with CredSSP message encryption, then pypsrp through the gateway.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use hopgate::backend::{BackendAuth, BackendClient, BackendError, Credential, HostTarget, Scheme};

use crate::support::gwdir::GatewayDir;
use crate::support::raw::{command, create_cmd_shell, element_text, shell_id};
use crate::support::{
    python, Gateway, Standin, ALICE, BACKEND_DOMAIN, BACKEND_PASSWORD, BACKEND_USER,
};

fn vaulted_account() -> String {
    format!("{BACKEND_DOMAIN}\\{BACKEND_USER}")
}

fn https_target(port: u16, certs: &hopgate::devcerts::DevCertPaths) -> HostTarget {
    let mut t = HostTarget::new(
        "credssp-host",
        "127.0.0.1",
        port,
        Scheme::Https,
        BackendAuth::CredSsp,
    );
    t.tls.ca_file = Some(certs.ca_cert.clone());
    t.tls.server_name = Some("localhost".into());
    t
}

/// Requests the host completed: (user, delegated user, encrypted).
fn host_users(standin: &Standin) -> Vec<(String, String, bool)> {
    standin
        .requests()
        .iter()
        .filter(|r| r["status"] == 200 && r["action"].as_str().is_some_and(|a| !a.is_empty()))
        .map(|r| {
            (
                r["user"].as_str().unwrap_or_default().to_string(),
                r["delegated_user"].as_str().unwrap_or_default().to_string(),
                r["encrypted"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// A WinRS Receive of stdout/stderr for `command_id`.
fn receive(to: &str, shell_id: &str, command_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>{to}</a:To><a:ReplyTo><a:Address env:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize env:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:44444444-2222-3333-4444-555555555555</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action env:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action><w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></env:Header><env:Body><rsp:Receive><rsp:DesiredStream CommandId="{command_id}">stdout stderr</rsp:DesiredStream></rsp:Receive></env:Body></env:Envelope>"#
    )
}

/// Runs `cmd` in a new cmd shell through `client`; returns the decoded stdout.
async fn run_cmd(client: &BackendClient, to: &str, cmd: &str) -> String {
    let resp = client
        .send(Bytes::from(create_cmd_shell(to)))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&resp.body).to_string();
    assert_eq!(resp.status, 200, "{body}");
    let shell = shell_id(&body).unwrap();
    let resp = client
        .send(Bytes::from(command(to, &shell, cmd)))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&resp.body).to_string();
    assert_eq!(resp.status, 200, "{body}");
    let command_id = element_text(&body, "CommandId").unwrap();
    let mut stdout = Vec::new();
    for _ in 0..20 {
        let resp = client
            .send(Bytes::from(receive(to, &shell, &command_id)))
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&resp.body).to_string();
        assert_eq!(resp.status, 200, "{body}");
        let mut reader = quick_xml::Reader::from_str(&body);
        let mut in_stdout = false;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"Stream" => {
                    in_stdout = e
                        .attributes()
                        .flatten()
                        .any(|a| a.key.as_ref() == b"Name" && a.value.as_ref() == b"stdout");
                }
                quick_xml::events::Event::Text(t) if in_stdout => {
                    let text = t.decode().unwrap();
                    stdout.extend(
                        base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            text.trim(),
                        )
                        .unwrap(),
                    );
                }
                quick_xml::events::Event::End(_) => in_stdout = false,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        if body.contains("CommandState/Done") {
            return String::from_utf8_lossy(&stdout).to_string();
        }
    }
    panic!("command {cmd} did not finish");
}

/// The backend client alone over https: TLS tunnel inside the outer TLS, NTLM, pubKeyAuth,
/// delegated credentials; the host sees the vaulted account, and later requests reuse the
/// authenticated connection with plain bodies (the outer TLS protects them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_logs_in_with_credssp_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = hopgate::devcerts::generate(dir.path(), Default::default()).unwrap();
    let standin = Standin::start_credssp(
        dir.path(),
        "CREDSSP-01",
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    let client = BackendClient::new(
        https_target(standin.port, &certs),
        Credential::new(vaulted_account(), BACKEND_PASSWORD),
    )
    .unwrap();
    let to = format!("https://127.0.0.1:{}/wsman", standin.port);
    let out = run_cmd(&client, &to, "whoami").await;
    assert_eq!(out.trim().to_lowercase(), vaulted_account().to_lowercase());
    assert_eq!(client.idle_connections(), 1, "one connection, reused");

    crate::support::eventually(Duration::from_secs(5), || host_users(&standin).len() >= 3).await;
    let users = host_users(&standin);
    assert!(users.len() >= 3, "{users:?}");
    for (user, delegated, encrypted) in &users {
        assert_eq!(user.to_lowercase(), vaulted_account().to_lowercase());
        assert_eq!(
            delegated.to_lowercase(),
            vaulted_account().to_lowercase(),
            "the password was delegated to the host"
        );
        assert!(!encrypted, "inside TLS the bodies are not sealed again");
    }
    let reqs = standin.requests();
    let handshake: Vec<_> = reqs
        .iter()
        .filter(|r| r["auth_scheme"] == "CredSSP")
        .collect();
    assert!(
        handshake.len() >= 4,
        "tls + ntlm + pubkey + creds: {reqs:#?}"
    );
    assert!(
        reqs.iter().all(|r| r["error"].is_null()),
        "no leg failed: {reqs:#?}"
    );
}

/// Over http the tunnel seals every body (`HTTP-CredSSP-session-encrypted`); a request and a
/// response larger than 16 KiB travel as several encrypted parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_seals_bodies_with_credssp_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start_credssp(dir.path(), "CREDSSP-02", None).await;
    let target = HostTarget::new(
        "credssp-http",
        "127.0.0.1",
        standin.port,
        Scheme::Http,
        BackendAuth::CredSsp,
    );
    let client =
        BackendClient::new(target, Credential::new(vaulted_account(), BACKEND_PASSWORD)).unwrap();
    let to = format!("http://127.0.0.1:{}/wsman", standin.port);
    let out = run_cmd(&client, &to, "hostname").await;
    assert_eq!(out.trim(), "CREDSSP-02");
    // 40 000 characters: the Command request and the Receive response both exceed 16 KiB.
    let long = "x".repeat(40_000);
    let out = run_cmd(&client, &to, &format!("echo {long}")).await;
    assert_eq!(out.trim(), long);

    crate::support::eventually(Duration::from_secs(5), || host_users(&standin).len() >= 6).await;
    let users = host_users(&standin);
    assert!(users.len() >= 6, "{users:?}");
    for (user, delegated, encrypted) in &users {
        assert_eq!(user.to_lowercase(), vaulted_account().to_lowercase());
        assert_eq!(delegated.to_lowercase(), vaulted_account().to_lowercase());
        assert!(encrypted, "bodies are sealed over http");
    }
    let reqs = standin.requests();
    assert!(
        reqs.iter().all(|r| r["error"].is_null()),
        "host decrypted everything: {reqs:#?}"
    );
    assert_eq!(client.idle_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_wrong_password_is_rejected_without_retry() {
    let dir = tempfile::tempdir().unwrap();
    let certs = hopgate::devcerts::generate(dir.path(), Default::default()).unwrap();
    let standin = Standin::start_credssp(
        dir.path(),
        "CREDSSP-03",
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    let client = BackendClient::new(
        https_target(standin.port, &certs),
        Credential::new(vaulted_account(), "not-the-password"),
    )
    .unwrap();
    let to = format!("https://127.0.0.1:{}/wsman", standin.port);
    let err = client
        .send(Bytes::from(create_cmd_shell(&to)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackendError::AuthRejected { .. }),
        "expected a rejection, got {err:?}"
    );
    assert!(!err.is_retryable());
    let reqs = standin.requests();
    assert!(
        reqs.iter().all(|r| r["action"].is_null()),
        "no WS-Man request reached the host: {reqs:#?}"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r["auth_scheme"] == "CredSSP" && r["error"].is_null() && r["status"] == 401)
            .map(|r| r["conn"].clone())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1,
        "one login attempt, no retry: {reqs:#?}"
    );
}

/// A host without CredSSP enabled (it offers only Negotiate) is named as such, not as a
/// wrong password, and nothing is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_without_credssp_is_a_clear_handshake_error() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start_ntlm(dir.path(), "NO-CREDSSP").await;
    let target = HostTarget::new(
        "no-credssp",
        "127.0.0.1",
        standin.port,
        Scheme::Http,
        BackendAuth::CredSsp,
    );
    let client =
        BackendClient::new(target, Credential::new(vaulted_account(), BACKEND_PASSWORD)).unwrap();
    let to = format!("http://127.0.0.1:{}/wsman", standin.port);
    let err = client
        .send(Bytes::from(create_cmd_shell(&to)))
        .await
        .unwrap_err();
    match &err {
        BackendError::Handshake { reason, .. } => {
            assert!(reason.contains("CredSSP enabled"), "{reason}")
        }
        other => panic!("expected a handshake error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(
        standin.requests().len(),
        1,
        "one attempt: {:#?}",
        standin.requests()
    );
}

/// A gateway whose only host is the CredSSP stand-in over https; the vault holds
/// `password` for the stand-in's account.
async fn gateway(password: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    // The stand-in's https certificate comes from the gateway's dev CA (kept by `write`).
    let certs = hopgate::devcerts::generate(
        dir.path(),
        hopgate::devcerts::DevCertOptions {
            client_user: ALICE.into(),
            ..Default::default()
        },
    )
    .unwrap();
    let standin = Standin::start_credssp(
        dir.path(),
        "CREDSSP-GW",
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    GatewayDir {
        hosts: format!(
            r#"
[[hosts]]
name = "credssphost"
address = "127.0.0.1"
port = {port}
scheme = "https"
auth = "credssp"
credential = "credssp-admin"
ca_file = "{ca}"
tls_server_name = "localhost"
"#,
            port = standin.port,
            ca = certs.ca_cert.display()
        ),
        ..Default::default()
    }
    .policy_for_hosts(&["credssphost"])
    .vault_entries(&[("credssp-admin", &vaulted_account(), password)])
    .launch(dir, standin)
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_through_gateway_host_sees_delegated_vaulted_account_over_credssp() {
    let gw = gateway(BACKEND_PASSWORD).await;
    let mut a = gw.pypsrp_cert_args("wsman/credssphost");
    a.extend(["--cmd".to_string(), "whoami".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout().trim().to_lowercase(),
        vaulted_account().to_lowercase(),
        "{run:?}"
    );
    let users = host_users(&gw.standin);
    assert!(!users.is_empty());
    for (user, delegated, _) in &users {
        assert_eq!(user.to_lowercase(), vaulted_account().to_lowercase());
        assert_eq!(delegated.to_lowercase(), vaulted_account().to_lowercase());
    }
    assert!(
        gw.audit_has(|e| e["event"] == "session.start"
            && e["principal"] == ALICE
            && e["backend_auth"] == "credssp")
            .await,
        "{:#?}",
        gw.audit()
    );
    assert!(
        gw.audit_has(|e| e["event"] == "command.allowed" && e["principal"] == ALICE)
            .await
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_vaulted_password_is_a_clear_fault_and_a_backend_auth_audit_event() {
    let gw = gateway("stale-password").await;
    let mut a = gw.pypsrp_cert_args("wsman/credssphost");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("could not log in to the host"),
        "client sees why: {run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "credssphost"
            && e["outcome"] == "failure"
            && e["reason"] == "host rejected the vaulted credential"
            && e["backend_user"] == vaulted_account())
            .await,
        "{:#?}",
        gw.audit()
    );
    assert!(
        gw.standin.requests().iter().all(|r| r["action"].is_null()),
        "no WS-Man request reached the host"
    );
    gw.stop().await;
}

/// First-request latency of a new session (connect + login + one Create) per method, and of
/// a later request on the authenticated connection. Prints numbers; asserts nothing about
/// time. Run: `cargo test --test main credssp::latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints timings"]
async fn latency_first_request_credssp_vs_ntlm() {
    const ROUNDS: u32 = 20;
    let dir = tempfile::tempdir().unwrap();
    let certs = hopgate::devcerts::generate(dir.path(), Default::default()).unwrap();
    let ntlm_http = Standin::start_ntlm(dir.path(), "NTLM-HTTP").await;
    let ntlm_https = Standin::start_with(
        dir.path(),
        "NTLM-HTTPS",
        "ntlm",
        Some((&certs.server_cert, &certs.server_key)),
        None,
    )
    .await;
    let credssp_http = Standin::start_credssp(dir.path(), "CREDSSP-HTTP", None).await;
    let credssp_https = Standin::start_credssp(
        dir.path(),
        "CREDSSP-HTTPS",
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    let cases = [
        (
            "ntlm over http (sealed)",
            HostTarget::new(
                "n",
                "127.0.0.1",
                ntlm_http.port,
                Scheme::Http,
                BackendAuth::Ntlm,
            ),
        ),
        ("ntlm over https", {
            let mut t = https_target(ntlm_https.port, &certs);
            t.auth = BackendAuth::Ntlm;
            t
        }),
        (
            "credssp over http (sealed)",
            HostTarget::new(
                "c",
                "127.0.0.1",
                credssp_http.port,
                Scheme::Http,
                BackendAuth::CredSsp,
            ),
        ),
        (
            "credssp over https",
            https_target(credssp_https.port, &certs),
        ),
    ];
    for (name, target) in cases {
        let to = format!("http://127.0.0.1:{}/wsman", target.port);
        let body = Bytes::from(create_cmd_shell(&to));
        let mut first = Vec::new();
        let mut later = Vec::new();
        for _ in 0..ROUNDS {
            let client = BackendClient::new(
                target.clone(),
                Credential::new(vaulted_account(), BACKEND_PASSWORD),
            )
            .unwrap();
            let t = Instant::now();
            let r = client.send(body.clone()).await.unwrap();
            first.push(t.elapsed());
            assert_eq!(r.status, 200);
            let t = Instant::now();
            let r = client.send(body.clone()).await.unwrap();
            later.push(t.elapsed());
            assert_eq!(r.status, 200);
        }
        first.sort();
        later.sort();
        eprintln!(
            "{name:28} first request: median {:>7.1} ms (min {:.1}, max {:.1}); later request: median {:>6.1} ms",
            ms(first[first.len() / 2]),
            ms(first[0]),
            ms(first[first.len() - 1]),
            ms(later[later.len() / 2]),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
