//! `auth = "delegate"` (Kerberos constrained delegation with protocol transition) against
//! real peers: a Heimdal KDC on loopback where the gateway's principal may delegate to
//! `HTTP/backend.gw.test` only, pyspnego/python-gssapi stand-ins accepting with their
//! keytabs, pypsrp as the person's client, and the gateway as its own `hopgate serve`
//! process (the delegate method sets process-wide `KRB5_*` variables at start-up).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use crate::support::kdc::{
    delegation_realm, delegation_realm_with_lifetime, start_delegate_gateway,
    start_delegate_gateway_with_keytab, DelegateHost, Kdc, BACKEND_SPN, GATEWAY_SPN, OTHER_SPN,
    REALM,
};
use crate::support::{python, Gateway, Standin, ALICE};

/// What the host must see: alice herself, in the realm, not the gateway's account.
fn alice_in_realm() -> String {
    format!("alice@{REALM}")
}

fn host_users(standin: &Standin) -> Vec<(String, bool)> {
    standin.authenticated_users()
}

/// Realm, the allowed host (`deleg`, BACKEND_SPN) and the not-allowed one (`other`,
/// OTHER_SPN, a real service with its own keytab), and the gateway in front of both.
async fn setup() -> (Kdc, Gateway, Standin) {
    let kdc = delegation_realm().await;
    let dir = tempfile::tempdir().unwrap();
    let allowed =
        Standin::start_kerberos(dir.path(), "DELEG-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let other =
        Standin::start_kerberos(dir.path(), "OTHER-HOST", &kdc, &kdc.keytab(OTHER_SPN)).await;
    let hosts = [
        DelegateHost {
            name: "deleg",
            port: allowed.port,
            spn: BACKEND_SPN,
            https_ca: None,
        },
        DelegateHost {
            name: "other",
            port: other.port,
            spn: OTHER_SPN,
            https_ca: None,
        },
    ];
    let gw = start_delegate_gateway(dir, allowed, &kdc, &hosts).await;
    (kdc, gw, other)
}

fn gateway_log(gw: &Gateway) -> String {
    std::fs::read_to_string(gw.dir.path().join("gateway.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_reaches_the_host_as_the_person_and_a_host_outside_the_acl_is_refused() {
    let (kdc, gw, other) = setup().await;

    // Allowed host: the host authenticates alice@GW.TEST, never the gateway's principal.
    let mut a = gw.pypsrp_cert_args("wsman/deleg");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    assert_eq!(run.stdout().trim(), "DELEG-HOST", "{run:?}");
    crate::support::eventually(Duration::from_secs(5), || {
        !host_users(&gw.standin).is_empty()
    })
    .await;
    let users = host_users(&gw.standin);
    assert!(!users.is_empty(), "{:#?}", gw.standin.requests());
    for (user, encrypted) in &users {
        assert_eq!(user, &alice_in_realm(), "{users:?}");
        assert_ne!(user, &format!("{GATEWAY_SPN}@{REALM}"));
        assert!(encrypted, "bodies are sealed over http");
    }
    let schemes: Vec<String> = gw
        .standin
        .requests()
        .iter()
        .filter_map(|r| r["auth_scheme"].as_str().map(str::to_string))
        .collect();
    assert!(schemes.iter().all(|s| s == "Negotiate"), "{schemes:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "session.start"
            && e["principal"] == ALICE
            && e["backend_user"] == alice_in_realm()
            && e["backend_auth"] == "delegate")
            .await,
        "{:#?}",
        gw.audit()
    );
    // No password of alice was used: the KDC saw no AS exchange for her, only the
    // gateway's own AS-REQ (from its keytab) and TGS exchanges (S4U2Self, S4U2Proxy).
    assert_eq!(kdc.as_requests("alice"), 0, "{}", kdc.log());
    let log = kdc.log();
    assert!(log.contains("HTTP/backend.gw.test"), "{log}");

    // A host the gateway may not delegate to: the KDC refuses S4U2Proxy; the client gets a
    // clear fault, the audit trail the reason, and the host is never asked.
    let mut a = gw.pypsrp_cert_args("wsman/other");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    let err = run.json["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("could not log in to the host") && err.contains("other"),
        "client sees why: {run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "other"
            && e["outcome"] == "failure"
            && e["backend_user"] == alice_in_realm()
            && e["reason"] == "kdc refused the delegation to this host")
            .await,
        "{:#?}\n{}",
        gw.audit(),
        gateway_log(&gw)
    );
    assert!(
        host_users(&other).is_empty(),
        "the refused host ran nothing: {:#?}",
        other.requests()
    );
    // The keytab never reaches the logs.
    let keytab = std::fs::read(kdc.keytab(GATEWAY_SPN)).unwrap();
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&keytab)
    };
    assert!(!gateway_log(&gw).contains(&b64[..24]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_person_and_unreachable_kdc_are_clear_faults_with_audit_reasons() {
    let (mut kdc, gw, _other) = setup().await;
    let unreachable = |gw: &Gateway| {
        gw.audit()
            .iter()
            .filter(|e| {
                e["event"] == "backend.auth"
                    && e["host"] == "deleg"
                    && e["reason"] == "kdc unreachable"
            })
            .count()
    };
    let mut alice = gw.pypsrp_cert_args("wsman/deleg");
    alice.extend(["--cmd".to_string(), "hostname".into()]);

    // KDC down from the start: the gateway cannot even get its own TGT from the keytab.
    kdc.stop().await;
    let run = python("tests/clients/pypsrp_client.py", &alice).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("could not log in to the host"),
        "{run:?}"
    );
    let seen = crate::support::eventually(Duration::from_secs(5), || unreachable(&gw) == 1).await;
    assert!(seen, "{:#?}\n{}", gw.audit(), gateway_log(&gw));
    kdc.resume().await;

    // A token subject the realm does not know: S4U2Self fails.
    let token = gw.token("mallory", &["ops"], None, Duration::from_secs(600));
    let mut a = gw.pypsrp_base("wsman/deleg", "basic");
    a.extend([
        "--user".to_string(),
        "mallory".into(),
        "--password".into(),
        token,
        "--cmd".into(),
        "hostname".into(),
    ]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "deleg"
            && e["backend_user"] == format!("mallory@{REALM}")
            && e["reason"] == "kdc does not know the user")
            .await,
        "{:#?}\n{}",
        gw.audit(),
        gateway_log(&gw)
    );

    // KDC down again, the gateway's TGT now cached: S4U2Self for alice cannot reach it.
    kdc.stop().await;
    let run = python("tests/clients/pypsrp_client.py", &alice).await;
    assert_ne!(run.code, 0, "{run:?}");
    let seen = crate::support::eventually(Duration::from_secs(5), || unreachable(&gw) == 2).await;
    assert!(seen, "{:#?}\n{}", gw.audit(), gateway_log(&gw));
    assert!(host_users(&gw.standin).is_empty(), "host never asked");

    // The KDC comes back: the next request logs in (the failures were not cached).
    kdc.resume().await;
    let run = python("tests/clients/pypsrp_client.py", &alice).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    assert_eq!(run.stdout().trim(), "DELEG-HOST");
    gw.stop().await;
}

