//! `Test-WSMan` through the gateway (issue 15, item 4): an Identify without credentials is
//! answered by the gateway and names only hopgate; an authenticated Identify on a granted
//! host is relayed to that host; with no host named, the gateway answers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::support::raw::{element_text, RawClient};
use crate::support::{Gateway, GatewayOptions};

/// The body Windows' WinRM client sends for `Test-WSMan` (DSP0226 §11).
const IDENTIFY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"#;

/// The answer names hopgate and its version, and nothing of the inventory or a host.
#[track_caller]
fn assert_names_only_hopgate(body: &str) {
    assert_eq!(
        element_text(body, "ProductVendor").as_deref(),
        Some("hopgate"),
        "{body}"
    );
    assert_eq!(
        element_text(body, "ProductVersion").as_deref(),
        Some(env!("CARGO_PKG_VERSION")),
        "{body}"
    );
    assert_eq!(
        element_text(body, "ProtocolVersion").as_deref(),
        Some("http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"),
        "{body}"
    );
    for leak in [
        "standin",
        "STANDIN",
        "unreachable",
        "127.0.0.1",
        "Microsoft",
        "OS:",
    ] {
        assert!(!body.contains(leak), "{leak} in {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_identify_names_hopgate_and_nothing_else() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let anon = RawClient::new(gw.addr, &gw.certs.ca, None);
    // The gateway's own first record is written as it starts: count from after it.
    assert!(gw.audit_has(|e| e["event"] == "gateway.start").await);
    let audit_before = gw.audit().len();

    // What Test-WSMan sends, where curl would send it, and Windows' anonymous path.
    for (path, headers) in [
        ("/wsman", vec![("wsmanidentify", "unauthenticated")]),
        ("/wsman", vec![]),
        ("/wsman/standin", vec![("wsmanidentify", "unauthenticated")]),
        ("/wsman/no-such-host", vec![]),
        ("/wsman-anon/identify", vec![]),
    ] {
        let r = anon.post_with(path, &headers, IDENTIFY).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/soap+xml"),
            "{r:?}"
        );
        assert_names_only_hopgate(&r.body);
    }
    // No host was asked, and the answers left no audit trail.
    assert!(
        gw.standin.requests().is_empty(),
        "{:?}",
        gw.standin.requests()
    );

    // Without credentials, anything but an Identify is refused (and audited) as before.
    let create = crate::support::raw::create_cmd_shell("https://gw/wsman/standin");
    let r = anon.post("/wsman/standin", None, &create).await.unwrap();
    assert_eq!(r.status, 401);
    let r = anon
        .post_with("/wsman-anon/identify", &[], &create)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    // A body too large to be an Identify is not read for it.
    let big = format!("{IDENTIFY}{}", " ".repeat(8 * 1024));
    let r = anon.post("/wsman", None, &big).await.unwrap();
    assert_eq!(r.status, 401);
    // Only the refused requests are in the audit, none of the Identify answers. The two
    // refusals share a source and a reason: the first is written, the second is counted
    // in that interval's `authn.failures` line (issue #14's flood aggregation).
    let failures = || {
        gw.audit()[audit_before..]
            .iter()
            .filter(|e| e["event"] == "authn.failure")
            .count()
    };
    assert!(
        crate::support::eventually(std::time::Duration::from_secs(5), || failures() == 1).await,
        "{:#?}",
        gw.audit()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(failures(), 1, "{:#?}", gw.audit());
    assert_eq!(gw.audit().len() - audit_before, 1, "{:#?}", gw.audit());
    assert!(gw.standin.requests().is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_identify_is_relayed_to_the_granted_host() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let alice = gw.alice_client();

    let r = alice.post("/wsman/standin", None, IDENTIFY).await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        element_text(&r.body, "ProductVendor").as_deref(),
        Some("Microsoft Corporation"),
        "the host's own answer: {r:?}"
    );
    assert!(
        gw.standin
            .requests()
            .iter()
            .any(|q| q["action"] == "Identify" && q["status"] == 200),
        "{:?}",
        gw.standin.requests()
    );

    // A host the principal holds no role for looks like one that does not exist.
    let r = alice
        .post("/wsman/no-such-host", None, IDENTIFY)
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.body.contains("DestinationUnreachable"), "{r:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_identify_without_a_host_is_answered_by_the_gateway() {
    let gw = Gateway::start(GatewayOptions {
        default_host: None,
        ..GatewayOptions::default()
    })
    .await;
    let r = gw
        .alice_client()
        .post("/wsman", None, IDENTIFY)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_names_only_hopgate(&r.body);
    assert!(gw.standin.requests().is_empty());

    // Anything else without a host is still refused for want of a target.
    let create = crate::support::raw::create_cmd_shell("https://gw/wsman");
    let r = gw
        .alice_client()
        .post("/wsman", None, &create)
        .await
        .unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert!(r.body.contains("No target host"), "{r:?}");
    gw.stop().await;
}
