//! Test host against real clients: pywinrm (NTLM with message encryption over http, Basic
//! over https) and hopgate's own backend client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: panics are the failure report"
)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::backend::{self, BackendAuth, BackendClient, BackendTls, Credential, HostTarget};
use crate::wsman::{
    self, ns, Action, Body, CommandLine, DesiredStream, Header, Limits, Selector, Shell,
};

const PYWINRM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/pywinrm_run.py");

/// A running test host, stopped on drop.
struct Running {
    addr: SocketAddr,
    journal: TesthostJournal,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(scheme: Scheme, pki: Option<&backend::tests::TestPki>) -> Running {
    start_with(scheme, pki, false).await
}

/// [`start`], holding idle Receives for their OperationTimeout when `hold`.
async fn start_with(scheme: Scheme, pki: Option<&backend::tests::TestPki>, hold: bool) -> Running {
    let settings = TesthostSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        scheme,
        tls_cert: pki.map(|p| p.path("leaf.pem")),
        tls_key: pki.map(|p| p.path("leaf.key")),
        users: vec![
            ("alice".into(), "Al1ce-pw".into()),
            ("bob".into(), "B0b-pw".into()),
        ],
        hostname: "WIN-HOPGATE01".into(),
        hold_receives: hold,
    };
    let host = Testhost::bind(settings).await.unwrap();
    let addr = host.local_addr().unwrap();
    let journal = host.journal();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(host.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        journal,
        _stop: stop,
    }
}

async fn pywinrm(
    endpoint: &str,
    transport: &str,
    user: &str,
    password: &str,
    commands: &[&str],
) -> serde_json::Value {
    let out = tokio::process::Command::new("python3")
        .arg(PYWINRM)
        .args([endpoint, transport, user, password])
        .args(commands)
        .output()
        .await
        .expect("python3 with pywinrm must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "pywinrm runner failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn pywinrm_ntlm_with_message_encryption() {
    let host = start(Scheme::Http, None).await;
    let endpoint = format!("http://{}/wsman", host.addr);
    let v = pywinrm(
        &endpoint,
        "ntlm",
        "alice",
        "Al1ce-pw",
        &[
            "hostname",
            "whoami",
            "echo hello world",
            "exit 3",
            "frobnicate now",
            "ipconfig /all",
        ],
    )
    .await;
    let r = v["results"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(r[0]["stdout"], "WIN-HOPGATE01\r\n");
    assert_eq!(r[0]["code"], 0);
    assert_eq!(r[1]["stdout"], "win-hopgate01\\alice\r\n");
    assert_eq!(r[2]["stdout"], "hello world\r\n");
    assert_eq!(r[3]["code"], 3);
    assert_eq!(r[4]["code"], 1);
    assert!(r[4]["stderr"]
        .as_str()
        .unwrap()
        .starts_with("'frobnicate' is not recognized"));
    assert!(r[5]["stdout"]
        .as_str()
        .unwrap()
        .contains("Host Name . . . . . . . . . . . . : WIN-HOPGATE01"));
}

#[tokio::test]
async fn pywinrm_wrong_password_and_borrowed_password_are_refused() {
    let host = start(Scheme::Http, None).await;
    let endpoint = format!("http://{}/wsman", host.addr);
    let v = pywinrm(&endpoint, "ntlm", "alice", "nope", &["hostname"]).await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("InvalidCredentialsError"),
        "{v}"
    );
    // PROTOCOL.md §10 security trap: bob must not get in with alice's password.
    let v = pywinrm(&endpoint, "ntlm", "bob", "Al1ce-pw", &["hostname"]).await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("InvalidCredentialsError"),
        "{v}"
    );
    // Unknown user.
    let v = pywinrm(&endpoint, "ntlm", "mallory", "Al1ce-pw", &["hostname"]).await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("InvalidCredentialsError"),
        "{v}"
    );
    // Domain-qualified names work.
    let v = pywinrm(
        &endpoint,
        "ntlm",
        "WIN-HOPGATE01\\bob",
        "B0b-pw",
        &["whoami"],
    )
    .await;
    assert_eq!(v["results"][0]["stdout"], "win-hopgate01\\bob\r\n", "{v}");
}