/// A vault entry whose keytab holds no key of the gateway's principal (here another
/// service's keytab): a clear fault and the reason in the audit trail, the host never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keytab_without_the_gateway_key_is_a_clear_fault() {
    let kdc = delegation_realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "DELEG-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let hosts = [DelegateHost {
        name: "deleg",
        port: standin.port,
        spn: BACKEND_SPN,
        https_ca: None,
    }];
    let gw = start_delegate_gateway_with_keytab(dir, standin, &kdc, &hosts, &kdc.keytab(OTHER_SPN))
        .await;
    let mut a = gw.pypsrp_cert_args("wsman/deleg");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "deleg"
            && e["reason"] == "gateway keytab has no key for its principal")
            .await,
        "{:#?}\n{}",
        gw.audit(),
        gateway_log(&gw)
    );
    assert!(host_users(&gw.standin).is_empty());
    gw.stop().await;
}

/// Over https the delegated login is bound to the host's TLS certificate and the bodies go
/// plain inside TLS; the host still sees alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_over_https() {
    let kdc = delegation_realm().await;
    let dir = tempfile::tempdir().unwrap();
    let host_certs = dir.path().join("host-certs");
    std::fs::create_dir_all(&host_certs).unwrap();
    let certs = hopgate::devcerts::generate(&host_certs, Default::default()).unwrap();
    let standin = Standin::start_kerberos_with(
        dir.path(),
        "DELEG-TLS",
        &kdc,
        &kdc.keytab(BACKEND_SPN),
        Some((&certs.server_cert, &certs.server_key)),
    )
    .await;
    let hosts = [DelegateHost {
        name: "deleg",
        port: standin.port,
        spn: BACKEND_SPN,
        https_ca: Some(certs.ca_cert.clone()),
    }];
    let gw = start_delegate_gateway(dir, standin, &kdc, &hosts).await;
    let mut a = gw.pypsrp_cert_args("wsman/deleg");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    assert_eq!(run.stdout().trim(), "DELEG-TLS");
    crate::support::eventually(Duration::from_secs(5), || {
        !host_users(&gw.standin).is_empty()
    })
    .await;
    let users = host_users(&gw.standin);
    assert!(!users.is_empty());
    for (user, encrypted) in &users {
        assert_eq!(user, &alice_in_realm());
        assert!(!encrypted, "inside TLS the bodies are not sealed again");
    }
    gw.stop().await;
}

