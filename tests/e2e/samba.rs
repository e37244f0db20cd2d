//! Backend logins against Active Directory as Samba implements it: a Samba AD DC on
//! 127.0.0.1:88 (tests/support/samba.rs) is the KDC for `auth = "delegate"` (constrained
//! delegation with protocol transition, the gateway as its own `hopgate serve` process) and for
//! `auth = "kerberos"` and `"negotiate"` with a vaulted AD password. The DC holds the fixed port 88, so every
//! assertion against it lives in the one test function below.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use crate::support::kdc::{start_delegate_gateway_as, start_gateway, DelegateHost, KrbHost};
use crate::support::samba::{
    SambaDc, AD_BACKEND_SPN, AD_GATEWAY, AD_OTHER_SPN, AD_REALM, AD_SVC_PASSWORD, AD_SVC_USER,
};
use crate::support::{python, Gateway, Standin, ALICE};

fn gateway_log(gw: &Gateway) -> String {
    std::fs::read_to_string(gw.dir.path().join("gateway.log")).unwrap_or_default()
}

async fn pypsrp_hostname(gw: &Gateway, host: &str) -> crate::support::ClientRun {
    let mut a = gw.pypsrp_cert_args(&format!("wsman/{host}"));
    a.extend(["--cmd".to_string(), "hostname".into()]);
    python("tests/clients/pypsrp_client.py", &a).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_directory_delegation_and_vaulted_passwords() {
    let dc = SambaDc::start().await;
    eprintln!(
        "samba AD DC provisioned and listening in {:.1} s",
        dc.start_time.as_secs_f64()
    );
    delegation_reaches_the_host_as_alice_and_not_outside_the_acl(&dc).await;
    vaulted_ad_password_over_kerberos_and_negotiate(&dc).await;
    dc.stop().await;
}

/// `auth = "delegate"`: the gateway (account gwsvc, keytab from the vault) logs in to the
/// allowed host as alice@SAMBA.TEST; the host outside msDS-AllowedToDelegateTo is refused.
async fn delegation_reaches_the_host_as_alice_and_not_outside_the_acl(dc: &SambaDc) {
    let alice = format!("alice@{AD_REALM}");
    let dir = tempfile::tempdir().unwrap();
    let allowed =
        Standin::start_kerberos(dir.path(), "AD-HOST", dc, &dc.keytab(AD_BACKEND_SPN)).await;
    let other = Standin::start_kerberos(dir.path(), "AD-OTHER", dc, &dc.keytab(AD_OTHER_SPN)).await;
    let hosts = [
        DelegateHost {
            name: "adhost",
            port: allowed.port,
            spn: AD_BACKEND_SPN,
            https_ca: None,
        },
        DelegateHost {
            name: "adother",
            port: other.port,
            spn: AD_OTHER_SPN,
            https_ca: None,
        },
    ];
    let gw =
        start_delegate_gateway_as(dir, allowed, dc, &hosts, AD_GATEWAY, &dc.keytab(AD_GATEWAY))
            .await;

    let run = pypsrp_hostname(&gw, "adhost").await;
    assert_eq!(run.code, 0, "{run:?}\n{}\n{}", gateway_log(&gw), dc.log());
    assert_eq!(run.stdout().trim(), "AD-HOST", "{run:?}");
    crate::support::eventually(Duration::from_secs(5), || {
        !gw.standin.authenticated_users().is_empty()
    })
    .await;
    let users = gw.standin.authenticated_users();
    assert!(!users.is_empty(), "{:#?}", gw.standin.requests());
    for (user, encrypted) in &users {
        assert_eq!(
            user, &alice,
            "the host sees alice, not the gateway: {users:?}"
        );
        assert!(encrypted, "bodies are sealed over http");
    }
    assert!(
        gw.audit_has(|e| e["event"] == "session.start"
            && e["principal"] == ALICE
            && e["backend_user"] == alice.as_str()
            && e["backend_auth"] == "delegate")
            .await,
        "{:#?}",
        gw.audit()
    );

    // No password of alice exists anywhere: the DC saw the gateway log in with its keytab,
    // never alice (her tickets came from S4U2Self and S4U2Proxy, TGS exchanges).
    assert!(dc.kdc_logins(AD_GATEWAY) >= 1, "{}", dc.log());
    assert_eq!(dc.kdc_logins("alice"), 0, "{}", dc.log());

    // HTTP/other.samba.test is a real service with a key, but not in gwsvc's
    // msDS-AllowedToDelegateTo: the DC refuses S4U2Proxy and the host is never asked.
    let run = pypsrp_hostname(&gw, "adother").await;
    assert_ne!(run.code, 0, "{run:?}");
    let err = run.json["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("could not log in to the host") && err.contains("adother"),
        "client sees why: {run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "adother"
            && e["outcome"] == "failure"
            && e["backend_user"] == alice.as_str()
            && e["reason"] == "kdc refused the delegation to this host")
            .await,
        "{:#?}\n{}",
        gw.audit(),
        gateway_log(&gw)
    );
    assert!(
        other.authenticated_users().is_empty(),
        "the refused host ran nothing: {:#?}",
        other.requests()
    );

    // A person the directory does not know: S4U2Self fails, named as such.
    let token = gw.token("mallory", &["ops"], None, Duration::from_secs(600));
    let mut a = gw.pypsrp_base("wsman/adhost", "basic");
    a.extend([
        "--user".to_string(),
        "mallory".into(),
        "--password".into(),
        token,
    ]);
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "adhost"
            && e["backend_user"] == format!("mallory@{AD_REALM}")
            && e["reason"] == "kdc does not know the user")
            .await,
        "{:#?}\n{}",
        gw.audit(),
        gateway_log(&gw)
    );
    gw.stop().await;
}

