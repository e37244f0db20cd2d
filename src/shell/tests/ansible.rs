//! Ansible's payload on a cmd shell's stdin (its winrm connection): held until the
//! manifest is whole, then released in order or dropped; what follows streams; what is
//! held is bounded. The scripts stand in for ansible-core's (the e2e tests use the real
//! ones): what matters here is that they are trusted by content, and that the analyser
//! could not follow them otherwise.

use base64::Engine as _;
use hopgate_policy::trust::{content_hashes, encoded_form, TrustedDir, TrustedFile};
use hopgate_policy::PolicySource;

use super::*;

const CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
const BOOTSTRAP: &str =
    "$codeJson = foreach ($in in $input) { $in }; $code = ConvertFrom-Json $codeJson";
const EXEC: &str = "foreach ($a in $actions) { & $a }";
const MODULE_WRAPPER: &str = "if ($Script) { . $Script }";
const PUT_FILE: &str =
    "begin { $fd = [IO.File]::Create($Path) } process { $fd.Write($InputObject) }";
const PING: &str =
    "$module = [Ansible.Basic.AnsibleModule]::Create($args, @{})\n$module.ExitJson()";

fn file(path: &str, text: &str) -> TrustedFile {
    TrustedFile {
        path: path.into(),
        hashes: content_hashes(text.as_bytes()),
    }
}

fn who() -> Who {
    who_with("")
}

/// `who()`, with `extra` added to the role's `[role.ansible]`.
fn who_with(extra: &str) -> Who {
    who_from(&POLICY.replace("EXTRA", extra))
}

/// A role that trusts the scripts and has deny rules, but no `[role.ansible]`.
const TRUST_ONLY: &str = r#"
[[role]]
name = "ops"
principals = { users = ["ops"] }
hosts = { names = ["*"] }
[role.trust]
dirs = ["core", "ansible.windows"]
[role.cmd]
commands = ["hostname"]
[role.psrp]
language = "full"
visible_cmdlets = ["*"]
[role.deny]
cmdlets = ["Stop-Computer"]
"#;

const POLICY: &str = r#"
[[role]]
name = "ops"
principals = { users = ["ops"] }
hosts = { names = ["*"] }
[role.trust]
dirs = ["core", "ansible.windows"]
[role.ansible]
modules = [{ name = "ansible.windows.win_ping", args = { data = { validate_set = ["pong"] } } }]
EXTRA
[role.cmd]
commands = ["hostname"]
[role.psrp]
language = "restricted"
visible_cmdlets = ["Get-Service"]
[role.deny]
cmdlets = ["Stop-Computer"]
"#;

fn trusted_dirs() -> Vec<TrustedDir> {
    vec![
        TrustedDir {
            dir: "core".into(),
            files: vec![
                file("executor/powershell/bootstrap_wrapper.ps1", BOOTSTRAP),
                file("executor/powershell/exec_wrapper.ps1", EXEC),
                file("executor/powershell/module_wrapper.ps1", MODULE_WRAPPER),
                file("executor/powershell/winrm_put_file.ps1", PUT_FILE),
            ],
        },
        TrustedDir {
            dir: "ansible.windows".into(),
            files: vec![file("plugins/modules/win_ping.ps1", PING)],
        },
    ]
}

