//! A selection of the policy table cases (`crates/policy/src/table_tests.rs`, the shipped
//! `policies/`), through the inspector: the same outcomes as the engine alone, carried out
//! as verdicts (cmd: a fault; PSRP: a failed pipeline) and recorded as facts.

use super::*;

const CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";

fn cmd_line(command: &str, args: &[&str]) -> Envelope {
    request(
        Action::Command,
        CMD,
        Body::CommandLine(CommandLine {
            command_id: None,
            command: command.into(),
            arguments: args.iter().map(|a| a.to_string()).collect(),
        }),
    )
}

fn enc(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(utf16)
}

#[test]
fn cmd_lines_of_the_demo_role() {
    let who = Who::alice();
    let mut sh = open(&who, CMD);
    let mut ids = counter();
    let cases: &[(&str, &[&str], bool)] = &[
        ("hostname", &[], true),
        ("whoami", &[], true),
        ("ipconfig", &["/all"], true),
        ("echo hello world", &[], true),
        ("echo hi & del C:\\x", &[], false),
        ("ipconfig /release", &[], false),
        ("whoami | calc", &[], false),
        ("shutdown /s", &[], false),
        ("powershell", &["-enc", &enc("Stop-Computer")], false),
    ];
    for (command, args, allow) in cases {
        let (verdict, facts) = inspect(&mut sh, &who, &cmd_line(command, args), &mut ids);
        match (allow, verdict) {
            (true, Verdict::Forward(bodies)) => {
                assert_eq!(bodies.len(), 1);
                assert_eq!(allowed(&facts).len(), 1, "{command}");
            }
            (false, Verdict::Deny(Denial::Access(reason))) => {
                assert_eq!(denied_reasons(&facts), [reason], "{command}");
            }
            (_, other) => panic!("{command} {args:?}: {other:?}"),
        }
    }
    let c = sh.counts();
    assert_eq!((c.commands_allowed, c.commands_denied), (4, 5));
}

#[test]
fn stdin_of_interpreters_is_judged_line_by_line() {
    let who = Who::alice();
    let cases: &[(&str, &str, bool)] = &[
        ("cmd", "hostname\r\nwhoami\r\nexit\r\n", true),
        ("cmd", "hostname\r\ncalc\r\n", false),
        ("cmd", "whoami & calc\r\n", false),
        ("powershell -", "Get-Service\r\n", true),
        (
            "powershell -NoProfile -Command -",
            "Stop-Computer\r\n",
            false,
        ),
        ("hostname", "anything\r\n", false),
    ];
    for (program, data, allow) in cases {
        let mut sh = open(&who, CMD);
        let mut ids = counter();
        let (prog, args) = program.split_once(' ').unwrap_or((program, ""));
        let args: Vec<&str> = args.split_whitespace().collect();
        let started = cmd_line(prog, &args);
        let answer = request(
            Action::CommandResponse,
            CMD,
            Body::CommandResponse {
                command_id: "C1".into(),
            },
        );
        assert!(sh.on_answer(&started, &answer).is_empty());
        assert_eq!(sh.live_commands(), ["C1"]);
        let input = request(
            Action::Send,
            CMD,
            Body::Send(vec![Stream {
                name: "stdin".into(),
                command_id: Some("C1".into()),
                end: false,
                data: data.as_bytes().to_vec(),
            }]),
        );
        let (verdict, facts) = inspect(&mut sh, &who, &input, &mut ids);
        assert_eq!(
            matches!(verdict, Verdict::Forward(_)),
            *allow,
            "{program} < {data:?}: {verdict:?} {facts:?}"
        );
    }
}

/// A started command `program` (Command then Arguments) with id C1, on `sh`.
fn started(sh: &mut Inspector, program: &str) {
    let (prog, args) = program.split_once(' ').unwrap_or((program, ""));
    let args: Vec<&str> = args.split_whitespace().collect();
    let answer = request(
        Action::CommandResponse,
        CMD,
        Body::CommandResponse {
            command_id: "C1".into(),
        },
    );
    assert!(sh.on_answer(&cmd_line(prog, &args), &answer).is_empty());
}

