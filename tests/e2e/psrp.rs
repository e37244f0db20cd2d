//! PowerShell remoting (PSRP) through the gateway: pipelines are decoded and decided before
//! the host sees them, also when they arrive split across Command and Send requests.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::support::{python, Gateway, GatewayOptions, ALICE};

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
    assert_eq!(run.code, 2, "pypsrp sees a WS-Man fault: {run:?}");
    let err = run.json["error"].as_str().unwrap_or_default();
    assert!(err.contains("Access is denied by hopgate"), "{err}");
    assert!(
        err.contains("Stop-Computer"),
        "the fault names the command: {err}"
    );
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
        let run = pypsrp(&gw, &["--ps", script]).await;
        assert_eq!(run.code, 2, "{script}: {run:?}");
        assert!(
            run.json["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Access is denied"),
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
    assert_eq!(run.code, 2, "{run:?}");
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
    assert_eq!(run.code, 2, "{:?}", run.json["error"]);
    assert!(!gw.standin.saw_command("Stop-Computer"));
    gw.stop().await;
}