/// Short-lived tickets (12 s): after they expired and the pooled backend connection was
/// closed (30 s idle), the next login does not use the cached credential (its cache entry
/// ends before the ticket does) but fetches a new gateway TGT from the keytab, a new
/// S4U2Self and a new S4U2Proxy ticket, and succeeds. (An established connection itself
/// keeps working past the ticket's end with these peers: neither MIT nor pyspnego checks
/// context expiry when sealing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tickets_are_replaced_transparently() {
    let kdc = delegation_realm_with_lifetime(Some("12s")).await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "DELEG-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let hosts = [DelegateHost {
        name: "deleg",
        port: standin.port,
        spn: BACKEND_SPN,
        https_ca: None,
    }];
    // Pooled connections live 10 s here, so the second run needs a new login.
    let gw = crate::support::kdc::start_delegate_gateway_extra(
        dir,
        standin,
        &kdc,
        &hosts,
        GATEWAY_SPN,
        &kdc.keytab(GATEWAY_SPN),
        "[backend]\nidle_timeout_secs = 10\n",
    )
    .await;
    let proxy_requests = || {
        kdc.log()
            .lines()
            .filter(|l| l.contains("TGS-REQ") && l.contains("for HTTP/backend.gw.test"))
            .count()
    };
    let mut a = gw.pypsrp_cert_args("wsman/deleg");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    let first = proxy_requests();
    assert!(first >= 1, "{}", kdc.log());
    // Past the tickets' end and the pool's idle limit.
    tokio::time::sleep(Duration::from_secs(32)).await;
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    assert_eq!(run.stdout().trim(), "DELEG-HOST");
    assert!(
        proxy_requests() > first,
        "a new service ticket was fetched: {}",
        kdc.log()
    );
    let users = host_users(&gw.standin);
    assert!(
        users.iter().all(|(u, _)| u == &alice_in_realm()),
        "{users:?}"
    );
    gw.stop().await;
}

