//! Fault injection on the backend leg (issue #5): a host that drops its connections
//! between requests, the KDC going away in the middle of a session, and Negotiate's
//! opt-in NTLM fallback when there is no KDC. Each must either be
//! invisible to the client or give it a clear fault, and the session must carry on once
//! the fault is gone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeSet;

use bytes::Bytes;
use hopgate::backend::{BackendAuth, BackendClient, BackendError, Credential, HostTarget, Scheme};

use crate::support::kdc::{
    start_gateway, Kdc, KrbHost, BACKEND_SPN, REALM, SVC_PASSWORD, SVC_USER,
};
use crate::support::raw::{command, create_cmd_shell, shell_id};
use crate::support::{python, Gateway, Standin};

/// A Kerberos gateway whose stand-in host drops each connection after `drop_after`
/// WS-Man answers.
async fn gateway(kdc: &Kdc, drop_after: u32) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let n = drop_after.to_string();
    let standin = Standin::start_kerberos_args(
        dir.path(),
        "KRB-HOST",
        kdc,
        &kdc.keytab(BACKEND_SPN),
        None,
        &["--drop-after", &n],
    )
    .await;
    let port = standin.port;
    start_gateway(
        dir,
        standin,
        kdc,
        &[KrbHost {
            name: "krbhost",
            auth: "kerberos",
            port,
            credential: "krb-svc",
            spn: BACKEND_SPN.into(),
        }],
        &[("krb-svc", SVC_USER, SVC_PASSWORD)],
    )
    .await
}

/// The stand-in's connections on which a request was authenticated as the vaulted account.
fn authenticated_connections(gw: &Gateway) -> BTreeSet<u64> {
    let me = format!("{SVC_USER}@{REALM}");
    gw.standin
        .requests()
        .iter()
        .filter(|r| r["user"] == me.as_str() && r["status"] == 200)
        .filter_map(|r| r["conn"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_dropping_every_connection_is_invisible_to_the_client() {
    let kdc = Kdc::start(&[(SVC_USER, SVC_PASSWORD)], &[BACKEND_SPN], &[]).await;
    let gw = gateway(&kdc, 1).await;
    let mut a = gw.pypsrp_cert_args("wsman/krbhost");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "KRB-HOST", "{run:?}");
    // Create, Command, Receive(s), Signal, Delete: each on a fresh, freshly authenticated
    // connection, because the host hung up after every answer.
    let conns = authenticated_connections(&gw);
    assert!(conns.len() >= 4, "{conns:?}: {:#?}", gw.standin.requests());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kdc_going_away_mid_session_is_a_clear_fault_and_the_session_recovers() {
    let mut kdc = Kdc::start(&[(SVC_USER, SVC_PASSWORD)], &[BACKEND_SPN], &[]).await;
    // The host keeps a connection for two answers: the Create and the first Command share
    // one login; the second Command needs a new one.
    let gw = gateway(&kdc, 2).await;
    let alice = gw.alice_client();
    let to = "https://gw/wsman/krbhost";
    let r = alice
        .post("/wsman/krbhost", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = shell_id(&r.body).unwrap();

    kdc.stop().await;
    // The established connection needs no KDC.
    let r = alice
        .post("/wsman/krbhost", None, &command(to, &sid, "hostname"))
        .await
        .unwrap();
    assert_eq!(
        r.status, 200,
        "established context keeps working: {}",
        r.body
    );

    // The host has hung up; logging in again needs the KDC, which is gone.
    let r = alice
        .post("/wsman/krbhost", None, &command(to, &sid, "whoami"))
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("could not log in to the host"),
        "the client is told why: {}",
        r.body
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["outcome"] == "failure"
            && e["reason"] == "kdc unreachable")
            .await,
        "{:#?}",
        gw.audit()
    );
    assert!(!gw.standin.saw_command("whoami"), "never reached the host");

    // The KDC is back: the same shell carries on.
    kdc.resume().await;
    let r = alice
        .post("/wsman/krbhost", None, &command(to, &sid, "whoami"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(gw.standin.saw_command("whoami"));
    gw.stop().await;
}

/// A `negotiate` target on the stand-in, with the KDC at `kdc`.
fn negotiate_target(port: u16, kdc: &Kdc, ntlm_fallback: bool) -> HostTarget {
    let mut t = HostTarget::new(
        "krb-host",
        "127.0.0.1",
        port,
        Scheme::Http,
        BackendAuth::Negotiate,
    );
    t.kdc = Some(kdc.url());
    t.spn = Some(BACKEND_SPN.into());
    t.ntlm_fallback = ntlm_fallback;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_falls_back_to_ntlm_only_when_allowed_and_only_without_kerberos() {
    let mut kdc = Kdc::start(&[(SVC_USER, SVC_PASSWORD)], &[BACKEND_SPN], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    // The host also knows the account for NTLM (as a domain member would).
    let users = dir.path().join("ntlm-users.txt");
    std::fs::write(&users, format!(":{SVC_USER}@{REALM}:{SVC_PASSWORD}\n")).unwrap();
    let users = users.display().to_string();
    let standin = Standin::start_kerberos_args(
        dir.path(),
        "KRB-HOST",
        &kdc,
        &kdc.keytab(BACKEND_SPN),
        None,
        &["--users", &users],
    )
    .await;
    let cred = || Credential::new(format!("{SVC_USER}@{REALM}"), SVC_PASSWORD);
    let create = || Bytes::from(create_cmd_shell("http://127.0.0.1:5985/wsman"));

    // A refused password never falls back: NTLM would only be a downgrade.
    let wrong = BackendClient::new(
        negotiate_target(standin.port, &kdc, true),
        Credential::new(format!("{SVC_USER}@{REALM}"), "not-the-password"),
    )
    .unwrap();
    match wrong.send(create()).await {
        Err(BackendError::Kerberos { source, .. }) => {
            assert_eq!(source.reason(), "kdc rejected the vaulted password")
        }
        other => panic!("expected a Kerberos error, got {other:?}"),
    }
    assert!(standin.requests().is_empty(), "the host was never asked");

    kdc.stop().await;
    // Without the setting, no KDC means no login.
    let strict = BackendClient::new(negotiate_target(standin.port, &kdc, false), cred()).unwrap();
    match strict.send(create()).await {
        Err(BackendError::Kerberos { source, .. }) => {
            assert_eq!(source.reason(), "kdc unreachable")
        }
        other => panic!("expected a Kerberos error, got {other:?}"),
    }
    assert!(standin.requests().is_empty(), "the host was never asked");

    // With it, the same login goes through NTLM, sealed.
    let lenient = BackendClient::new(negotiate_target(standin.port, &kdc, true), cred()).unwrap();
    let r = lenient.send(create()).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let done: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| r["status"] == 200 && r["action"].is_string())
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert_eq!(done[0]["encrypted"], true, "{done:#?}");
    assert!(
        done[0]["user"]
            .as_str()
            .is_some_and(|u| u.eq_ignore_ascii_case(&format!("{SVC_USER}@{REALM}"))),
        "{done:#?}"
    );
}
