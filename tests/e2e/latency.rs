//! Backend login latency per method (issue #5's benchmark), against the same real peers as
//! the tests: the pyspnego stand-in host and the Heimdal KDC on loopback. It prints numbers
//! and asserts nothing about them; run it on purpose:
//!
//! `cargo test --test main latency -- --ignored --nocapture`
//!
//! "first" is the first request of a session: a new client, so TCP connect, the login
//! (NTLM: 2 round trips; Kerberos: AS and TGS exchanges with the KDC, then the AP exchange
//! with the host) and the sealed request. "later" is a request on the kept-alive,
//! authenticated connection (sealing only). The host is Python, so its own share is in both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark: prints its numbers"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use hopgate::backend::{BackendAuth, BackendClient, Credential, HostTarget, Scheme};

use crate::support::kdc::{Kdc, BACKEND_SPN, REALM, SVC_PASSWORD, SVC_USER};
use crate::support::{Standin, BACKEND_DOMAIN, BACKEND_PASSWORD, BACKEND_USER};

const FIRST_RUNS: usize = 15;
const LATER_RUNS: usize = 100;

fn create_shell() -> Bytes {
    Bytes::from(crate::support::raw::create_cmd_shell(
        "http://127.0.0.1:5985/wsman",
    ))
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

async fn measure(name: &str, target: impl Fn() -> HostTarget, cred: impl Fn() -> Credential) {
    let mut first = Vec::new();
    let mut client = None;
    for _ in 0..FIRST_RUNS {
        let c = BackendClient::new(target(), cred()).unwrap();
        let t = Instant::now();
        let r = c.send(create_shell()).await.unwrap();
        first.push(t.elapsed());
        assert_eq!(r.status, 200, "{name}");
        client = Some(c);
    }
    let client = client.unwrap();
    let mut later = Vec::new();
    for _ in 0..LATER_RUNS {
        let t = Instant::now();
        let r = client.send(create_shell()).await.unwrap();
        later.push(t.elapsed());
        assert_eq!(r.status, 200, "{name}");
    }
    let (f, l) = (median_ms(first), median_ms(later));
    println!(
        "{name:<10} first request {f:>7.2} ms   later requests {l:>6.2} ms   login adds {:>7.2} ms  (medians of {FIRST_RUNS} / {LATER_RUNS})",
        f - l
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn backend_login_latency_per_method() {
    let dir = tempfile::tempdir().unwrap();
    let ntlm = Standin::start_ntlm(dir.path(), "NTLM-HOST").await;
    measure(
        "ntlm",
        || {
            HostTarget::new(
                "ntlm-host",
                "127.0.0.1",
                ntlm.port,
                Scheme::Http,
                BackendAuth::Ntlm,
            )
        },
        || {
            Credential::new(
                format!("{BACKEND_DOMAIN}\\{BACKEND_USER}"),
                BACKEND_PASSWORD,
            )
        },
    )
    .await;

    let kdc = Kdc::start(&[(SVC_USER, SVC_PASSWORD)], &[BACKEND_SPN], &[]).await;
    let krb = Standin::start_kerberos(dir.path(), "KRB-HOST", &kdc, &kdc.keytab(BACKEND_SPN)).await;
    for (name, auth) in [
        ("kerberos", BackendAuth::Kerberos),
        ("negotiate", BackendAuth::Negotiate),
    ] {
        measure(
            name,
            || {
                let mut t = HostTarget::new("krb-host", "127.0.0.1", krb.port, Scheme::Http, auth);
                t.kdc = Some(kdc.url());
                t.spn = Some(BACKEND_SPN.into());
                t
            },
            || Credential::new(format!("{SVC_USER}@{REALM}"), SVC_PASSWORD),
        )
        .await;
    }
}
