//! Real clients through the gateway to the stand-in host over NTLM-encrypted HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use crate::support::{python, run_client, Gateway, GatewayOptions, ALICE};

/// Commands that went through must show up on the host as the vaulted account, not as the
/// person, and each must have an audit record naming the person.
fn assert_host_ran(gw: &Gateway, needle: &str) {
    let reqs = gw.standin.requests();
    let hit = reqs
        .iter()
        .find(|r| {
            r["command_line"]
                .as_str()
                .is_some_and(|c| c.to_lowercase().contains(needle))
        })
        .unwrap_or_else(|| panic!("host never saw `{needle}`: {reqs:#?}"));
    let user = hit["user"].as_str().unwrap_or_default().to_lowercase();
    assert!(user.contains("svc-gw"), "host saw user {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_with_client_certificate_runs_hostname_and_ipconfig() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    for (cmd, args, expect) in [
        ("hostname", vec![], "STANDIN-01"),
        ("ipconfig", vec!["/all"], "Windows IP Configuration"),
    ] {
        let mut a = vec![
            "--endpoint".to_string(),
            gw.url("/wsman/standin"),
            "--transport".into(),
            "certificate".into(),
            "--cert".into(),
            gw.certs.client_cert.display().to_string(),
            "--key".into(),
            gw.certs.client_key.display().to_string(),
            "--ca".into(),
            gw.certs.ca.display().to_string(),
            "--cmd".into(),
            cmd.into(),
        ];
        for x in args {
            a.extend(["--arg".to_string(), x.to_string()]);
        }
        let run = python("tests/clients/pywinrm_client.py", &a).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout().contains(expect), "{run:?}");
        assert_eq!(run.json["exit_code"], 0);
    }
    assert_host_ran(&gw, "ipconfig");
    assert!(
        gw.audit_has(|e| e["event"] == "command.allowed"
            && e["principal"] == ALICE
            && e["command"][0] == "ipconfig")
            .await
    );
    assert!(
        gw.audit_has(|e| e["event"] == "session.start" && e["principal"] == ALICE)
            .await
    );
    assert!(
        gw.audit_has(|e| e["event"] == "session.end" && e["principal"] == ALICE)
            .await
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_with_client_certificate_runs_commands() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(["--cmd".to_string(), "ipconfig /all".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout().contains("Windows IP Configuration"), "{run:?}");
    assert_eq!(run.json["exit_code"], 0);

    let mut a = gw.pypsrp_cert_args("wsman/standin");
    a.extend(["--cmd".to_string(), "exit 3".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(
        run.json["exit_code"], 3,
        "exit codes arrive intact: {run:?}"
    );
    assert_host_ran(&gw, "ipconfig /all");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_with_token_as_basic_password() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let token = gw.token("bob", &["ops"], None, Duration::from_secs(600));
    let mut a = gw.pypsrp_base("wsman/standin", "basic");
    a.extend([
        "--user".to_string(),
        "bob".into(),
        "--password".into(),
        token,
        "--cmd".into(),
        "hostname".into(),
    ]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "STANDIN-01");
    assert!(
        gw.audit_has(|e| e["event"] == "session.start"
            && e["principal"] == "bob"
            && e["auth_method"] == "basic_token")
            .await
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_winrm_with_client_certificate_on_plain_wsman_uses_default_target() {
    let gw = Gateway::start(GatewayOptions::default()).await;
    let bin_dir = gw.dir.path().join("gobin");
    let build = tokio::process::Command::new("bash")
        .arg(crate::support::repo().join("tests/clients/go/build.sh"))
        .arg(&bin_dir)
        .output()
        .await
        .unwrap();
    assert!(
        build.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let bin = bin_dir.join("winrm_client");
    let args: Vec<String> = vec![
        "-host".into(),
        "127.0.0.1".into(),
        "-port".into(),
        gw.addr.port().to_string(),
        "-https".into(),
        "-cacert".into(),
        gw.certs.ca.display().to_string(),
        "-cert".into(),
        gw.certs.client_cert.display().to_string(),
        "-key".into(),
        gw.certs.client_key.display().to_string(),
        "-cmd".into(),
        "hostname".into(),
    ];
    let run = run_client(bin.to_str().unwrap(), &args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "STANDIN-01");
    assert_eq!(run.json["exit_code"], 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_wsman_uses_the_token_target_claim_and_needs_one_without_a_default() {
    use crate::support::raw::{create_cmd_shell, shell_id, RawClient};
    let gw = Gateway::start(GatewayOptions {
        default_host: None,
        ..GatewayOptions::default()
    })
    .await;
    let client = RawClient::new(gw.addr, &gw.certs.ca, None);
    let with_target = gw.token("bob", &["ops"], Some("standin"), Duration::from_secs(600));
    let r = client
        .post(
            "/wsman",
            Some(&format!("Bearer {with_target}")),
            &create_cmd_shell("https://gw/wsman"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(shell_id(&r.body).is_some());

    let without = gw.token("bob", &["ops"], None, Duration::from_secs(600));
    let r = client
        .post(
            "/wsman",
            Some(&format!("Bearer {without}")),
            &create_cmd_shell("https://gw/wsman"),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(r.body.contains("No target host"), "{}", r.body);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_address_stays_behind_the_gateway() {
    use crate::support::raw::{create_cmd_shell, element_text};
    let gw = Gateway::start(GatewayOptions::default()).await;
    let to = "https://gw.example.test:5986/wsman/standin";
    let r = gw
        .alice_client()
        .post("/wsman/standin", None, &create_cmd_shell(to))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // The host answered with its own URL (what it was sent); the client sees the one it used.
    let host_url = format!("127.0.0.1:{}", gw.standin.port);
    assert!(!r.body.contains(&host_url), "{}", r.body);
    assert_eq!(
        element_text(&r.body, "Address").as_deref(),
        Some(to),
        "{}",
        r.body
    );
    gw.stop().await;
}
