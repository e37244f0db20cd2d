//! Shell compression (issue 15, item 3): a PSRP client that compresses its streams with
//! xpress, as Windows PowerShell does by default (pypsrp plus the transport hook in
//! tests/clients/pypsrp_client.py, codec tests/clients/xpress.py), runs pipelines through the
//! gateway. The gateway decodes what the client sends before judging it, passes the request
//! for compression on to the host, frames for the host what it judged when the host agreed
//! and decodes the host's framed answers, or frames plain answers for the client when the
//! host did not; the audit records the decoded streams.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use crate::support::{python, Gateway, GatewayOptions, ALICE};

/// PSInvocationState Failed.
const FAILED: i64 = 5;

/// A pipeline too large for one small envelope, so that most of its CREATE_PIPELINE
/// travels in (compressed) Sends after the Command.
fn long_text(tag: &str) -> String {
    format!("{tag} ").repeat(1500)
}

async fn compressing_pypsrp(gw: &Gateway, extra: &[&str]) -> crate::support::ClientRun {
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(
        ["--compress", "--max-envelope-size", "8192"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
    );
    python("tests/clients/pypsrp_client.py", &a).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_xpress_codec_matches_ms_xca_and_microsofts_compressor() {
    let run = tokio::process::Command::new("python3")
        .arg(crate::support::repo().join("tests/clients/xpress.py"))
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressing_client_and_a_host_that_does_not_compress() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    pipelines_through_a_compressing_client(&gw).await;
    // The host answered NoCompression and got plain streams; the gateway framed them.
    assert!(
        gw.standin
            .requests()
            .iter()
            .all(|r| r["host_compressed"].is_null()),
        "{:#?}",
        gw.standin.requests()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressing_client_and_a_host_that_compresses() {
    let gw = Gateway::start_with_standin_args(GatewayOptions::default(), &["--compression"]).await;
    pipelines_through_a_compressing_client(&gw).await;
    // The host agreed: it decoded Sends and framed Receives that the gateway decoded.
    let framed = |suffix: &str| {
        gw.standin.requests().iter().any(|r| {
            r["host_compressed"] == true
                && r["action"].as_str().is_some_and(|a| a.ends_with(suffix))
        })
    };
    assert!(
        framed("/Send") && framed("/Receive"),
        "{:#?}",
        gw.standin.requests()
    );
    gw.stop().await;
}

/// Allowed, denied and mixed pipelines from a compressing client.
async fn pipelines_through_a_compressing_client(gw: &Gateway) {
    // Allowed: the pipeline's tail arrives in compressed Sends, its output goes back framed.
    let text = long_text("hopgate-compressed-output");
    let run = compressing_pypsrp(
        gw,
        &[
            "--cmdlet",
            "Write-Output",
            "--param",
            &format!("InputObject={text}"),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json["had_errors"], false, "{run:?}");
    assert_eq!(run.stdout().trim(), text.trim(), "{run:?}");
    let stats = &run.json["compression"];
    assert!(
        stats["chunks_sent_compressed"].as_u64().unwrap() > 0,
        "{stats}"
    );
    assert!(
        stats["chunks_received_compressed"].as_u64().unwrap() > 0,
        "the gateway framed the output with compressed chunks: {stats}"
    );
    // The host was asked to compress, as the client asked, and got the same pipeline (the
    // stand-in logs what it decoded).
    assert!(gw.standin.wait_for_command("Write-Output").await);
    assert!(
        gw.standin.requests().iter().any(|r| r["action"]
            .as_str()
            .is_some_and(|a| a.ends_with("transfer/Create"))
            && r["compression"] == "xpress"),
        "{:#?}",
        gw.standin.requests()
    );
    // The audit has the decoded pipeline and the decoded output.
    assert!(
        gw.audit_has(|e| e["event"] == "command.allowed"
            && e["principal"] == ALICE
            && e["command"][0].as_str().is_some_and(
                |c| c.starts_with("Write-Output") && c.contains("hopgate-compressed-output")
            ))
        .await,
        "{:#?}",
        gw.audit()
    );
    assert!(
        gw.audit_has(|e| e["event"] == "output"
            && e["stdout"]
                .as_str()
                .is_some_and(|o| o.contains("hopgate-compressed-output")))
            .await,
        "{:#?}",
        gw.audit()
    );

    // Denied, with the denied command's arguments inside compressed Sends: the pipeline
    // fails inside PSRP (the gateway's answer is framed too) and never reaches the host.
    let run = compressing_pypsrp(
        gw,
        &[
            "--cmdlet",
            "Stop-Computer",
            "--param",
            &format!("ComputerName={}", long_text("victim")),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "no exception, no fault: {run:?}");
    assert_eq!(run.json["state"], FAILED, "{run:?}");
    assert_eq!(run.json["error_ids"][0], "HopgateDenied", "{run:?}");
    assert!(
        run.json["compression"]["chunks_sent_compressed"]
            .as_u64()
            .unwrap()
            > 0,
        "{run:?}"
    );
    assert!(!gw.standin.saw_command("Stop-Computer"));
    assert!(
        gw.audit_has(|e| e["event"] == "command.denied"
            && e["command"][0]
                .as_str()
                .is_some_and(|c| c.starts_with("Stop-Computer")))
            .await
    );

    // Several pipelines on one compressed pool: allowed, denied, allowed again.
    let seq = r#"[{"cmdlet": "Get-Date"}, {"cmdlet": "Stop-Computer"}, {"cmdlet": "Get-Service", "params": {"Name": "Spooler"}}]"#;
    let run = compressing_pypsrp(gw, &["--sequence", seq]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let results = run.json["results"].as_array().unwrap();
    assert_eq!(results[0]["had_errors"], false, "{run:?}");
    assert_eq!(results[1]["error_ids"][0], "HopgateDenied", "{run:?}");
    assert_eq!(results[2]["had_errors"], false, "{run:?}");
    assert!(
        !results[2]["stdout"].as_str().unwrap().is_empty(),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_does_not_decode_is_refused_and_never_relayed() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    // The client's Sends (the tail of a long CREATE_PIPELINE) carry a chunk header that
    // claims more bytes than follow: refused with a fault, recorded, never relayed.
    let run = compressing_pypsrp(
        &gw,
        &[
            "--corrupt-compressed-sends",
            "--cmdlet",
            "Write-Output",
            "--param",
            &format!("InputObject={}", long_text("never-relayed")),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "a WS-Man fault: {run:?}");
    assert!(!gw.standin.saw_command("never-relayed"));
    assert!(
        gw.standin
            .requests()
            .iter()
            .all(|r| r["action"].as_str().is_none_or(|a| !a.ends_with("/Send"))),
        "no Send reached the host: {:#?}",
        gw.standin.requests()
    );
    assert!(
        gw.audit_has(
            |e| e["event"] == "access.denied" && e["reason"] == "compressed stream unreadable"
        )
        .await,
        "{:#?}",
        gw.audit()
    );
    gw.stop().await;
}
