//! Disconnected sessions (issue 15, item 5): pypsrp's `RunspacePool.disconnect()`,
//! `connect()` and `get_runspace_pools()` through the gateway. Only the principal who
//! created a shell can disconnect, reconnect to, connect to or see it; the gateway keeps
//! judging the shell across a disconnect, and the audit records each step.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use std::time::Duration;

use serde_json::Value;

use crate::support::{python, ClientRun, Gateway, GatewayOptions, ALICE};

async fn as_alice(gw: &Gateway, extra: &[&str]) -> ClientRun {
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/pypsrp_client.py", &a).await
}

async fn as_bob(gw: &Gateway, extra: &[&str]) -> ClientRun {
    let token = gw.token("bob", &["ops"], None, Duration::from_secs(600));
    let mut a = gw.pypsrp_base("wsman/standin", "basic");
    a.extend(["--user".into(), "bob".into(), "--password".into(), token]);
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/pypsrp_client.py", &a).await
}

fn pools(run: &ClientRun) -> Vec<String> {
    run.json["pools"]
        .as_array()
        .unwrap_or_else(|| panic!("{run:?}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// The `session.connection` steps recorded for a shell, in order.
fn steps(gw: &Gateway, shell_id: &str) -> Vec<(String, String)> {
    gw.audit()
        .iter()
        .filter(|e| e["event"] == "session.connection" && e["shell_id"] == shell_id)
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_string(),
                e["step"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn host_actions(gw: &Gateway, suffix: &str) -> Vec<Value> {
    gw.standin
        .requests()
        .into_iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.ends_with(suffix)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_reconnect_keep_the_pool_judged() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let run = as_alice(
        &gw,
        &[
            "--disconnected",
            "reconnect",
            "--cmdlet",
            "Get-Service",
            "--param",
            "Name=Spooler",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    for r in run.json["runs"].as_array().unwrap() {
        assert_eq!(r["had_errors"], false, "{run:?}");
        assert_eq!(r["output"][0]["properties"]["Name"], "Spooler", "{run:?}");
    }
    let shell_id = run.json["shell_id"].as_str().unwrap().to_string();
    assert_eq!(host_actions(&gw, "/Disconnect").len(), 1);
    assert_eq!(host_actions(&gw, "/Reconnect").len(), 1);
    assert!(
        crate::support::eventually(Duration::from_secs(5), || steps(&gw, &shell_id)
            == [
                (ALICE.to_string(), "disconnect".to_string()),
                (ALICE.to_string(), "reconnect".to_string())
            ])
        .await,
        "{:#?}",
        gw.audit()
    );

    // Denied before and after the disconnect alike; the host sees neither.
    let run = as_alice(
        &gw,
        &["--disconnected", "reconnect", "--cmdlet", "Stop-Computer"],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    for r in run.json["runs"].as_array().unwrap() {
        assert_eq!(r["error_ids"][0], "HopgateDenied", "{run:?}");
    }
    assert!(!gw.standin.saw_command("Stop-Computer"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_sees_and_connects_to_a_disconnected_pool() {
    let gw = Gateway::start(GatewayOptions::default()).await;

    // alice and bob each leave a disconnected pool on the same host (and, behind the
    // gateway, under the same backend account).
    let alice_left = as_alice(&gw, &["--disconnected", "leave", "--cmdlet", "Get-Date"]).await;
    assert_eq!(alice_left.code, 0, "{alice_left:?}");
    let alice_pool = alice_left.json["shell_id"].as_str().unwrap().to_string();
    let bob_left = as_bob(&gw, &["--disconnected", "leave", "--cmdlet", "Get-Date"]).await;
    assert_eq!(bob_left.code, 0, "{bob_left:?}");
    let bob_pool = bob_left.json["shell_id"].as_str().unwrap().to_string();

    // Each lists only their own, although the host lists both.
    let list = as_alice(&gw, &["--disconnected", "list", "--cmdlet", "Get-Date"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(pools(&list), std::slice::from_ref(&alice_pool));
    let list = as_bob(&gw, &["--disconnected", "list", "--cmdlet", "Get-Date"]).await;
    assert_eq!(pools(&list), std::slice::from_ref(&bob_pool));
    assert!(
        host_actions(&gw, "enumeration/Enumerate")
            .iter()
            .any(|r| r["enumerated"] == 2),
        "{:#?}",
        gw.standin.requests()
    );

    // bob, knowing alice's pool id, cannot connect to it: the same fault as for a pool
    // that does not exist, recorded, and nothing reaches the host.
    let connects_before = host_actions(&gw, "/Connect").len();
    let stolen = as_bob(
        &gw,
        &[
            "--disconnected",
            "connect",
            "--pool-id",
            &alice_pool,
            "--cmdlet",
            "Get-Date",
        ],
    )
    .await;
    assert_eq!(stolen.code, 2, "{stolen:?}");
    assert_eq!(host_actions(&gw, "/Connect").len(), connects_before);
    assert!(
        gw.audit_has(|e| e["event"] == "access.denied"
            && e["principal"] == "bob"
            && e["shell_id"] == alice_pool.as_str())
            .await,
        "{:#?}",
        gw.audit()
    );

    // alice connects from a new client and carries on, judged as before.
    let back = as_alice(
        &gw,
        &[
            "--disconnected",
            "connect",
            "--pool-id",
            &alice_pool,
            "--cmdlet",
            "Get-Service",
            "--param",
            "Name=Spooler",
        ],
    )
    .await;
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(back.json["listed"], true, "{back:?}");
    assert_eq!(
        back.json["runs"][0]["output"][0]["properties"]["Name"], "Spooler",
        "{back:?}"
    );
    assert!(
        crate::support::eventually(Duration::from_secs(5), || steps(&gw, &alice_pool)
            == [
                (ALICE.to_string(), "disconnect".to_string()),
                (ALICE.to_string(), "connect".to_string())
            ])
        .await,
        "{:#?}",
        gw.audit()
    );
    // One session from Create to Delete: what ran before and after the disconnect.
    assert!(
        gw.audit_has(|e| e["event"] == "session.end"
            && e["shell_id"] == alice_pool.as_str()
            && e["commands_allowed"] == 2)
            .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_left_running_is_received_by_a_new_client() {
    // Invoke-Command -InDisconnectedSession, then Receive-PSSession from another client.
    let policy = crate::support::test_policy().replace(
        r#"    "Get-Date",
]"#,
        r#"    "Get-Date",
    { name = "Start-Sleep", parameters = [{ name = "Seconds" }] },
]"#,
    );
    assert!(policy.contains("Start-Sleep"));
    let gw = Gateway::start(GatewayOptions {
        policies: vec![("tests.toml", policy)],
        ..GatewayOptions::default()
    })
    .await;
    let left = as_alice(
        &gw,
        &[
            "--disconnected",
            "leave-running",
            "--cmdlet",
            "Start-Sleep",
            "--param",
            "Seconds=3",
        ],
    )
    .await;
    assert_eq!(left.code, 0, "{left:?}");
    let pool = left.json["shell_id"].as_str().unwrap().to_string();
    let command = left.json["command_id"].as_str().unwrap().to_string();

    // The owner sees the running command; another principal cannot even list it.
    let listed = as_alice(
        &gw,
        &[
            "--disconnected",
            "commands",
            "--pool-id",
            &pool,
            "--cmdlet",
            "Get-Date",
        ],
    )
    .await;
    assert_eq!(listed.json["commands"][0], command.as_str(), "{listed:?}");
    let bob = as_bob(
        &gw,
        &[
            "--disconnected",
            "commands",
            "--pool-id",
            &pool,
            "--cmdlet",
            "Get-Date",
        ],
    )
    .await;
    assert_eq!(bob.code, 2, "a fault: {bob:?}");
    assert!(
        gw.audit_has(|e| e["event"] == "access.denied"
            && e["principal"] == "bob"
            && e["reason"] == "commands of a shell that is not the principal's")
            .await,
        "{:#?}",
        gw.audit()
    );

    let got = as_alice(
        &gw,
        &[
            "--disconnected",
            "receive",
            "--pool-id",
            &pool,
            "--cmdlet",
            "Get-Date",
        ],
    )
    .await;
    assert_eq!(got.code, 0, "{got:?}");
    let commands = got.json["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1, "{got:?}");
    assert_eq!(commands[0]["command_id"], command.as_str(), "{got:?}");
    assert!(
        commands[0]["stdout"]
            .as_str()
            .unwrap()
            .contains("after-the-disconnect"),
        "{got:?}"
    );
    assert!(
        crate::support::eventually(Duration::from_secs(5), || steps(&gw, &pool)
            == [
                (ALICE.to_string(), "disconnect".to_string()),
                (ALICE.to_string(), "connect".to_string()),
                (ALICE.to_string(), "connect_command".to_string())
            ])
        .await,
        "{:#?}",
        gw.audit()
    );
    // The output received by the new client is recorded under the same session.
    assert!(
        gw.audit_has(|e| e["event"] == "output"
            && e["shell_id"] == pool.as_str()
            && e["stdout"]
                .as_str()
                .is_some_and(|o| o.contains("after-the-disconnect")))
            .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}

/// A Disconnect or Reconnect envelope for `shell_id`, as pypsrp writes them.
fn step_envelope(step: &str, shell_id: &str) -> String {
    let body = match step {
        "Disconnect" => "<rsp:Disconnect><rsp:IdleTimeOut>PT60S</rsp:IdleTimeOut></rsp:Disconnect>",
        _ => "<rsp:Reconnect/>",
    };
    format!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><wsa:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/{step}</wsa:Action><wsa:To>https://gw/wsman/standin</wsa:To><wsa:MessageID>uuid:{id}</wsa:MessageID><wsa:ReplyTo><wsa:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo><wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/powershell/Microsoft.PowerShell</wsman:ResourceURI><wsman:OperationTimeout>PT20S</wsman:OperationTimeout><wsman:SelectorSet><wsman:Selector Name="ShellId">{shell_id}</wsman:Selector></wsman:SelectorSet></s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
        id = uuid::Uuid::new_v4().to_string().to_uppercase(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_principal_cannot_disconnect_or_reconnect_a_shell() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let left = as_alice(&gw, &["--disconnected", "leave", "--cmdlet", "Get-Date"]).await;
    assert_eq!(left.code, 0, "{left:?}");
    let pool = left.json["shell_id"].as_str().unwrap().to_string();

    let bob_token = gw.token("bob", &["ops"], None, Duration::from_secs(600));
    let bob = crate::support::raw::RawClient::new(gw.addr, &gw.certs.ca, None);
    for step in ["Reconnect", "Disconnect"] {
        let r = bob
            .post(
                "/wsman/standin",
                Some(&format!("Bearer {bob_token}")),
                &step_envelope(step, &pool),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 500, "{step}: {r:?}");
        assert!(r.body.contains("InvalidSelectors"), "{step}: {r:?}");
    }
    assert!(host_actions(&gw, "/Reconnect").is_empty());
    assert_eq!(host_actions(&gw, "/Disconnect").len(), 1, "alice's own");
    assert!(
        crate::support::eventually(Duration::from_secs(5), || gw
            .audit()
            .iter()
            .filter(|e| e["event"] == "access.denied"
                && e["principal"] == "bob"
                && e["shell_id"] == pool.as_str()
                && e["reason"] == "shell belongs to another principal")
            .count()
            == 2)
        .await,
        "{:#?}",
        gw.audit()
    );

    // The owner can (the same request with her certificate).
    let r = gw
        .alice_client()
        .post("/wsman/standin", None, &step_envelope("Reconnect", &pool))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(host_actions(&gw, "/Reconnect").len(), 1);
    assert!(
        crate::support::eventually(Duration::from_secs(5), || steps(&gw, &pool)
            == [
                (ALICE.to_string(), "disconnect".to_string()),
                (ALICE.to_string(), "reconnect".to_string())
            ])
        .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}
