//! PowerShell remoting (PSRP) through the gateway: pipelines are decoded and decided before
//! the host sees them, also when they arrive split across Command and Send requests. A
//! refused pipeline fails inside PSRP (an error record, state Failed) and the runspace pool
//! stays open, as with a JEA endpoint.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::support::{python, Gateway, GatewayOptions, ALICE};

/// PSInvocationState Failed.
const FAILED: i64 = 5;

/// The run ended normally, with the pipeline failed by the gateway's error record.
#[track_caller]
fn assert_failed_by_gateway(run: &crate::support::ClientRun, names: &str) {
    assert_eq!(run.code, 0, "no exception, no fault: {run:?}");
    assert_eq!(run.json["had_errors"], true, "{run:?}");
    assert_eq!(run.json["state"], FAILED, "{run:?}");
    let err = run.json["errors"][0].as_str().unwrap_or_default();
    assert!(err.contains("Access is denied by hopgate"), "{err}");
    assert!(err.contains(names), "the record names the command: {err}");
    assert_eq!(run.json["error_ids"][0], "HopgateDenied", "{run:?}");
}

async fn pypsrp(gw: &Gateway, extra: &[&str]) -> crate::support::ClientRun {
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(extra.iter().map(|s| s.to_string()));
    python("tests/clients/pypsrp_client.py", &a).await
}

