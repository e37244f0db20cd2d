//! Kerberos and Negotiate toward the host, against real peers: a Heimdal KDC on loopback
//! (tests/support/heimdal.sh), the pyspnego/python-gssapi stand-in accepting with its keytab,
//! and pypsrp/pywinrm as the people's clients (client certificate to the gateway).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use bytes::Bytes;
use hopgate::backend::{BackendAuth, BackendClient, BackendError, Credential, HostTarget, Scheme};

use crate::support::kdc::{
    start_gateway, Kdc, KrbHost, BACKEND_SPN, REALM, SVC_PASSWORD, SVC_USER,
};
use crate::support::{python, Gateway, Standin, ALICE};

/// A WinRS cmd shell Create as pywinrm sends it (MS-WSMV 3.1.4.5).
const CREATE_SHELL: &str = concat!(
    r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>"#,
    r#"<a:To>http://127.0.0.1:5985/wsman</a:To><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"#,
    r#"<w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:5B9E6C1A-3C57-4D8E-9E0D-1F0C3A2B4D5E</a:MessageID>"#,
    r#"<w:Locale xml:lang="en-US" s:mustUnderstand="false"/><w:OperationTimeout>PT20S</w:OperationTimeout>"#,
    r#"<w:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"#,
    r#"<a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action>"#,
    r#"<w:OptionSet><w:Option Name="WINRS_NOPROFILE">FALSE</w:Option><w:Option Name="WINRS_CODEPAGE">437</w:Option></w:OptionSet></s:Header>"#,
    r#"<s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></s:Body></s:Envelope>"#
);

async fn realm() -> Kdc {
    Kdc::start(&[(SVC_USER, SVC_PASSWORD)], &[BACKEND_SPN], &[]).await
}

fn svc_principal() -> String {
    format!("{SVC_USER}@{REALM}")
}

/// Requests the host completed, with the user it authenticated.
fn host_users(standin: &Standin) -> Vec<(String, bool)> {
    standin
        .requests()
        .iter()
        .filter(|r| r["status"] == 200 && r["action"].as_str().is_some_and(|a| !a.is_empty()))
        .map(|r| {
            (
                r["user"].as_str().unwrap_or_default().to_string(),
                r["encrypted"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn target(auth: BackendAuth, port: u16, kdc: &Kdc) -> HostTarget {
    let mut t = HostTarget::new("krb-host", "127.0.0.1", port, Scheme::Http, auth);
    t.kdc = Some(kdc.url());
    t.spn = Some(BACKEND_SPN.into());
    t
}

/// The backend client alone (no gateway): both mechanisms log in, seal, and the host
/// decrypts and answers with sealed bodies on one pooled connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_logs_in_with_kerberos_and_negotiate() {
    let kdc = realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "KRB-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    for auth in [BackendAuth::Kerberos, BackendAuth::Negotiate] {
        let client = BackendClient::new(
            target(auth, standin.port, &kdc),
            Credential::new(svc_principal(), SVC_PASSWORD),
        )
        .unwrap();
        for _ in 0..3 {
            let resp = client
                .send(Bytes::from_static(CREATE_SHELL.as_bytes()))
                .await;
            let resp = resp.unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
            let body = String::from_utf8_lossy(&resp.body);
            assert_eq!(resp.status, 200, "{auth:?}: {body}");
            assert!(body.contains("ShellId"), "{auth:?}: {body}");
        }
        assert_eq!(
            client.idle_connections(),
            1,
            "{auth:?}: one connection reused"
        );
    }
    // The host writes its log line after answering: wait for the last one.
    crate::support::eventually(std::time::Duration::from_secs(5), || {
        host_users(&standin).len() >= 6
    })
    .await;
    let users = host_users(&standin);
    let summary: Vec<String> = standin
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["conn"], r["status"], r["action"], r["error"]
            )
        })
        .collect();
    assert_eq!(users.len(), 6, "{summary:#?}");
    for (user, encrypted) in users {
        assert_eq!(user, svc_principal());
        assert!(encrypted, "bodies are sealed over http");
    }
    let schemes: Vec<String> = standin
        .requests()
        .iter()
        .filter_map(|r| r["auth_scheme"].as_str().map(str::to_string))
        .collect();
    assert!(schemes.iter().any(|s| s == "Kerberos"), "{schemes:?}");
    assert!(schemes.iter().any(|s| s == "Negotiate"), "{schemes:?}");
}