#[tokio::test]
async fn pywinrm_basic_and_ntlm_over_https() {
    let pki = backend::tests::TestPki::new();
    let host = start(Scheme::Https, Some(&pki)).await;
    let endpoint = format!("https://{}/wsman", host.addr);
    let v = pywinrm(&endpoint, "basic", "bob", "B0b-pw", &["whoami"]).await;
    assert_eq!(v["results"][0]["stdout"], "win-hopgate01\\bob\r\n", "{v}");
    let v = pywinrm(&endpoint, "basic", "bob", "wrong", &["whoami"]).await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("InvalidCredentialsError"),
        "{v}"
    );
    // NTLM inside TLS: pywinrm sends channel binding by default and no message encryption.
    let v = pywinrm(&endpoint, "ntlm", "alice", "Al1ce-pw", &["hostname"]).await;
    assert_eq!(v["results"][0]["stdout"], "WIN-HOPGATE01\r\n", "{v}");
}

/// A request envelope shaped like pypsrp's (request-style header).
/// alice's NTLM client to the emulated host over http with `settings`, and the `wsa:To`.
fn ntlm_client(host: &Running, settings: backend::BackendSettings) -> (BackendClient, String) {
    let target = HostTarget::new(
        "emulated",
        "127.0.0.1",
        host.addr.port(),
        Scheme::Http,
        BackendAuth::Ntlm,
    );
    let client =
        BackendClient::with_settings(target, Credential::new("alice", "Al1ce-pw"), settings)
            .unwrap();
    (client, format!("http://{}/wsman", host.addr))
}

fn request(action: Action, shell_id: Option<&str>, body: Body, to: &str) -> Bytes {
    let mut h = Header::new(action);
    h.to = Some(to.to_owned());
    h.reply_to = Some(ns::ANONYMOUS.to_owned());
    h.message_id = Some(format!("uuid:{}", uuid::Uuid::new_v4()));
    h.resource_uri = Some(ns::RESOURCE_CMD.to_owned());
    h.max_envelope_size = Some(153_600);
    h.operation_timeout = Some("PT20S".into());
    if let Some(id) = shell_id {
        h.selectors.push(Selector {
            name: "ShellId".into(),
            value: id.to_owned(),
        });
    }
    Bytes::from(wsman::build(&wsman::Envelope::new(h, body)))
}

