//! PowerShell 7's URL form and other session configurations (issue 15, item 7): a client
//! that connects to `/wsman?PSVersion=7.x` (with or without a host in the path) or opens
//! another configuration (`-ConfigurationName`, a JEA endpoint) is routed and judged like
//! one on the default.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::time::Duration;

use crate::support::{python, Gateway, GatewayOptions, ALICE};

/// alice may open any configuration (the e2e role); the `jea` group only JEA endpoints and
/// the restricted one, where it may run Get-Date alone.
fn policies() -> Vec<(&'static str, String)> {
    vec![
        ("tests.toml", crate::support::test_policy()),
        (
            "jea.toml",
            r#"
[[role]]
name = "jea-only"
description = "JEA endpoints only"
principals = { groups = ["jea"] }
hosts = { names = ["standin"] }
[role.psrp]
configurations = ["JEA*", "Microsoft.PowerShell.Restricted"]
visible_cmdlets = ["Get-Date"]
"#
            .to_string(),
        ),
    ]
}

async fn pypsrp(gw: &Gateway, path: &str, extra: &[&str]) -> crate::support::ClientRun {
    let mut a = gw.pypsrp_cert_args(path);
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/pypsrp_client.py", &a).await
}

async fn pypsrp_as_jea(gw: &Gateway, path: &str, extra: &[&str]) -> crate::support::ClientRun {
    let token = gw.token("carol", &["jea"], None, Duration::from_secs(600));
    let mut a = gw.pypsrp_base(path, "basic");
    a.extend(["--user".into(), "carol".into(), "--password".into(), token]);
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/pypsrp_client.py", &a).await
}

/// The resource URIs the host saw Creates for.
fn created_resources(gw: &Gateway) -> Vec<String> {
    gw.standin
        .requests()
        .iter()
        .filter(|r| {
            r["action"]
                .as_str()
                .is_some_and(|a| a.ends_with("transfer/Create"))
        })
        .filter_map(|r| r["resource_uri"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powershell_7_url_form_is_routed_like_the_default() {
    let gw = Gateway::start(GatewayOptions {
        policies: policies(),
        ..GatewayOptions::default()
    })
    .await;
    for path in [
        "wsman?PSVersion=7.1",
        "wsman/standin?PSVersion=7.4.6",
        "wsman/?PSVersion=7.1",
    ] {
        let run = pypsrp(
            &gw,
            path,
            &["--cmdlet", "Get-Service", "--param", "Name=Spooler"],
        )
        .await;
        assert_eq!(run.code, 0, "{path}: {run:?}");
        assert_eq!(
            run.json["output"][0]["properties"]["Name"], "Spooler",
            "{path}: {run:?}"
        );
        // Judged the same: a denied pipeline fails inside PSRP, the host never sees it.
        let run = pypsrp(&gw, path, &["--cmdlet", "Stop-Computer"]).await;
        assert_eq!(run.code, 0, "{path}: {run:?}");
        assert_eq!(run.json["had_errors"], true, "{path}: {run:?}");
        assert_eq!(run.json["error_ids"][0], "HopgateDenied", "{path}: {run:?}");
    }
    assert!(!gw.standin.saw_command("Stop-Computer"));
    assert!(
        gw.audit_has(|e| e["event"] == "command.denied"
            && e["principal"] == ALICE
            && e["command"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("Stop-Computer")))
            .await
    );
    // An unknown host in the path is refused as without the query.
    let run = pypsrp(
        &gw,
        "wsman/nowhere?PSVersion=7.1",
        &["--cmdlet", "Get-Date"],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_session_configurations_are_relayed_and_judged() {
    let gw = Gateway::start(GatewayOptions {
        policies: policies(),
        ..GatewayOptions::default()
    })
    .await;

    // alice's role names no configurations: any may be opened, commands judged as usual.
    for conf in ["Microsoft.PowerShell.Restricted", "JEAMaintenance"] {
        let run = pypsrp(
            &gw,
            "wsman/standin?PSVersion=7.1",
            &["--configuration-name", conf, "--cmdlet", "Get-Date"],
        )
        .await;
        assert_eq!(run.code, 0, "{conf}: {run:?}");
        assert_eq!(run.json["had_errors"], false, "{conf}: {run:?}");
        let run = pypsrp(
            &gw,
            "wsman/standin",
            &["--configuration-name", conf, "--cmdlet", "Stop-Computer"],
        )
        .await;
        assert_eq!(run.json["error_ids"][0], "HopgateDenied", "{conf}: {run:?}");
    }
    let resources = created_resources(&gw);
    for conf in ["Microsoft.PowerShell.Restricted", "JEAMaintenance"] {
        let uri = format!("http://schemas.microsoft.com/powershell/{conf}");
        assert!(resources.contains(&uri), "{uri} not in {resources:?}");
    }

    // The jea group: its configurations open, its commands run, others are judged.
    let run = pypsrp_as_jea(
        &gw,
        "wsman/standin",
        &[
            "--configuration-name",
            "JEAMaintenance",
            "--cmdlet",
            "Get-Date",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json["had_errors"], false, "{run:?}");
    let run = pypsrp_as_jea(
        &gw,
        "wsman?PSVersion=7.1",
        &[
            "--configuration-name",
            "Microsoft.PowerShell.Restricted",
            "--cmdlet",
            "Get-Service",
        ],
    )
    .await;
    assert_eq!(run.json["error_ids"][0], "HopgateDenied", "{run:?}");

    // The default configuration is not one of the role's: the Create is refused with a
    // fault, audited, and the host never sees it.
    let before = created_resources(&gw).len();
    let run = pypsrp_as_jea(&gw, "wsman/standin", &["--cmdlet", "Get-Date"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Access is denied by hopgate"),
        "{run:?}"
    );
    assert_eq!(created_resources(&gw).len(), before);
    assert!(
        gw.audit_has(|e| e["event"] == "access.denied" && e["principal"] == "carol")
            .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}