/// Over https the bodies go plain inside TLS (no second sealing layer); the host still sees
/// the vaulted user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_logs_in_with_kerberos_over_https() {
    let kdc = realm().await;
    let dir = tempfile::tempdir().unwrap();
    let certs = hopgate::devcerts::generate(dir.path(), Default::default()).unwrap();
    let standin = Standin::start_kerberos_with(
        dir.path(),
        "KRB-TLS",
        &kdc,
        &kdc.keytab(BACKEND_SPN),
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    for auth in [BackendAuth::Kerberos, BackendAuth::Negotiate] {
        let mut t = target(auth, standin.port, &kdc);
        t.scheme = Scheme::Https;
        t.tls.ca_file = Some(certs.ca_cert.clone());
        t.tls.server_name = Some("localhost".into());
        let client = BackendClient::new(t, Credential::new(svc_principal(), SVC_PASSWORD)).unwrap();
        let resp = client
            .send(Bytes::from_static(CREATE_SHELL.as_bytes()))
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e:?}"));
        let body = String::from_utf8_lossy(&resp.body);
        assert_eq!(resp.status, 200, "{auth:?}: {body}");
        assert!(body.contains("ShellId"), "{auth:?}: {body}");
    }
    crate::support::eventually(std::time::Duration::from_secs(5), || {
        host_users(&standin).len() >= 2
    })
    .await;
    let users = host_users(&standin);
    assert_eq!(users.len(), 2, "{users:?}");
    for (user, encrypted) in users {
        assert_eq!(user, svc_principal());
        assert!(!encrypted, "inside TLS the bodies are not sealed again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_wrong_password_is_a_kerberos_error_without_retry() {
    let kdc = realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "KRB-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let client = BackendClient::new(
        target(BackendAuth::Negotiate, standin.port, &kdc),
        Credential::new(svc_principal(), "not-the-password"),
    )
    .unwrap();
    let err = client
        .send(Bytes::from_static(CREATE_SHELL.as_bytes()))
        .await
        .unwrap_err();
    match &err {
        BackendError::Kerberos { source, .. } => {
            assert_eq!(
                source.reason(),
                "kdc rejected the vaulted password",
                "{err:?}"
            )
        }
        other => panic!("expected a kerberos error, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(standin.requests().is_empty(), "the host is never contacted");
    // One AS exchange (without, then with pre-authentication), no retries.
    let n = kdc.as_requests(SVC_USER);
    assert!((1..=2).contains(&n), "{n} AS-REQs: {}", kdc.log());
}

/// An SPN the KDC does not know (typo in `spn`, host not joined) is named as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_client_unknown_spn_is_reported_as_unknown_principal() {
    let kdc = realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "KRB-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let mut t = target(BackendAuth::Kerberos, standin.port, &kdc);
    t.spn = Some("HTTP/not-registered.gw.test".into());
    let client = BackendClient::new(t, Credential::new(svc_principal(), SVC_PASSWORD)).unwrap();
    let err = client
        .send(Bytes::from_static(CREATE_SHELL.as_bytes()))
        .await
        .unwrap_err();
    match &err {
        BackendError::Kerberos { source, .. } => {
            assert_eq!(
                source.reason(),
                "kdc does not know the principal",
                "{err:?}"
            )
        }
        other => panic!("expected a kerberos error, got {other:?}"),
    }
    assert!(
        kdc.log().contains("HTTP/not-registered.gw.test"),
        "{}",
        kdc.log()
    );
    assert!(standin.requests().is_empty(), "the host is never contacted");
}

async fn gateway(kdc: &Kdc, auth: &'static str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "KRB-HOST", kdc, &kdc.keytab(BACKEND_SPN)).await;
    let port = standin.port;
    start_gateway(
        dir,
        standin,
        kdc,
        &[KrbHost {
            name: "krbhost",
            auth,
            port,
            credential: "krb-svc",
            spn: BACKEND_SPN.into(),
        }],
        // The vaulted name has no realm: the host's `realm` setting completes it.
        &[("krb-svc", SVC_USER, SVC_PASSWORD)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_through_gateway_host_sees_vaulted_principal_over_negotiate() {
    let kdc = realm().await;
    let gw = gateway(&kdc, "negotiate").await;
    let mut a = gw.pypsrp_cert_args("wsman/krbhost");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "KRB-HOST", "{run:?}");
    let users = host_users(&gw.standin);
    assert!(!users.is_empty());
    for (user, encrypted) in &users {
        assert_eq!(user, &svc_principal(), "{users:?}");
        assert!(encrypted);
    }
    assert!(
        gw.audit_has(|e| e["event"] == "command.allowed" && e["principal"] == ALICE)
            .await
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_through_gateway_host_sees_vaulted_principal_over_kerberos() {
    let kdc = realm().await;
    let gw = gateway(&kdc, "kerberos").await;
    let a = vec![
        "--endpoint".to_string(),
        gw.url("/wsman/krbhost"),
        "--transport".into(),
        "certificate".into(),
        "--cert".into(),
        gw.certs.client_cert.display().to_string(),
        "--key".into(),
        gw.certs.client_key.display().to_string(),
        "--ca".into(),
        gw.certs.ca.display().to_string(),
        "--cmd".into(),
        "whoami".into(),
    ];
    let run = python("tests/clients/pywinrm_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json["exit_code"], 0, "{run:?}");
    let users = host_users(&gw.standin);
    assert!(
        users.iter().any(|(u, _)| u == &svc_principal()),
        "{users:?}"
    );
    assert!(
        users.iter().all(|(u, e)| u == &svc_principal() && *e),
        "{users:?}"
    );
    let schemes: Vec<String> = gw
        .standin
        .requests()
        .iter()
        .filter_map(|r| r["auth_scheme"].as_str().map(str::to_string))
        .collect();
    assert!(schemes.iter().all(|s| s == "Kerberos"), "{schemes:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kdc_down_is_a_clear_fault_and_a_backend_auth_audit_event() {
    let mut kdc = realm().await;
    let gw = gateway(&kdc, "negotiate").await;
    kdc.stop().await;
    let mut a = gw.pypsrp_cert_args("wsman/krbhost");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    let err = run.json["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("could not log in to the host"),
        "client sees why: {run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "krbhost"
            && e["outcome"] == "failure"
            && e["reason"] == "kdc unreachable")
            .await,
        "{:#?}",
        gw.audit()
    );
    assert!(gw.standin.requests().is_empty(), "host never contacted");

    // The KDC comes back: the next request logs in (nothing was cached as broken).
    kdc.resume().await;
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "KRB-HOST");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_vaulted_password_is_a_fault_without_retry_storm() {
    let kdc = realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "KRB-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let port = standin.port;
    let gw = start_gateway(
        dir,
        standin,
        &kdc,
        &[KrbHost {
            name: "krbhost",
            auth: "kerberos",
            port,
            credential: "krb-svc",
            spn: BACKEND_SPN.into(),
        }],
        &[("krb-svc", SVC_USER, "stale-password")],
    )
    .await;
    let mut a = gw.pypsrp_cert_args("wsman/krbhost");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("could not log in to the host"),
        "{run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["reason"] == "kdc rejected the vaulted password"
            && e["backend_user"] == SVC_USER)
            .await,
        "{:#?}",
        gw.audit()
    );
    // One client request, one failed login: at most the two AS-REQs of one exchange.
    let n = kdc.as_requests(SVC_USER);
    assert!((1..=2).contains(&n), "{n} AS-REQs for one request");
    assert!(gw.standin.requests().is_empty());
    gw.stop().await;
}