fn stdin_send(data: Vec<u8>) -> Envelope {
    request(
        Action::Send,
        CMD,
        Body::Send(vec![Stream {
            name: "stdin".into(),
            command_id: Some("C1".into()),
            end: false,
            data,
        }]),
    )
}

#[test]
fn data_for_a_program_that_runs_none_of_it_streams_whatever_its_line_length() {
    // Ansible's winrm connection sends 200,000-byte chunks with no line break; the old
    // 64 KiB line limit refused them before policy ran. Data is judged once, then streams.
    let who = Who::admin();
    let mut sh = open(&who, CMD).with_max_held_input(1024);
    started(
        &mut sh,
        &format!("powershell -EncodedCommand {}", enc("$input | Out-Null")),
    );
    let mut ids = counter();
    let chunk = vec![b'A'; 200_000];
    let (verdict, facts) = inspect(&mut sh, &who, &stdin_send(chunk.clone()), &mut ids);
    assert!(
        matches!(verdict, Verdict::Forward(ref b) if b.len() == 1),
        "{verdict:?}"
    );
    assert_eq!(allowed(&facts).len(), 1, "{facts:?}");
    for _ in 0..5 {
        let (verdict, facts) = inspect(&mut sh, &who, &stdin_send(chunk.clone()), &mut ids);
        assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
        assert!(facts.is_empty(), "judged once, not per chunk: {facts:?}");
    }
}

#[test]
fn data_stdin_is_still_denied_where_policy_refuses_it() {
    // alice's role does not allow opaque input: the first chunk is refused, and so is the
    // next (nothing was allowed, so nothing streams).
    let who = Who::alice();
    let mut sh = open(&who, CMD);
    started(&mut sh, "hostname");
    let mut ids = counter();
    for _ in 0..2 {
        let (verdict, facts) = inspect(&mut sh, &who, &stdin_send(vec![b'A'; 100]), &mut ids);
        assert!(matches!(verdict, Verdict::Deny(_)), "{verdict:?}");
        assert_eq!(denied_reasons(&facts).len(), 1);
    }
}

#[test]
fn an_interpreter_line_longer_than_the_held_limit_is_refused_with_its_size() {
    let who = Who::admin();
    let mut sh = open(&who, CMD).with_max_held_input(1000);
    started(&mut sh, "powershell -");
    let mut ids = counter();
    // Complete lines are judged and released, whatever their total: nothing is held.
    let lines = "Get-Service\r\n".repeat(500).into_bytes();
    let (verdict, _) = inspect(&mut sh, &who, &stdin_send(lines), &mut ids);
    assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
    // 600 + 600 bytes of one unfinished line: the second Send would hold 1200 > 1000.
    let (verdict, _) = inspect(&mut sh, &who, &stdin_send(vec![b'x'; 600]), &mut ids);
    assert!(matches!(verdict, Verdict::Forward(_)), "{verdict:?}");
    let (verdict, facts) = inspect(&mut sh, &who, &stdin_send(vec![b'x'; 600]), &mut ids);
    let Verdict::Deny(Denial::Access(reason)) = verdict else {
        panic!("{verdict:?}")
    };
    assert!(reason.contains("1200 bytes"), "{reason}");
    assert!(reason.contains("limits.max_held_input_bytes"), "{reason}");
    assert_eq!(denied_reasons(&facts), [reason]);
}

#[test]
fn input_for_a_command_the_gateway_did_not_see_start_is_refused() {
    let who = Who::admin();
    let mut sh = open(&who, CMD);
    let input = request(
        Action::Send,
        CMD,
        Body::Send(vec![Stream {
            name: "stdin".into(),
            command_id: Some("NEVER-STARTED".into()),
            end: false,
            data: b"whoami\r\n".to_vec(),
        }]),
    );
    let (verdict, facts) = inspect(&mut sh, &who, &input, &mut counter());
    assert!(matches!(verdict, Verdict::Deny(_)));
    assert_eq!(
        denied_reasons(&facts),
        ["input for a command the gateway did not start"]
    );
}

