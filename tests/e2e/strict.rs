//! Strictness where it is cheap (issue #14 item 5) and hostile envelopes (item 3), seen
//! from a client: each refusal is clear, audited, reaches nothing, and a healthy session
//! beside it keeps working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use crate::support::raw::{command, create_cmd_shell, shell_id, RawClient};
use crate::support::{Gateway, GatewayOptions};

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{password}")
        )
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_authentication_refusals_are_clear_and_audited() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let anon = RawClient::new(gw.addr, &gw.certs.ca, None);
    let body = create_cmd_shell("https://gw/wsman/standin");
    let good = format!(
        "Bearer {}",
        gw.token("bob", &[], None, Duration::from_secs(600))
    );

    // A repeated Authorization header, the valid one first: no longer "first wins".
    let r = anon
        .post_with(
            "/wsman/standin",
            &[("authorization", &good), ("authorization", "Bearer x.y.z")],
            &body,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("repeated Authorization header"),
        "{}",
        r.body
    );
    assert!(
        gw.audit_has(
            |e| e["event"] == "authn.failure" && e["reason"] == "repeated_authorization_header"
        )
        .await,
        "{:#?}",
        gw.audit()
    );

    // A failed Basic sign-in records whom it claimed to be, never the password.
    let r = anon
        .post(
            "/wsman/standin",
            Some(&basic("mallory", "P4ss!word")),
            &body,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(
        gw.audit_has(|e| e["event"] == "authn.failure"
            && e["reason"] == "token_invalid"
            && e["claimed_user"] == "mallory")
            .await,
        "{:#?}",
        gw.audit()
    );

    // A token valid for ten years is refused with its own reason.
    let forever = gw.token("bob", &[], None, Duration::from_secs(10 * 365 * 86_400));
    let r = anon
        .post("/wsman/standin", Some(&format!("Bearer {forever}")), &body)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(
        gw.audit_has(|e| e["event"] == "authn.failure" && e["reason"] == "token_lifetime_too_long")
            .await,
        "{:#?}",
        gw.audit()
    );

    let audit_text = std::fs::read_to_string(gw.dir.path().join("audit/audit.jsonl")).unwrap();
    assert!(!audit_text.contains("P4ss!word"));
    assert!(
        gw.standin.requests().is_empty(),
        "host saw {:#?}",
        gw.standin.requests()
    );
    // The single, valid header still authenticates (bob holds no role for the host, so
    // the answer is the not-available fault, not 400 or 401).
    let r = anon
        .post("/wsman/standin", Some(&good), &body)
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("is not available through this gateway"),
        "{}",
        r.body
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_must_understand_headers_and_attribute_floods_are_refused() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let alice = gw.alice_client();
    let to = "https://gw/wsman/standin";
    let r = alice
        .post("/wsman/standin", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = shell_id(&r.body).unwrap();

    // An unknown header the host must understand: the SOAP MustUnderstand fault.
    let sneaky = command(to, &sid, "hostname").replace(
        "<env:Header>",
        r#"<env:Header><x:RunAs xmlns:x="urn:example:runas" env:mustUnderstand="true">Administrator</x:RunAs>"#,
    );
    let r = alice.post("/wsman/standin", None, &sneaky).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains(":MustUnderstand</"), "{}", r.body);
    assert!(r.body.contains(r#"qname="q:RunAs""#), "{}", r.body);
    assert!(!gw.standin.saw_command("hostname"));

    // The Create of issue #14: rsp:Shell with 100,000 attributes, under the body limit.
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let flood = create_cmd_shell(to).replacen("<rsp:Shell>", &format!("<rsp:Shell{attrs}>"), 1);
    assert!(flood.len() < 1 << 20, "{}", flood.len());
    let start = Instant::now();
    let r = alice.post("/wsman/standin", None, &flood).await.unwrap();
    let took = start.elapsed();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("more than 64 attributes"), "{}", r.body);
    assert!(took < Duration::from_secs(3), "{took:?}");

    // NUL in text.
    let nul = command(to, &sid, "host\u{0}name");
    let r = alice.post("/wsman/standin", None, &nul).await.unwrap();
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("U+0000 is not allowed"), "{}", r.body);

    // The session beside the attacks still works.
    let r = alice
        .post("/wsman/standin", None, &command(to, &sid, "hostname"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    gw.stop().await;
}

/// Two gateways on one audit directory would fork the chain (issue #14): the second
/// refuses to start, saying why, and the first keeps writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_gateway_on_the_same_audit_directory_refuses_to_start() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hopgate"))
        .arg("serve")
        .arg("--config")
        .arg(gw.dir.path().join("hopgate.toml"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("the second gateway exits")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is in use by another hopgate process"),
        "{stderr}"
    );
    assert!(gw.dir.path().join("audit/hopgate.lock").is_file());
    // The first still serves and audits.
    let alice = gw.alice_client();
    let r = alice
        .post(
            "/wsman/standin",
            None,
            &create_cmd_shell("https://gw/wsman/standin"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(gw.audit_has(|e| e["event"] == "session.start").await);
    gw.stop().await;
}

/// A client-certificate connection keeps its principal between requests; a repeated
/// Authorization header on it is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_header_is_refused_on_a_signed_in_certificate_connection() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let body = create_cmd_shell("https://gw/wsman/standin");
    let good = format!(
        "Bearer {}",
        gw.token("bob", &[], None, Duration::from_secs(600))
    );
    let mut conn = gw.alice_client().connect().await.unwrap();
    let r = conn.post_with("/wsman/standin", &[], &body).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = conn
        .post_with(
            "/wsman/standin",
            &[("authorization", &good), ("authorization", "Bearer x.y.z")],
            &body,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{r:?}");

    gw.stop().await;
}