fn who_from(policy: &str) -> Who {
    let dirs = trusted_dirs();
    let engine = Engine::from_sources_with_trust(
        &[PolicySource {
            path: "ops.toml".into(),
            text: policy.into(),
        }],
        &dirs,
    )
    .unwrap();
    Who {
        engine: Arc::new(engine),
        subject: Subject {
            user: "ops".into(),
            groups: vec![],
        },
        labels: vec![],
        host: "h",
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A payload as ansible-core builds it, running `module` with `args`, then `data`.
fn payload(module: &str, args: serde_json::Value, data: &str) -> Vec<u8> {
    let exec = serde_json::json!({ "name": "exec_wrapper", "script": EXEC, "params": {} });
    let manifest = serde_json::json!({
        "scripts": {
            "module_wrapper.ps1": { "path": "module_wrapper.ps1", "script": b64(MODULE_WRAPPER) },
            "ansible_collections.ansible.windows.plugins.modules.win_ping.ps1":
                { "path": "x", "script": b64(module) },
        },
        "actions": [{
            "name": "module_wrapper.ps1",
            "params": {
                "Script": "ansible_collections.ansible.windows.plugins.modules.win_ping.ps1",
                "Variables": [{ "Name": "complex_args", "Value": args, "Scope": "Global" }],
            },
        }],
        "signed_hashlist": [],
    });
    format!("{exec}\n\0\0\0\0\n{manifest}\n{data}").into_bytes()
}

fn bootstrap_line() -> String {
    let utf16: Vec<u8> = encoded_form(BOOTSTRAP)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    format!(
        "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {}",
        base64::engine::general_purpose::STANDARD.encode(utf16)
    )
}

/// A cmd shell of `who` running the bootstrap wrapper as C1.
fn shell(who: &Who, max_held: usize) -> Inspector {
    let mut sh = open(who, CMD).with_max_held_input(max_held);
    let line = bootstrap_line();
    let (prog, args) = line.split_once(' ').unwrap();
    let started = request(
        Action::Command,
        CMD,
        Body::CommandLine(CommandLine {
            command_id: None,
            command: prog.into(),
            arguments: args.split(' ').map(str::to_string).collect(),
        }),
    );
    let (verdict, _) = inspect(&mut sh, who, &started, &mut counter());
    assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
    let answer = request(
        Action::CommandResponse,
        CMD,
        Body::CommandResponse {
            command_id: "C1".into(),
        },
    );
    sh.on_answer(&started, &answer);
    sh
}

fn chunks(data: &[u8], n: usize) -> Vec<Vec<u8>> {
    data.chunks(data.len().div_ceil(n))
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn a_trusted_module_is_held_until_its_manifest_is_whole_then_released_in_order() {
    let who = who();
    let mut sh = shell(&who, 1 << 20);
    let mut ids = counter();
    let data = payload(PING, serde_json::json!({ "data": "pong" }), "");
    let parts = chunks(&data, 3);
    let mut wires = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let env = send("C1", part.clone());
        wires.push(Bytes::from(wsman::build(&env)));
        let (verdict, facts) = inspect(&mut sh, &who, &env, &mut ids);
        if i + 1 < parts.len() {
            // Held: answered by the gateway, nothing to the host, nothing decided yet.
            assert!(
                matches!(&verdict, Verdict::Reply(r) if r.header.action == Action::SendResponse),
                "{verdict:?}"
            );
            assert!(facts.is_empty(), "{facts:?}");
            continue;
        }
        assert_eq!(
            verdict,
            Verdict::Forward(wires.clone()),
            "every held Send, in order"
        );
        assert_eq!(allowed(&facts).len(), 1, "{facts:?}");
        let module = facts.iter().find_map(|f| match f {
            Fact::AnsibleModule { run, allowed, .. } => Some((run.clone(), *allowed)),
            _ => None,
        });
        let (run, allowed) = module.expect("the module fact");
        assert!(allowed);
        assert_eq!(run.name, "ansible.windows.win_ping");
        assert_eq!(run.args, r#"{"data":"pong"}"#);
    }
    // What follows the manifest is data for the action: it streams, unjudged.
    let (verdict, facts) = inspect(&mut sh, &who, &send("C1", vec![b'Q'; 300_000]), &mut ids);
    assert!(
        matches!(verdict, Verdict::Forward(ref b) if b.len() == 1),
        "{verdict:?}"
    );
    assert!(facts.is_empty());
}

#[test]
fn an_edited_module_or_a_disallowed_argument_is_refused_and_nothing_is_released() {
    for data in [
        payload(&format!("{PING}\nStop-Computer"), serde_json::json!({}), ""),
        payload(PING, serde_json::json!({ "data": "crash" }), ""),
    ] {
        let who = who();
        let mut sh = shell(&who, 1 << 20);
        let mut ids = counter();
        let parts = chunks(&data, 2);
        let (verdict, _) = inspect(&mut sh, &who, &send("C1", parts[0].clone()), &mut ids);
        assert!(matches!(verdict, Verdict::Reply(_)), "{verdict:?}");
        let (verdict, facts) = inspect(&mut sh, &who, &send("C1", parts[1].clone()), &mut ids);
        assert!(matches!(verdict, Verdict::Deny(_)), "{verdict:?}");
        assert_eq!(denied_reasons(&facts).len(), 1, "{facts:?}");
        // Nothing more goes to that command.
        let (verdict, _) = inspect(&mut sh, &who, &send("C1", b"more\n".to_vec()), &mut ids);
        assert!(matches!(verdict, Verdict::Deny(_)), "{verdict:?}");
        // Its Receive is answered by the gateway: failed, with the reason on stderr, so
        // the client does not wait on a host process that waits for input.
        let (verdict, _) = inspect(&mut sh, &who, &receive("C1"), &mut ids);
        let Verdict::Reply(answer) = verdict else {
            panic!("{verdict:?}")
        };
        let Body::ReceiveResponse {
            streams,
            command_state,
        } = &answer.body
        else {
            panic!("{answer:?}")
        };
        assert_eq!(command_state.as_ref().and_then(|c| c.exit_code), Some(1));
        let stderr = String::from_utf8_lossy(&streams[0].data);
        assert!(stderr.contains("Access is denied by hopgate"), "{stderr}");
        // Other commands' Receives still go to the host.
        let (verdict, _) = inspect(&mut sh, &who, &receive("C2"), &mut ids);
        assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
    }
}

#[test]
fn a_payload_larger_than_the_held_limit_before_its_manifest_ends_is_refused() {
    let who = who();
    let mut sh = shell(&who, 200);
    let data = payload(PING, serde_json::json!({ "data": "pong" }), "");
    assert!(data.len() > 400);
    let (verdict, facts) = inspect(&mut sh, &who, &send("C1", data.clone()), &mut counter());
    // Whole in one Send: decided at once, nothing needed holding.
    assert!(
        matches!(verdict, Verdict::Forward(_)),
        "{verdict:?} {facts:?}"
    );

    // The manifest line not finished yet (its line break is missing): held, over the limit.
    let mut sh = shell(&who, 200);
    let cut = data.len() - 2;
    let (verdict, facts) = inspect(
        &mut sh,
        &who,
        &send("C1", data[..cut].to_vec()),
        &mut counter(),
    );
    let Verdict::Deny(Denial::Access(reason)) = verdict else {
        panic!("{verdict:?}")
    };
    assert!(reason.contains("limits.max_held_input_bytes"), "{reason}");
    assert_eq!(denied_reasons(&facts), [reason]);
}

#[test]
fn other_exec_scripts_run_only_where_the_role_lists_them_whatever_the_payload_calls_them() {
    // Ansible's put_file script writes what it is given to a path: a role for win_ping
    // must not run it, even under the name of the module wrapper.
    let exec = serde_json::json!({ "name": "exec_wrapper", "script": EXEC, "params": {} });
    let manifest = serde_json::json!({
        "scripts": { "module_wrapper.ps1": { "path": "x", "script": b64(PUT_FILE) } },
        "actions": [{ "name": "module_wrapper.ps1", "params": { "Path": "C:\\Windows\\x.ps1" } }],
    });
    let data = format!("{exec}\n\0\0\0\0\n{manifest}\nQUJD\n").into_bytes();
    for (extra, allow) in [("", false), (r#"actions = ["winrm_put_file.ps1"]"#, true)] {
        let who = who_with(extra);
        let mut sh = shell(&who, 1 << 20);
        let (verdict, facts) = inspect(&mut sh, &who, &send("C1", data.clone()), &mut counter());
        assert_eq!(
            matches!(verdict, Verdict::Forward(_)),
            allow,
            "{extra}: {verdict:?} {facts:?}"
        );
        if !allow {
            let reasons = denied_reasons(&facts);
            assert!(reasons[0].contains("winrm_put_file.ps1"), "{reasons:?}");
        }
    }
}

#[test]
fn an_action_that_would_run_the_rest_of_the_input_as_code_is_refused_beside_deny_rules() {
    // exec_wrapper.ps1 run as an action would read the data after the manifest as a
    // second manifest nobody judged (here: Stop-Computer); even a role with no
    // [role.ansible] refuses that where a deny rule applies.
    let exec = serde_json::json!({ "name": "exec_wrapper", "script": EXEC, "params": {} });
    let manifest = serde_json::json!({
        "scripts": { "again": { "path": "x", "script": b64(EXEC) } },
        "actions": [{ "name": "again", "params": {} }],
    });
    let data = format!("{exec}\n\0\0\0\0\n{manifest}\nStop-Computer\n").into_bytes();
    let who = who_from(TRUST_ONLY);
    let mut sh = shell(&who, 1 << 20);
    let (verdict, facts) = inspect(&mut sh, &who, &send("C1", data), &mut counter());
    assert!(matches!(verdict, Verdict::Deny(_)), "{verdict:?}");
    let reasons = denied_reasons(&facts);
    assert!(reasons[0].contains("deny rules"), "{reasons:?}");
    // The same role runs a real module payload.
    let mut sh = shell(&who, 1 << 20);
    let ok = payload(PING, serde_json::json!({ "data": "anything" }), "");
    let (verdict, facts) = inspect(&mut sh, &who, &send("C1", ok), &mut counter());
    assert!(
        matches!(verdict, Verdict::Forward(_)),
        "{verdict:?} {facts:?}"
    );
}

/// PSRP: the bootstrap wrapper as the pipeline's script, the payload as its input (one
/// string object per line, as Ansible's psrp connection sends it).
mod psrp_input {
    use super::*;
    use crate::psrp::MessageType;

    const PID: &str = "0B0C0D0E-0000-4000-8000-00000000000B";

    fn pid() -> Uuid {
        Uuid::parse_str(PID).unwrap()
    }

    fn xml_text(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\0', "_x0000_")
    }

    fn input(line: &str, object_id: u64) -> Envelope {
        let xml = format!("<S>{}</S>", xml_text(line));
        let frags = client_message(MessageType::PipelineInput, pid(), &xml, object_id, 1 << 20);
        send(PID, frags.concat())
    }

    fn run(module: &str) -> (Vec<Verdict>, Vec<Fact>, Inspector, Who) {
        let who = who();
        let mut sh = open(&who, PS);
        let mut ids = counter();
        let xml = create_pipeline_xml(&[&[(BOOTSTRAP, true, &[])]])
            .replace(r#"<B N="NoInput">true</B>"#, r#"<B N="NoInput">false</B>"#);
        let (verdict, facts) = inspect(&mut sh, &who, &psrp_command(PID, &xml, 1), &mut ids);
        assert!(
            matches!(&verdict, Verdict::Reply(r) if r.header.action == Action::CommandResponse),
            "held, answered by the gateway: {verdict:?}"
        );
        assert!(facts.is_empty(), "{facts:?}");
        let data = payload(module, serde_json::json!({ "data": "pong" }), "");
        let text = String::from_utf8(data).unwrap();
        let mut verdicts = Vec::new();
        let mut all = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let (v, f) = inspect(&mut sh, &who, &input(line, 2 + i as u64), &mut ids);
            verdicts.push(v);
            all.extend(f);
        }
        (verdicts, all, sh, who)
    }

    #[test]
    fn the_pipeline_and_its_input_are_held_until_the_manifest_then_released_in_order() {
        let (verdicts, facts, _, _) = run(PING);
        assert_eq!(verdicts.len(), 3, "exec wrapper, separator, manifest");
        for v in &verdicts[..2] {
            assert!(
                matches!(v, Verdict::Reply(r) if r.header.action == Action::SendResponse),
                "{v:?}"
            );
        }
        assert!(
            matches!(&verdicts[2], Verdict::Forward(b) if b.len() == 4),
            "the Command, two held Sends and this one: {:?}",
            verdicts[2]
        );
        assert_eq!(allowed(&facts).len(), 1, "{facts:?}");
        assert!(facts.iter().any(|f| matches!(
            f,
            Fact::AnsibleModule { run, allowed: true, .. } if run.name == "ansible.windows.win_ping"
        )));
    }

    #[test]
    fn an_edited_module_fails_the_pipeline_and_nothing_reaches_the_host() {
        let (verdicts, facts, mut sh, who) = run(&format!("{PING}\nStop-Computer"));
        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Reply(_))),
            "{verdicts:?}"
        );
        assert_eq!(denied_reasons(&facts).len(), 1, "{facts:?}");
        // The client learns it as a failed pipeline, as for any refused pipeline.
        let (verdict, _) = inspect(&mut sh, &who, &receive(PID), &mut counter());
        assert!(
            matches!(&verdict, Verdict::Reply(r) if r.header.action == Action::ReceiveResponse),
            "{verdict:?}"
        );
    }
}