#[test]
fn pipelines_of_the_demo_role() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let ok = |v: &Verdict| matches!(v, Verdict::Forward(b) if b.len() == 1);
    let failed =
        |v: &Verdict| matches!(v, Verdict::Reply(r) if r.header.action == Action::CommandResponse);
    let cases: &[(&[&[Cmd<'_>]], bool)] = &[
        (
            &[&[("Get-Service", false, &[(Some("Name"), "WinRM")])]],
            true,
        ),
        (&[&[("Get-Process", false, &[])]], true),
        (
            &[
                &[("Get-Date", false, &[])],
                &[("Write-Output", false, &[(Some("InputObject"), "two")])],
            ],
            true,
        ),
        (&[&[("Stop-Computer", false, &[])]], false),
        (
            &[&[("Restart-Computer", false, &[(Some("Force"), "")])]],
            false,
        ),
        (
            &[
                &[("Get-Date", false, &[])],
                &[("Stop-Computer", false, &[])],
            ],
            false,
        ),
        (
            &[&[(
                "Invoke-Expression",
                false,
                &[(Some("Command"), "Stop-Computer")],
            )]],
            false,
        ),
        (&[&[("Get-Service; Stop-Computer", true, &[])]], false),
        (&[&[("Get-Service", true, &[])]], true),
        (&[&[("Remove-Item", false, &[(None, "C:\\x")])]], false),
    ];
    for (i, (statements, allow)) in cases.iter().enumerate() {
        let id = format!("0B0C0D0E-0000-4000-8000-{:012X}", i + 1);
        let xml = create_pipeline_xml(statements);
        let (verdict, facts) = inspect(
            &mut sh,
            &who,
            &psrp_command(&id, &xml, i as u64 + 1),
            &mut ids,
        );
        if *allow {
            assert!(ok(&verdict), "{statements:?}: {verdict:?} {facts:?}");
            assert_eq!(allowed(&facts).len(), 1);
        } else {
            assert!(failed(&verdict), "{statements:?}: {verdict:?}");
            assert_eq!(denied_reasons(&facts).len(), 1, "{facts:?}");
        }
    }
}

#[test]
fn get_command_metadata_is_a_pipeline_too() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let xml = |name: &str| {
        format!(
            r#"<Obj RefId="0"><MS><Obj N="Name" RefId="1"><TN RefId="0"><T>System.String[]</T><T>System.Array</T><T>System.Object</T></TN><LST><S>{name}</S></LST></Obj><Obj N="CommandType" RefId="2"><TN RefId="1"><T>System.Management.Automation.CommandTypes</T><T>System.Enum</T><T>System.ValueType</T><T>System.Object</T></TN><ToString>All</ToString><I32>383</I32></Obj><Nil N="Namespace" /><Nil N="ArgumentList" /></MS></Obj>"#
        )
    };
    for (i, name) in ["Get-Service", "Get-Process"].iter().enumerate() {
        let id = format!("0B0C0D0E-0000-4000-8000-{:012X}", i + 1);
        let frags = client_message(
            MessageType::GetCommandMetadata,
            Uuid::parse_str(&id).unwrap(),
            &xml(name),
            i as u64 + 1,
            1 << 20,
        );
        let mut env = psrp_command(&id, "", 0);
        if let Body::CommandLine(cl) = &mut env.body {
            cl.arguments = vec![base64::engine::general_purpose::STANDARD.encode(frags.concat())];
        }
        let (verdict, facts) = inspect(&mut sh, &who, &env, &mut ids);
        assert!(
            matches!(verdict, Verdict::Forward(_)),
            "{name}: {verdict:?}"
        );
        assert_eq!(allowed(&facts), [vec![format!("Get-Command {name}")]]);
    }
}

#[test]
fn creates_are_judged_by_resource_compression_and_policy() {
    let alice = Who::alice();
    let create =
        |resource: &str| request(Action::Create, resource, Body::Shell(Default::default()));
    // Open for alice on her host, for both kinds.
    assert!(Inspector::open(&create(CMD), &alice.judge()).0.is_ok());
    assert!(Inspector::open(&create(PS), &alice.judge()).0.is_ok());
    // A resource the gateway does not relay.
    let (r, facts) = Inspector::open(
        &create("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"),
        &alice.judge(),
    );
    assert!(matches!(r, Err(Denial::Resource(_))));
    assert!(
        matches!(&facts[..], [Fact::Refused { reason, .. }] if reason == "resource not relayed")
    );
    // xpress on a PowerShell shell is decoded; other compression fails closed.
    let mut env = create(PS);
    env.header.compression_type = Some("xpress".into());
    let opened = Inspector::open(&env, &alice.judge()).0.unwrap();
    assert!(opened.compressed());
    assert!(!Inspector::open(&create(PS), &alice.judge())
        .0
        .unwrap()
        .compressed());
    env.header.compression_type = Some("lznt1".into());
    let (r, facts) = Inspector::open(&env, &alice.judge());
    assert!(matches!(r, Err(Denial::Compression)));
    assert!(
        matches!(&facts[..], [Fact::Refused { reason, .. }] if reason == "shell compression not supported")
    );
    let mut env = create(CMD);
    env.header.compression_type = Some("xpress".into());
    assert!(matches!(
        Inspector::open(&env, &alice.judge()).0,
        Err(Denial::Compression)
    ));
    // A host no role grants her.
    let mut elsewhere = Who::alice();
    elsewhere.host = "db-07";
    let (r, facts) = Inspector::open(&create(PS), &elsewhere.judge());
    assert!(matches!(r, Err(Denial::Access(_))));
    assert_eq!(facts.len(), 1);
}

/// The code policy decoded (`-EncodedCommand`, pypsrp's `Invoke-Expression` wrapper)
/// reaches the facts, allowed or denied, for the audit record.
#[test]
fn facts_carry_the_decoded_code() {
    let decoded = |facts: &[Fact]| -> Vec<(String, String)> {
        facts
            .iter()
            .flat_map(|f| match f {
                Fact::Allowed { decoded, .. } | Fact::Denied { decoded, .. } => decoded.clone(),
                _ => Vec::new(),
            })
            .map(|d| (d.via, d.text))
            .collect()
    };
    let pair = |via: &str, text: &str| vec![(via.to_string(), text.to_string())];
    let who = Who::alice();
    let mut ids = counter();
    let mut sh = open(&who, CMD);
    for (script, allow) in [("Get-Service", true), ("Stop-Computer", false)] {
        let line = cmd_line("powershell", &["-encodedcommand", &enc(script)]);
        let (_, facts) = inspect(&mut sh, &who, &line, &mut ids);
        assert_eq!(allowed(&facts).len(), usize::from(allow), "{facts:?}");
        assert_eq!(decoded(&facts), pair("EncodedCommand", script));
    }
    let (_, facts) = inspect(&mut sh, &who, &cmd_line("hostname", &[]), &mut ids);
    assert!(decoded(&facts).is_empty());

    let mut sh = open(&who, PS);
    let iex: &[Cmd<'_>] = &[
        (
            "Invoke-Expression",
            false,
            &[(Some("Command"), "Get-Service")],
        ),
        ("Out-String", false, &[(Some("Stream"), "")]),
    ];
    let xml = create_pipeline_xml(&[iex]);
    let id = "0B0C0D0E-0000-4000-8000-0000000000FF";
    let (verdict, facts) = inspect(&mut sh, &who, &psrp_command(id, &xml, 1), &mut ids);
    assert!(
        matches!(verdict, Verdict::Forward(_)),
        "{verdict:?} {facts:?}"
    );
    assert_eq!(decoded(&facts), pair("Invoke-Expression", "Get-Service"));
}