/// Latency of a delegated login (run alone: it prepares the delegate Kerberos environment in
/// this test process): the first request of a person (gateway TGT from the keytab, S4U2Self,
/// S4U2Proxy, AP exchange), a request on a new connection with the cached credential, and
/// one on the pooled connection. Prints timings; asserts only that each request worked.
///
/// `cargo test --features delegate --test main delegate::latency -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing report; prepares process-wide KRB5_* variables, run alone"]
async fn latency_of_a_delegated_login_cold_cached_and_pooled() {
    use bytes::Bytes;
    use hopgate::backend::delegate_env::{self, Krb5Realm};
    use hopgate::backend::{BackendAuth, BackendClient, Credential, HostTarget, Scheme};

    let kdc = delegation_realm().await;
    let dir = tempfile::tempdir().unwrap();
    let standin =
        Standin::start_kerberos(dir.path(), "DELEG-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let _env = delegate_env::install(&[Krb5Realm {
        realm: REALM.into(),
        kdcs: vec![format!("127.0.0.1:{}", kdc.port)],
    }])
    .unwrap();
    delegate_env::register_keytab("gw", &std::fs::read(kdc.keytab(GATEWAY_SPN)).unwrap()).unwrap();
    let mut target = HostTarget::new(
        "deleg",
        "127.0.0.1",
        standin.port,
        Scheme::Http,
        BackendAuth::Delegate,
    );
    target.spn = Some(BACKEND_SPN.into());
    target.impersonator = Some(format!("{GATEWAY_SPN}@{REALM}"));
    let client = BackendClient::new(target, Credential::new(alice_in_realm(), "")).unwrap();
    let body = Bytes::from(crate::support::raw::create_cmd_shell(&format!(
        "http://127.0.0.1:{}/wsman",
        standin.port
    )));
    // One "TGS-REQ <client> from <addr> for <service>" line per exchange.
    let tgs = || {
        kdc.log()
            .lines()
            .filter(|l| l.contains("TGS-REQ") && l.contains(" for "))
            .count()
    };
    let time = |label: &'static str| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let start = Instant::now();
            let resp = client.send(body).await.unwrap();
            let took = start.elapsed();
            assert_eq!(resp.status, 200, "{label}");
            took
        }
    };
    let cold = time("cold").await;
    let tgs_cold = tgs();
    let mut pooled = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..10 {
        pooled.push(time("pooled").await);
        client.close_idle();
        cached.push(time("cached").await);
    }
    let tgs_after = tgs();
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "delegate latency: first request (TGT + S4U2Self + S4U2Proxy + AP exchange) {cold:?}; \
         new connection with cached credential {:?} (median of 10); pooled connection {:?} \
         (median of 10); KDC TGS exchanges: {tgs_cold} for the first login, {} for the 10 later \
         logins",
        median(&mut cached),
        median(&mut pooled),
        tgs_after - tgs_cold
    );
}

/// PowerShell's default end to end: alice signs in to the gateway with her own Kerberos
/// ticket (no password or token reaches the gateway), and the host sees alice herself
/// through constrained delegation: no password anywhere on the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kerberos_sign_in_reaches_the_host_as_the_person() {
    let kdc = delegation_realm().await;
    let dir = tempfile::tempdir().unwrap();
    let host =
        Standin::start_kerberos(dir.path(), "DELEG-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    let keytab = dir.path().join("gateway.keytab");
    std::fs::copy(kdc.keytab(GATEWAY_SPN), &keytab).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&keytab, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let extra = format!(
        "[authn.kerberos]\nservice_principal = \"{GATEWAY_SPN}@{REALM}\"\nkeytab_file = \"gateway.keytab\"\n[authn.kerberos.groups]\n\"alice@{REALM}\" = [\"ops\"]\n"
    );
    let hosts = [DelegateHost {
        name: "deleg",
        port: host.port,
        spn: BACKEND_SPN,
        https_ca: None,
    }];
    let gw = crate::support::kdc::start_delegate_gateway_extra(
        dir,
        host,
        &kdc,
        &hosts,
        GATEWAY_SPN,
        &kdc.keytab(GATEWAY_SPN),
        &extra,
    )
    .await;
    let (service, host_name) = GATEWAY_SPN.split_once('/').unwrap();
    let a: Vec<String> = vec![
        "--server".into(),
        "127.0.0.1".into(),
        "--port".into(),
        gw.addr.port().to_string(),
        "--ca".into(),
        gw.certs.ca.display().to_string(),
        "--path".into(),
        "wsman/deleg".into(),
        "--auth".into(),
        "kerberos".into(),
        "--user".into(),
        alice_in_realm(),
        "--password".into(),
        "Alice-Password-Nobody-Uses-7".into(),
        "--spn-service".into(),
        service.into(),
        "--spn-host".into(),
        host_name.into(),
        "--cmd".into(),
        "hostname".into(),
    ];
    let run = crate::e2e::kerberos_signin::client(&kdc, "tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", gateway_log(&gw));
    assert_eq!(run.stdout().trim(), "DELEG-HOST", "{run:?}");
    let users = host_users(&gw.standin);
    assert!(!users.is_empty());
    for (user, _) in &users {
        assert_eq!(user, &alice_in_realm(), "{users:?}");
    }
    gw.stop().await;
}