fn host_pipelines(gw: &Gateway) -> String {
    gw.standin
        .requests()
        .iter()
        .filter_map(|r| {
            r.get("psrp")
                .filter(|p| !p.is_null())
                .map(|p| p.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_cmdlet_runs_and_denied_one_never_reaches_the_host() {
    let gw = Gateway::start(GatewayOptions::default()).await;

    let run = pypsrp(&gw, &["--cmdlet", "Get-Service", "--param", "Name=Spooler"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.json["output"][0]["properties"]["Name"], "Spooler",
        "{run:?}"
    );
    assert!(host_pipelines(&gw).contains("Get-Service"));
    assert!(
        gw.audit_has(|e| e["event"] == "command.allowed"
            && e["principal"] == ALICE
            && e["command"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("Get-Service -Name")))
            .await,
        "{:#?}",
        gw.audit()
    );

    let run = pypsrp(&gw, &["--cmdlet", "Stop-Computer", "--param", "Force"]).await;
    assert_failed_by_gateway(&run, "Stop-Computer");
    assert!(
        gw.audit_has(|e| e["event"] == "command.denied"
            && e["command"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("Stop-Computer")))
            .await
    );
    assert!(
        !host_pipelines(&gw).contains("Stop-Computer"),
        "{}",
        host_pipelines(&gw)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_ps_is_judged_on_the_inner_script() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    // pypsrp sends: Invoke-Expression -Command '<script>' | Out-String -Stream
    let run = pypsrp(&gw, &["--ps", "Get-Service -Name WinRM"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("WinRM"), "{run:?}");

    for script in [
        "Stop-Computer -Force",
        "Get-Service; Stop-Computer",
        "iex 'Stop-Computer'",
        "& (gcm Stop-Computer)",
    ] {
        // execute_ps returns (output, streams, had_errors): the denial is an error record.
        let run = pypsrp(&gw, &["--ps", script]).await;
        assert_eq!(run.code, 0, "{script}: {run:?}");
        assert_eq!(run.json["had_errors"], true, "{script}: {run:?}");
        assert!(
            run.json["errors"][0]
                .as_str()
                .unwrap_or_default()
                .contains("Access is denied by hopgate"),
            "{script}: {run:?}"
        );
    }
    assert!(
        !gw.standin.saw_command("Stop-Computer"),
        "{}",
        host_pipelines(&gw)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_statement_cannot_hide_a_denied_command() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let pipeline = r#"[[{"name": "Get-Date"}], [{"name": "Stop-Computer"}]]"#;
    let run = pypsrp(&gw, &["--pipeline", pipeline]).await;
    assert_failed_by_gateway(&run, "Stop-Computer");
    assert!(!gw.standin.saw_command("Stop-Computer"));

    let pipeline =
        r#"[[{"name": "Get-Date"}], [{"name": "Write-Output", "params": {"InputObject": "two"}}]]"#;
    let run = pypsrp(&gw, &["--pipeline", pipeline]).await;
    assert_eq!(run.code, 0, "{run:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_split_across_command_and_send_are_held_until_decided() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    // pypsrp's fragments are at most ~512 KB: a 700 KB argument spreads CREATE_PIPELINE
    // over the Command and at least one Send.
    let big = "x".repeat(700_000);
    let file = gw.dir.path().join("big.txt");
    std::fs::write(&file, &big).unwrap();
    let param = format!("InputObject={}", file.display());
    let run = pypsrp(&gw, &["--cmdlet", "Write-Output", "--param-file", &param]).await;
    assert_eq!(run.code, 0, "{:?}", run.json["error"]);
    assert_eq!(run.stdout().len(), big.len(), "the whole argument arrived");
    let sends = gw
        .standin
        .requests()
        .iter()
        .filter(|r| r["action"].as_str().is_some_and(|a| a.ends_with("/Send")))
        .count();
    assert!(sends >= 1, "the host received the held Send(s)");

    let param = format!("ComputerName={}", file.display());
    let run = pypsrp(&gw, &["--cmdlet", "Stop-Computer", "--param-file", &param]).await;
    assert_failed_by_gateway(&run, "Stop-Computer");
    assert!(!gw.standin.saw_command("Stop-Computer"));
    gw.stop().await;
}

/// Issue 15: allowed, denied, allowed again on one RunspacePool; the record shows the
/// denial, and the host never saw the denied pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_pipeline_fails_and_the_pool_carries_on() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let seq = r#"[
        {"cmdlet": "Get-Service", "params": {"Name": "Spooler"}},
        {"cmdlet": "Stop-Computer", "params": {"Force": true}},
        {"script": "Get-Date"},
        {"cmdlet": "Write-Output", "params": {"InputObject": "still here"}}
    ]"#;
    let run = pypsrp(&gw, &["--sequence", seq]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let r = &run.json["results"];
    assert_eq!(r[0]["had_errors"], false, "{run:?}");
    assert!(
        r[0]["stdout"]
            .as_str()
            .unwrap()
            .contains("ServiceController"),
        "{run:?}"
    );
    assert_eq!(r[1]["state"], FAILED, "{run:?}");
    assert_eq!(r[1]["had_errors"], true);
    assert_eq!(r[1]["error_ids"][0], "HopgateDenied");
    assert!(
        r[1]["errors"][0]
            .as_str()
            .unwrap()
            .contains("Stop-Computer"),
        "{run:?}"
    );
    assert_eq!(r[2]["had_errors"], false, "{run:?}");
    assert_eq!(r[3]["stdout"], "still here", "{run:?}");
    assert!(!gw.standin.saw_command("Stop-Computer"));
    assert!(
        gw.audit_has(|e| e["event"] == "command.denied"
            && e["command"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("Stop-Computer")))
            .await
    );
    // One shell for the whole sequence, closed by the client, with both counts.
    assert!(
        gw.audit_has(|e| e["event"] == "session.end"
            && e["commands_denied"] == 1
            && e["commands_allowed"] == 3)
            .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}

/// Issue 15: an interactive client (PowerShell 7's Enter-PSSession) evaluates
/// `prompt | Out-String -Stream` before each command. The demo role lists none of
/// `prompt`, `Out-String` and `TabExpansion2`; they are session commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_loop_works_under_the_demo_role() {
    let demo = std::fs::read_to_string(crate::support::repo().join("policies/demo.toml"))
        .unwrap()
        .replace("demo-host", "standin");
    let gw = Gateway::start(GatewayOptions {
        policies: vec![("demo.toml", demo)],
        ..GatewayOptions::default()
    })
    .await;
    let prompt = r#"{"pipeline": [{"cmdlet": "prompt"}, {"cmdlet": "Out-String", "params": {"Stream": true}}]}"#;
    let seq = format!(
        r#"[
        {prompt},
        {{"cmdlet": "Get-Service", "params": {{"Name": "WinRM"}}}},
        {prompt},
        {{"cmdlet": "TabExpansion2", "params": {{"inputScript": "Get-Ser", "cursorColumn": 7}}}},
        {prompt},
        {{"cmdlet": "Restart-Computer"}},
        {prompt},
        {{"cmdlet": "Get-Date"}}
    ]"#
    );
    let run = pypsrp(&gw, &["--sequence", &seq]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let r = run.json["results"].as_array().unwrap();
    let ids: Vec<_> = r.iter().map(|x| x["error_ids"][0].clone()).collect();
    for i in [0, 1, 2, 4, 6, 7] {
        assert!(
            r[i]["error_ids"][0] != "HopgateDenied",
            "{i}: {ids:?} {run:?}"
        );
    }
    assert_eq!(
        r[3]["error_ids"][0],
        serde_json::Value::Null,
        "TabExpansion2 allowed: {run:?}"
    );
    assert_eq!(r[5]["error_ids"][0], "HopgateDenied", "{run:?}");
    assert_eq!(r[5]["state"], FAILED);
    assert!(
        r[1]["stdout"]
            .as_str()
            .unwrap()
            .contains("ServiceController"),
        "{run:?}"
    );
    assert!(
        r[0]["stdout"]
            .as_str()
            .unwrap()
            .starts_with("PS C:\\Users\\"),
        "{run:?}"
    );
    assert!(
        r[3]["stdout"].as_str().unwrap().contains("Get-Service"),
        "{run:?}"
    );
    gw.stop().await;
}