/// `auth = "kerberos"` and `"negotiate"` with the vaulted password of the AD account svcwinrm
/// (sspi, in the test process): each host sees svcwinrm@SAMBA.TEST, and the DC saw svcwinrm
/// log in.
async fn vaulted_ad_password_over_kerberos_and_negotiate(dc: &SambaDc) {
    let dir = tempfile::tempdir().unwrap();
    let krb = Standin::start_kerberos(dir.path(), "AD-KRB", dc, &dc.keytab(AD_BACKEND_SPN)).await;
    let nego = Standin::start_kerberos(dir.path(), "AD-NEGO", dc, &dc.keytab(AD_BACKEND_SPN)).await;
    let host = |name: &'static str, auth: &'static str, port: u16| KrbHost {
        name,
        auth,
        port,
        credential: "ad-svc",
        spn: AD_BACKEND_SPN.into(),
    };
    let hosts = [
        host("adkrb", "kerberos", krb.port),
        host("adnego", "negotiate", nego.port),
    ];
    // No realm in the vaulted name: the hosts' `realm` completes it.
    let vault = [("ad-svc", AD_SVC_USER, AD_SVC_PASSWORD)];
    let gw = start_gateway(dir, krb, dc, &hosts, &vault).await;
    let svc = format!("{AD_SVC_USER}@{AD_REALM}");
    for (name, hostname, standin) in [
        ("adkrb", "AD-KRB", &gw.standin),
        ("adnego", "AD-NEGO", &nego),
    ] {
        let run = pypsrp_hostname(&gw, name).await;
        assert_eq!(run.code, 0, "{name}: {run:?}\n{}", dc.log());
        assert_eq!(run.stdout().trim(), hostname, "{run:?}");
        let users = standin.authenticated_users();
        assert!(!users.is_empty(), "{name}: {:#?}", standin.requests());
        for (user, encrypted) in &users {
            assert_eq!(user, &svc, "{name}: {users:?}");
            assert!(encrypted, "{name}: bodies are sealed over http");
        }
    }
    assert!(dc.kdc_logins(AD_SVC_USER) >= 1, "{}", dc.log());
    gw.stop().await;
}