async fn run_via_backend(
    client: &BackendClient,
    to: &str,
    command: &str,
) -> (Vec<u8>, Vec<u8>, i64) {
    let shell = Body::Shell(Shell {
        input_streams: Some("stdin".into()),
        output_streams: Some("stdout stderr".into()),
        ..Shell::default()
    });
    let resp = client
        .send(request(Action::Create, None, shell, to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::OK);
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    assert_eq!(env.header.action, Action::CreateResponse);
    let shell_id = env.shell_id().unwrap().to_owned();

    let line = Body::CommandLine(CommandLine {
        command_id: None,
        command: command.to_owned(),
        arguments: Vec::new(),
    });
    let resp = client
        .send(request(Action::Command, Some(&shell_id), line, to))
        .await
        .unwrap();
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    let Body::CommandResponse { command_id } = env.body else {
        panic!("{env:?}")
    };
    let recv = Body::Receive(vec![DesiredStream {
        command_id: Some(command_id.clone()),
        streams: "stdout stderr".into(),
    }]);
    let resp = client
        .send(request(Action::Receive, Some(&shell_id), recv, to))
        .await
        .unwrap();
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    let Body::ReceiveResponse {
        streams,
        command_state,
    } = env.body
    else {
        panic!("{env:?}")
    };
    let collect = |name: &str| -> Vec<u8> {
        streams
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.data.clone())
            .collect()
    };
    let code = command_state.unwrap().exit_code.unwrap();
    let resp = client
        .send(request(Action::Delete, Some(&shell_id), Body::Empty, to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::OK);
    // The shell is gone: a second Delete is a Windows-shaped InvalidSelectors fault.
    let resp = client
        .send(request(Action::Delete, Some(&shell_id), Body::Empty, to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    let Body::Fault(fault) = env.body else {
        panic!("{env:?}")
    };
    assert_eq!(fault.wsman_code, Some(2_150_858_843));
    (collect("stdout"), collect("stderr"), code)
}

#[tokio::test]
async fn backend_client_ntlm_against_testhost() {
    let host = start(Scheme::Http, None).await;
    let target = HostTarget::new(
        "emulated",
        "127.0.0.1",
        host.addr.port(),
        Scheme::Http,
        BackendAuth::Ntlm,
    );
    let to = format!("http://{}/wsman", host.addr);
    let client = BackendClient::new(target.clone(), Credential::new("alice", "Al1ce-pw")).unwrap();
    let (out, err, code) = run_via_backend(&client, &to, "hostname").await;
    assert_eq!(out, b"WIN-HOPGATE01\r\n");
    assert!(err.is_empty());
    assert_eq!(code, 0);
    let (_, err, code) = run_via_backend(&client, &to, "nope").await;
    assert_eq!(code, 1);
    assert!(!err.is_empty());
    assert_eq!(client.idle_connections(), 1);

    let borrowed = BackendClient::new(target, Credential::new("bob", "Al1ce-pw")).unwrap();
    let err = borrowed
        .send(request(Action::Delete, Some("X"), Body::Empty, &to))
        .await
        .unwrap_err();
    assert!(
        matches!(err, backend::BackendError::AuthRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn backend_client_https_basic_and_ntlm_against_testhost() {
    let pki = backend::tests::TestPki::new();
    let host = start(Scheme::Https, Some(&pki)).await;
    let mut target = HostTarget::new(
        "emulated-tls",
        "127.0.0.1",
        host.addr.port(),
        Scheme::Https,
        BackendAuth::Basic,
    );
    target.tls = BackendTls {
        ca_file: Some(pki.path("ca.pem")),
        insecure_skip_verify: false,
        server_name: Some("localhost".into()),
    };
    let to = format!("https://localhost:{}/wsman", host.addr.port());
    let client = BackendClient::new(target.clone(), Credential::new("bob", "B0b-pw")).unwrap();
    let (out, _, code) = tokio::time::timeout(
        Duration::from_secs(30),
        run_via_backend(&client, &to, "whoami"),
    )
    .await
    .unwrap();
    assert_eq!(out, b"win-hopgate01\\bob\r\n");
    assert_eq!(code, 0);
    // NTLM over https with channel binding, checked by the sspi acceptor.
    target.auth = BackendAuth::Ntlm;
    let client = BackendClient::new(target, Credential::new("alice", "Al1ce-pw")).unwrap();
    let (out, _, _) = run_via_backend(&client, &to, "whoami").await;
    assert_eq!(out, b"win-hopgate01\\alice\r\n");
}

#[tokio::test]
async fn other_users_shells_are_invisible() {
    let host = start(Scheme::Http, None).await;
    let to = format!("http://{}/wsman", host.addr);
    let target = HostTarget::new(
        "emulated",
        "127.0.0.1",
        host.addr.port(),
        Scheme::Http,
        BackendAuth::Ntlm,
    );
    let alice = BackendClient::new(target.clone(), Credential::new("alice", "Al1ce-pw")).unwrap();
    let bob = BackendClient::new(target, Credential::new("bob", "B0b-pw")).unwrap();
    let shell = Body::Shell(Shell::default());
    let resp = alice
        .send(request(Action::Create, None, shell, &to))
        .await
        .unwrap();
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    let shell_id = env.shell_id().unwrap().to_owned();
    let resp = bob
        .send(request(Action::Delete, Some(&shell_id), Body::Empty, &to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    let resp = alice
        .send(request(Action::Delete, Some(&shell_id), Body::Empty, &to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::OK);
    // bob cannot run anything in alice's shell, and nothing of his reached the journal.
    let shell = Body::Shell(Shell::default());
    let resp = alice
        .send(request(Action::Create, None, shell, &to))
        .await
        .unwrap();
    let shell_id = wsman::parse(&resp.body, &Limits::default())
        .unwrap()
        .shell_id()
        .unwrap()
        .to_owned();
    let line = Body::CommandLine(CommandLine {
        command_id: None,
        command: "whoami".into(),
        arguments: Vec::new(),
    });
    let resp = bob
        .send(request(Action::Command, Some(&shell_id), line, &to))
        .await
        .unwrap();
    assert_eq!(resp.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(host.journal.entries().is_empty());
}

#[tokio::test]
async fn pypsrp_execute_cmd_with_ntlm_encryption() {
    let host = start(Scheme::Http, None).await;
    // pypsrp's WinRS client: whole command line in rsp:Command, message encryption on http.
    let script = r#"
import json, sys
from pypsrp.client import Client
c = Client(sys.argv[1], port=int(sys.argv[2]), ssl=False, auth="ntlm",
           username="alice", password="Al1ce-pw", encryption="always")
out = []
for cmd in ["hostname", "whoami", "exit 4"]:
    stdout, stderr, rc = c.execute_cmd(cmd)
    out.append({"stdout": stdout, "stderr": stderr, "rc": rc})
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, "127.0.0.1", &host.addr.port().to_string()])
        .output()
        .await
        .expect("python3 with pypsrp must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "pypsrp failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v[0]["stdout"], "WIN-HOPGATE01\r\n");
    assert_eq!(v[1]["stdout"], "win-hopgate01\\alice\r\n");
    assert_eq!(v[2]["rc"], 4);
}

#[tokio::test]
async fn many_concurrent_shells_through_one_pooled_client() {
    let host = start(Scheme::Http, None).await;
    let (client, to) = ntlm_client(
        &host,
        backend::BackendSettings {
            max_connections: 4,
            max_idle: 4,
            ..backend::BackendSettings::default()
        },
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let client = client.clone();
        let to = to.clone();
        tasks.spawn(async move {
            let (out, _, code) = run_via_backend(&client, &to, &format!("echo shell {i}")).await;
            assert_eq!(out, format!("shell {i}\r\n").into_bytes());
            assert_eq!(code, 0);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(client.idle_connections() <= 4);
}

/// Held Receives travel on their own lane: with one connection for short requests and
/// three polls held by the host, a short request still goes through before any poll ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_receives_never_take_the_connections_short_requests_need() {
    let host = start_with(Scheme::Http, None, true).await;
    let (client, to) = ntlm_client(
        &host,
        backend::BackendSettings {
            max_connections: 1,
            max_idle: 1,
            max_long_polls: 8,
            ..backend::BackendSettings::default()
        },
    );
    let resp = client
        .send(request(
            Action::Create,
            None,
            Body::Shell(Shell::default()),
            &to,
        ))
        .await
        .unwrap();
    let shell_id = wsman::parse(&resp.body, &Limits::default())
        .unwrap()
        .shell_id()
        .unwrap()
        .to_owned();
    let mut polls = tokio::task::JoinSet::new();
    for i in 0..3 {
        // An interpreter waiting on stdin: nothing to report, so the host holds the poll.
        let command_id = format!("7C1B0C4E-0000-4000-8000-00000000000{i}");
        let line = Body::CommandLine(CommandLine {
            command_id: Some(command_id.clone()),
            command: "cmd".into(),
            arguments: Vec::new(),
        });
        client
            .send(request(Action::Command, Some(&shell_id), line, &to))
            .await
            .unwrap();
        let recv = Body::Receive(vec![DesiredStream {
            command_id: Some(command_id),
            streams: "stdout stderr".into(),
        }]);
        let mut body = request(Action::Receive, Some(&shell_id), recv, &to).to_vec();
        // PT20S → PT3S: long enough for the short request below, short for the test.
        let text = String::from_utf8(body).unwrap().replace("PT20S", "PT3S");
        body = text.into_bytes();
        let client = client.clone();
        polls.spawn(async move {
            client
                .send_long_poll(Bytes::from(body), Duration::from_secs(10))
                .await
                .unwrap()
        });
    }
    // Let the polls reach the host, then a short request on the one short connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (out, _, code) = run_via_backend(&client, &to, "hostname").await;
    assert_eq!((out, code), (b"WIN-HOPGATE01\r\n".to_vec(), 0));
    assert!(
        polls.try_join_next().is_none(),
        "a held poll ended before the short request: the host did not hold it"
    );
    while let Some(done) = polls.join_next().await {
        let resp = done.unwrap();
        let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
        let Body::Fault(fault) = env.body else {
            panic!("{env:?}")
        };
        assert!(fault.is_timed_out());
    }
}

#[tokio::test]
async fn pywinrm_feeds_cmd_through_stdin() {
    let host = start(Scheme::Http, None).await;
    // An interpreter fed through Send (PROTOCOL.md §3): the commands arrive as stdin.
    let script = r#"
import json, sys
from winrm.protocol import Protocol
p = Protocol(endpoint=sys.argv[1], transport="ntlm", username="alice", password="Al1ce-pw")
shell = p.open_shell()
cid = p.run_command(shell, "cmd")
p.send_command_input(shell, cid, "hostname\r\necho from stdin\r\n")
p.send_command_input(shell, cid, "exit 2\r\n", end=True)
out, err, code = p.get_command_output(shell, cid)
p.cleanup_command(shell, cid)
p.close_shell(shell)
print(json.dumps({"stdout": out.decode(), "stderr": err.decode(), "code": code}))
"#;
    let endpoint = format!("http://{}/wsman", host.addr);
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, &endpoint])
        .output()
        .await
        .expect("python3 with pywinrm must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "pywinrm failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["stdout"], "WIN-HOPGATE01\r\nfrom stdin\r\n");
    assert_eq!(v["code"], 2);
    let journal = host.journal.entries();
    let kinds: Vec<_> = journal.iter().map(|e| (e.kind, e.text.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (JournalKind::Command, "cmd"),
            (JournalKind::Stdin, "hostname\r\necho from stdin\r\n"),
            (JournalKind::Stdin, "exit 2\r\n"),
        ]
    );
    assert!(journal.iter().all(|e| e.user == "alice"));
}

#[tokio::test]
async fn receive_on_a_waiting_interpreter_times_out_like_windows() {
    let host = start(Scheme::Http, None).await;
    let target = HostTarget::new(
        "emulated",
        "127.0.0.1",
        host.addr.port(),
        Scheme::Http,
        BackendAuth::Ntlm,
    );
    let to = format!("http://{}/wsman", host.addr);
    let client = BackendClient::new(target, Credential::new("alice", "Al1ce-pw")).unwrap();
    let resp = client
        .send(request(
            Action::Create,
            None,
            Body::Shell(Shell::default()),
            &to,
        ))
        .await
        .unwrap();
    let shell_id = wsman::parse(&resp.body, &Limits::default())
        .unwrap()
        .shell_id()
        .unwrap()
        .to_owned();
    let line = Body::CommandLine(CommandLine {
        command_id: Some("7C1B0C4E-0000-4000-8000-000000000001".into()),
        command: "cmd".into(),
        arguments: Vec::new(),
    });
    client
        .send(request(Action::Command, Some(&shell_id), line, &to))
        .await
        .unwrap();
    let recv = Body::Receive(vec![DesiredStream {
        command_id: Some("7C1B0C4E-0000-4000-8000-000000000001".into()),
        streams: "stdout stderr".into(),
    }]);
    let started = std::time::Instant::now();
    let resp = client
        .send(request(Action::Receive, Some(&shell_id), recv, &to))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.status, http::StatusCode::INTERNAL_SERVER_ERROR);
    let env = wsman::parse(&resp.body, &Limits::default()).unwrap();
    let Body::Fault(fault) = env.body else {
        panic!("{env:?}")
    };
    // 0x80338029, what Windows sends when OperationTimeout expires (PROTOCOL.md §3).
    assert!(fault.is_timed_out());
    assert_eq!(fault.wsman_code, Some(2_150_858_793));
}

/// Replays real pypsrp WinRS requests (recorded against Windows, see the corpus README)
/// through the emulated service and compares the answers with what Windows sent: action,
/// body kind, stream bytes and End flags, command state and exit code, fault codes.
#[test]
fn replays_pypsrp_winrs_recordings_like_windows() {
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/pypsrp-responses/"
    );
    let limits = Limits::default();
    for file in [
        "test_winrs_standard.yml",
        "test_winrs_stderr_rc.yml",
        "test_winrs_bad_cmd_id.yml",
        "test_winrs_fail_poll_process.yml",
        "test_winrs_open_already_opened.yml",
    ] {
        let text = std::fs::read_to_string(format!("{corpus}{file}")).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let winrs = winrs::WinRs::new("WIN-HOPGATE01");
        // Recorded ids → the ids this host handed out.
        let mut ids: Vec<(String, String)> = Vec::new();
        for (n, msg) in doc["messages"].as_sequence().unwrap().iter().enumerate() {
            let mut request = msg["request"].as_str().unwrap().to_owned();
            for (theirs, ours) in &ids {
                request = request.replace(theirs.as_str(), ours);
            }
            let windows =
                wsman::parse(msg["response"].as_str().unwrap().as_bytes(), &limits).unwrap();
            let reply = winrs.handle("vagrant", "192.168.56.1", request.as_bytes());
            let ours = wsman::parse(&reply.body, &limits).unwrap();
            let at = format!("{file} message {n}");
            assert_eq!(ours.header.action, windows.header.action, "{at}");
            let expect_status = if windows.header.action.is_fault() {
                500
            } else {
                200
            };
            assert_eq!(reply.status.as_u16(), expect_status, "{at}");
            match (&windows.body, &ours.body) {
                (Body::ResourceCreated { .. }, Body::ResourceCreated { shell, .. }) => {
                    let recorded = windows.shell_id().unwrap().to_owned();
                    ids.push((recorded, ours.shell_id().unwrap().to_owned()));
                    let shell = shell.as_ref().unwrap();
                    assert_eq!(shell.owner.as_deref(), Some("vagrant"), "{at}");
                    assert_eq!(shell.input_streams.as_deref(), Some("stdin"), "{at}");
                    assert_eq!(
                        shell.output_streams.as_deref(),
                        Some("stdout stderr"),
                        "{at}"
                    );
                }
                (
                    Body::CommandResponse { command_id: theirs },
                    Body::CommandResponse { command_id: mine },
                ) => ids.push((theirs.clone(), mine.clone())),
                (
                    Body::ReceiveResponse {
                        streams: w,
                        command_state: ws,
                    },
                    Body::ReceiveResponse {
                        streams: o,
                        command_state: os,
                    },
                ) => {
                    for name in ["stdout", "stderr"] {
                        let data = |s: &[wsman::Stream]| -> (Vec<u8>, bool) {
                            let of: Vec<_> = s.iter().filter(|x| x.name == name).collect();
                            (
                                of.iter().flat_map(|x| x.data.clone()).collect(),
                                of.iter().any(|x| x.end),
                            )
                        };
                        assert_eq!(data(o), data(w), "{at} {name}");
                    }
                    let (ws, os) = (ws.as_ref().unwrap(), os.as_ref().unwrap());
                    assert_eq!(os.state, ws.state, "{at}");
                    assert_eq!(os.exit_code, ws.exit_code, "{at}");
                }
                (Body::Fault(w), Body::Fault(o)) => {
                    assert_eq!(o.subcode, w.subcode, "{at}");
                    assert_eq!(o.wsman_code, w.wsman_code, "{at}");
                }
                (w, o) => assert_eq!(
                    std::mem::discriminant(o),
                    std::mem::discriminant(w),
                    "{at}: {o:?} vs {w:?}"
                ),
            }
        }
        assert_eq!(winrs.shell_count(), 0, "{file}: every shell was deleted");
    }
}

#[tokio::test]
async fn pypsrp_runspace_pool_and_pipelines() {
    let host = start(Scheme::Http, None).await;
    // pypsrp's PSRP client: RunspacePool open, execute_ps (Invoke-Expression | Out-String),
    // a PowerShell object with add_cmdlet, and a script split across Command and Send
    // (max_envelope_size small enough to fragment CREATE_PIPELINE).
    let script = r#"
import json, sys
from pypsrp.client import Client
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
c = Client(sys.argv[1], port=int(sys.argv[2]), ssl=False, auth="ntlm",
           username="alice", password="Al1ce-pw", encryption="always")
out, streams, had_errors = c.execute_ps("hostname; Write-Output 'hello ps'")
wsman = WSMan(sys.argv[1], port=int(sys.argv[2]), ssl=False, auth="ntlm", username="alice",
              password="Al1ce-pw", encryption="always", max_envelope_size=20000)
with RunspacePool(wsman) as pool:
    pool.max_runspaces = 3
    avail = pool.get_available_runspaces()
    ps = PowerShell(pool)
    ps.add_cmdlet("Write-Output").add_argument("from cmdlet")
    res = ps.invoke()
    ps2 = PowerShell(pool)
    ps2.add_script("Write-Output '" + "x" * 40000 + "'")
    res2 = ps2.invoke()
print(json.dumps({"out": out, "had_errors": had_errors, "cmdlet": [str(r) for r in res],
                  "avail": avail,
                  "big": len(str(res2[0])) if res2 else 0}))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, "127.0.0.1", &host.addr.port().to_string()])
        .output()
        .await
        .expect("python3 with pypsrp must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "pypsrp failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["out"], "WIN-HOPGATE01\nhello ps", "{v}");
    assert_eq!(v["had_errors"], false);
    assert_eq!(v["cmdlet"][0], "from cmdlet");
    assert_eq!(v["big"], 40000);
    assert_eq!(v["avail"], 1);
    let pipelines: Vec<String> = host
        .journal
        .entries()
        .into_iter()
        .filter(|e| e.kind == JournalKind::Pipeline)
        .map(|e| e.text)
        .collect();
    assert_eq!(pipelines[0], "hostname; Write-Output 'hello ps'");
    assert!(pipelines[1].starts_with("Write-Output"), "{pipelines:?}");
    assert_eq!(pipelines.len(), 3);
}
