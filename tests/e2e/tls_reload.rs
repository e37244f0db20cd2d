//! Certificates reload on SIGHUP (issue 10 item 5): a gateway running as its own process
//! gets a new server certificate and then a CRL; established connections keep working,
//! new handshakes see the new configuration, a revoked client certificate is refused at the
//! handshake and audited, a bad file keeps what is in force.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::time::Duration;

use hopgate::devcerts::{DevCa, IssuedCert};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::support::raw::{create_cmd_shell, RawClient};
use crate::support::{eventually, python, Gateway, GatewayOptions, Standin, ALICE};

const TO: &str = "https://gw/wsman/standin";

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn client(gw: &Gateway, cert: &Path, key: &Path) -> RawClient {
    RawClient::new(gw.addr, &gw.certs.ca, Some((cert, key)))
}

/// Waits for the `n`-th `tls.reload` event and returns it.
async fn reload_event(gw: &Gateway, n: usize) -> serde_json::Value {
    let reloads = || {
        gw.audit()
            .into_iter()
            .filter(|e| e["event"] == "tls.reload")
            .count()
    };
    assert!(
        eventually(Duration::from_secs(10), || reloads() >= n).await,
        "no tls.reload #{n}: {:#?}",
        gw.audit()
    );
    gw.audit()
        .into_iter()
        .filter(|e| e["event"] == "tls.reload")
        .nth(n - 1)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_server_certificate_and_a_crl_refuses_a_revoked_client() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Our own dev CA (the gateway directory keeps a complete set it finds), a second client
    // to revoke, and an empty CRL from the start.
    let ca = DevCa::new().unwrap();
    ca.write(&d.join("ca.pem"), &d.join("ca.key")).unwrap();
    let names = ["localhost".to_string(), "127.0.0.1".to_string()];
    let first = ca.server(&names).unwrap();
    first
        .write(&d.join("server.pem"), &d.join("server.key"))
        .unwrap();
    ca.client(ALICE)
        .unwrap()
        .write(&d.join("client.pem"), &d.join("client.key"))
        .unwrap();
    let bob: IssuedCert = ca.client("bob@hopgate.test").unwrap();
    bob.write(&d.join("bob.pem"), &d.join("bob.key")).unwrap();
    std::fs::write(d.join("crl.pem"), ca.crl(&[]).unwrap()).unwrap();

    let standin = Standin::start_ntlm(d, "STANDIN-01").await;
    let mut gwdir = Gateway::standin_dir(&standin, GatewayOptions::default());
    gwdir.listener_extra = "crl = \"crl.pem\"".into();
    let gw = gwdir.launch_process(dir, standin).await;
    let d = gw.dir.path().to_path_buf();
    let alice = client(&gw, &gw.certs.client_cert, &gw.certs.client_key);
    let bob_client = client(&gw, &d.join("bob.pem"), &d.join("bob.key"));

    // A connection opened before any reload, used again after each.
    let mut open = alice.connect().await.unwrap();
    assert_eq!(open.server_cert, der(&first.cert_pem));
    let r = open
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // Bob gets an HTTP answer (what policy makes of him does not matter here).
    bob_client
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .unwrap();

    // 1. A new server certificate.
    let second = ca.server(&names).unwrap();
    second
        .write(&d.join("server.pem"), &d.join("server.key"))
        .unwrap();
    gw.sighup().await;
    let e = reload_event(&gw, 1).await;
    assert_eq!(e["outcome"], "applied", "{e}");
    assert!(e["subject"].as_str().unwrap().contains("localhost"), "{e}");
    assert!(e["not_after"].as_str().unwrap().len() >= 20, "{e}");
    assert_eq!(e["crl_revoked"], 0, "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");
    let fresh = alice.connect().await.unwrap();
    assert_eq!(
        fresh.server_cert,
        der(&second.cert_pem),
        "new handshakes see the new certificate"
    );
    let r = open
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "the open connection keeps working: {r:?}");

    // 2. A CRL revoking bob.
    std::fs::write(d.join("crl.pem"), ca.crl(&[&bob]).unwrap()).unwrap();
    gw.sighup().await;
    let e = reload_event(&gw, 2).await;
    assert_eq!(e["outcome"], "applied", "{e}");
    assert_eq!(e["crl_revoked"], 1, "{e}");
    let refused = bob_client
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await;
    assert!(
        refused.is_err(),
        "a revoked certificate gets no HTTP answer: {refused:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "authn.failure" && e["reason"] == "certificate revoked")
            .await,
        "{:#?}",
        gw.audit()
    );
    // Others keep working: alice on a new connection, on the old one, and a real client.
    let r = alice
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = open
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");

    // 3. A bad key file: refused, recorded, the configuration in force stays.
    std::fs::write(d.join("server.key"), "not a key").unwrap();
    gw.sighup().await;
    let e = reload_event(&gw, 3).await;
    assert_eq!(e["outcome"], "refused", "{e}");
    assert!(e["reason"].as_str().unwrap().contains("server.key"), "{e}");
    assert_eq!(e["crl_revoked"], 1, "{e}");
    let after = alice.connect().await.unwrap();
    assert_eq!(after.server_cert, der(&second.cert_pem));
    assert!(bob_client
        .post("/wsman/standin", None, &create_cmd_shell(TO))
        .await
        .is_err());

    gw.stop().await;
}
