//! Pipeline read-out beyond the corpus: statement rules (no command can hide between `Cmds`
//! and `ExtraCmds`), malformed shapes, argument display forms and the work bound, and the
//! decode summary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use serde_json::json;
use uuid::Uuid;

use super::corpus::{corpus_dir, Direction};
use super::corpus_tests::decode_file;
use crate::psrp::{
    decode_message_summary, extract_create_pipeline, extract_get_command_metadata, Destination,
    Message, MessageType, PipelineErrorKind, PsrpError,
};

fn message(message_type: MessageType, xml: &str) -> Message {
    Message {
        destination: Destination::Server,
        message_type,
        rpid: Uuid::from_u128(1),
        pid: Uuid::from_u128(2),
        data: xml.as_bytes().to_vec(),
    }
}

fn cmd(name: &str, is_script: bool, args: &str) -> String {
    format!(
        r#"<Obj><MS><S N="Cmd">{name}</S><B N="IsScript">{is_script}</B><Nil N="UseLocalScope" /><Obj N="Args"><LST>{args}</LST></Obj></MS></Obj>"#
    )
}

fn arg(name: Option<&str>, value_xml: &str) -> String {
    let n = match name {
        Some(n) => format!(r#"<S N="N">{n}</S>"#),
        None => r#"<Nil N="N" />"#.to_owned(),
    };
    format!(r#"<Obj><MS>{n}{value_xml}</MS></Obj>"#)
}

fn create_pipeline(powershell_ms: &str) -> Message {
    let xml = format!(
        r#"<Obj RefId="0"><MS><B N="NoInput">true</B><Obj N="PowerShell"><MS>{powershell_ms}<B N="IsNested">false</B></MS></Obj><B N="IsNested">false</B></MS></Obj>"#
    );
    message(MessageType::CreatePipeline, &xml)
}

fn list(name: &str, items: &[String]) -> String {
    format!(r#"<Obj N="{name}"><LST>{}</LST></Obj>"#, items.concat())
}

fn statement(cmds: &[String]) -> String {
    format!(r#"<Obj><MS>{}</MS></Obj>"#, list("Cmds", cmds))
}

fn names(msg: &Message) -> Vec<Vec<String>> {
    extract_create_pipeline(msg)
        .unwrap()
        .statements
        .iter()
        .map(|s| s.iter().map(|c| c.name.clone()).collect())
        .collect()
}

fn pipeline_err(msg: &Message) -> (String, PipelineErrorKind) {
    match extract_create_pipeline(msg) {
        Err(PsrpError::Pipeline { path, kind }) => (path, kind),
        other => panic!("{other:?}"),
    }
}

#[test]
fn statements_come_from_extra_cmds_and_cmds_cannot_hide() {
    let a = cmd("Get-Item", false, "");
    let b = cmd("Remove-Item", false, "");
    let c = cmd("Stop-Computer", false, "");

    // Real traffic: Cmds repeats ExtraCmds[0].
    let m = create_pipeline(&format!(
        "{}{}",
        list("Cmds", std::slice::from_ref(&a)),
        list(
            "ExtraCmds",
            &[
                statement(std::slice::from_ref(&a)),
                statement(std::slice::from_ref(&b))
            ]
        )
    ));
    assert_eq!(names(&m), vec![vec!["Get-Item"], vec!["Remove-Item"]]);

    // Cmds differs from ExtraCmds[0]: it is reported as a statement of its own.
    let m = create_pipeline(&format!(
        "{}{}",
        list("Cmds", std::slice::from_ref(&c)),
        list(
            "ExtraCmds",
            &[
                statement(std::slice::from_ref(&a)),
                statement(std::slice::from_ref(&b))
            ]
        )
    ));
    assert_eq!(
        names(&m),
        vec![vec!["Stop-Computer"], vec!["Get-Item"], vec!["Remove-Item"]]
    );

    // Same name, different argument: still different.
    let a2 = cmd("Get-Item", false, &arg(Some("Path"), r#"<S N="V">C:\</S>"#));
    let m = create_pipeline(&format!(
        "{}{}",
        list("Cmds", std::slice::from_ref(&a2)),
        list("ExtraCmds", &[statement(std::slice::from_ref(&a))])
    ));
    assert_eq!(names(&m), vec![vec!["Get-Item"], vec!["Get-Item"]]);

    // ExtraCmds Nil or empty: Cmds.
    for extra in [
        r#"<Nil N="ExtraCmds" />"#.to_owned(),
        list("ExtraCmds", &[]),
    ] {
        let m = create_pipeline(&format!("{}{extra}", list("Cmds", &[a.clone(), b.clone()])));
        assert_eq!(names(&m), vec![vec!["Get-Item", "Remove-Item"]]);
    }
    // Empty Cmds with ExtraCmds: the ExtraCmds statements, empty ones dropped.
    let m = create_pipeline(&format!(
        "{}{}",
        list("Cmds", &[]),
        list(
            "ExtraCmds",
            &[statement(&[]), statement(std::slice::from_ref(&b))]
        )
    ));
    assert_eq!(names(&m), vec![vec!["Remove-Item"]]);
}

/// PowerShell looks members up case-insensitively (and after `_xHHHH_` decoding), so
/// spelling `Cmds` differently neither hides commands nor lets a second list slip past.
#[test]
fn member_names_compare_like_powershell() {
    let evil = cmd("Stop-Computer", false, "");
    let benign = cmd("Get-Date", false, "");
    for name in ["cmds", "CMDS", "_x0043_mds", "Cmd\u{17F}"] {
        let m = create_pipeline(&list(name, std::slice::from_ref(&evil)));
        assert_eq!(names(&m), vec![vec!["Stop-Computer"]], "{name}");
        let m = create_pipeline(&format!(
            "{}{}",
            list("Cmds", std::slice::from_ref(&benign)),
            list(name, std::slice::from_ref(&evil))
        ));
        assert_eq!(
            pipeline_err(&m),
            (
                "PowerShell".into(),
                PipelineErrorKind::DuplicateMember("Cmds".into())
            ),
            "{name}"
        );
    }
    let m = create_pipeline(&format!(
        "{}{}",
        list("Cmds", std::slice::from_ref(&benign)),
        list("extracmds", &[statement(std::slice::from_ref(&evil))])
    ));
    assert_eq!(names(&m), vec![vec!["Get-Date"], vec!["Stop-Computer"]]);
}

#[test]
fn malformed_pipelines_are_errors() {
    let a = cmd("Get-Item", false, "");
    let cmds = list("Cmds", std::slice::from_ref(&a));

    let m = create_pipeline(&format!("{cmds}{cmds}"));
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell".into(),
            PipelineErrorKind::DuplicateMember("Cmds".into())
        )
    );

    let m = create_pipeline("");
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell".into(),
            PipelineErrorKind::MissingMember("Cmds")
        )
    );

    let m = create_pipeline(&list("Cmds", &[]));
    assert_eq!(
        pipeline_err(&m),
        ("PowerShell".into(), PipelineErrorKind::Empty)
    );

    let no_script = r#"<Obj><MS><S N="Cmd">x</S><Obj N="Args"><LST /></Obj></MS></Obj>"#.to_owned();
    let m = create_pipeline(&list("Cmds", &[no_script]));
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell.Cmds[0]".into(),
            PipelineErrorKind::MissingMember("IsScript")
        )
    );

    let bad_name = r#"<Obj><MS><I32 N="Cmd">1</I32><B N="IsScript">false</B><Obj N="Args"><LST /></Obj></MS></Obj>"#.to_owned();
    let m = create_pipeline(&list("Cmds", &[bad_name]));
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell.Cmds[0].Cmd".into(),
            PipelineErrorKind::WrongType("string")
        )
    );

    let extra_bad = format!(
        "{cmds}{}",
        list(
            "ExtraCmds",
            &[statement(&[cmd("x", false, &arg(Some("A"), ""))])]
        )
    );
    let m = create_pipeline(&extra_bad);
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell.ExtraCmds[0].Cmds[0].Args[0]".into(),
            PipelineErrorKind::MissingMember("V")
        )
    );

    // A duplicate hidden in Props next to MS is caught too.
    let dup = r#"<Obj RefId="0"><MS><Obj N="PowerShell"><Props><Obj N="Cmds"><LST /></Obj></Props><MS><Obj N="Cmds"><LST /></Obj></MS></Obj></MS></Obj>"#;
    let m = message(MessageType::CreatePipeline, dup);
    assert_eq!(
        pipeline_err(&m),
        (
            "PowerShell".into(),
            PipelineErrorKind::DuplicateMember("Cmds".into())
        )
    );

    let m = message(MessageType::CreatePipeline, "<S>x</S>");
    assert_eq!(pipeline_err(&m), ("/".into(), PipelineErrorKind::NoObject));

    // A second object after the pipeline is refused rather than ignored.
    let mut two = create_pipeline(&cmds);
    two.data.extend_from_slice(b"<Obj RefId=\"99\" />");
    assert_eq!(
        pipeline_err(&two),
        ("/".into(), PipelineErrorKind::ExtraValues)
    );

    let m = message(MessageType::PipelineInput, "<S>x</S>");
    assert_eq!(
        extract_create_pipeline(&m),
        Err(PsrpError::UnexpectedMessageType {
            expected: MessageType::CreatePipeline,
            found: MessageType::PipelineInput
        })
    );
    let m = message(MessageType::CreatePipeline, "<Obj>");
    assert!(matches!(
        extract_create_pipeline(&m),
        Err(PsrpError::Clixml { .. })
    ));
}

#[test]
fn argument_values_display_forms() {
    let args = [
        arg(
            Some("Script"),
            r#"<SBK N="V">Remove-Item C:\ -Recurse</SBK>"#,
        ),
        arg(
            Some("Hash"),
            r#"<Obj N="V"><TN><T>System.Collections.Hashtable</T><T>System.Object</T></TN><DCT><En><S N="Key">a</S><I32 N="Value">1</I32></En></DCT></Obj>"#,
        ),
        arg(
            Some("Color"),
            r#"<Obj N="V"><TN><T>System.ConsoleColor</T><T>System.Enum</T><T>System.ValueType</T><T>System.Object</T></TN><ToString>Red</ToString><I32>12</I32></Obj>"#,
        ),
        arg(
            Some("Id"),
            r#"<G N="V">792e5b37-4505-47ef-b7d2-8711bb7affa8</G>"#,
        ),
        arg(Some("Big"), r#"<U64 N="V">18446744073709551615</U64>"#),
        arg(Some("Ch"), r#"<C N="V">97</C>"#),
        arg(Some("F"), r#"<Db N="V">1.5</Db>"#),
        arg(Some("Pw"), r#"<SS N="V">c2VjcmV0</SS>"#),
        arg(
            None,
            r#"<Obj N="V"><TN><T>System.Object[]</T></TN><LST><S>a</S><Nil /><B>true</B></LST></Obj>"#,
        ),
        arg(
            Some("Ext"),
            r#"<Obj N="V"><TN><T>System.String</T></TN><ToString>hi</ToString><S>hi</S><MS><S N="note">x</S></MS></Obj>"#,
        ),
        arg(
            Some("Custom"),
            r#"<Obj N="V"><TN><T>System.Management.Automation.PSCustomObject</T></TN><ToString>@{a=1}</ToString><MS><I32 N="a">1</I32></MS></Obj>"#,
        ),
    ];
    let m = create_pipeline(&list("Cmds", &[cmd("Invoke-Thing", false, &args.concat())]));
    let p = extract_create_pipeline(&m).unwrap();
    let got = serde_json::to_value(&p.statements[0][0].args).unwrap();
    assert_eq!(
        got,
        json!([
            {"name": "Script", "value": {"script_block": "Remove-Item C:\\ -Recurse"}},
            {"name": "Hash", "value": {"dict": [{"key": "a", "value": 1}]}},
            {"name": "Color", "value": {"type_name": "System.ConsoleColor", "to_string": "Red"}},
            {"name": "Id", "value": {"type_name": "System.Guid", "to_string": "792e5b37-4505-47ef-b7d2-8711bb7affa8"}},
            {"name": "Big", "value": 18446744073709551615u64},
            {"name": "Ch", "value": {"type_name": "System.Char", "to_string": "a"}},
            {"name": "F", "value": 1.5},
            {"name": "Pw", "value": {"secure_string": "<redacted>"}},
            {"name": null, "value": ["a", null, true]},
            {"name": "Ext", "value": "hi"},
            {"name": "Custom", "value": {"type_name": "System.Management.Automation.PSCustomObject", "to_string": "@{a=1}"}},
        ])
    );
    // The secret's ciphertext never reaches the read-out.
    assert!(!serde_json::to_string(&p).unwrap().contains("c2VjcmV0"));
}

/// A value whose shared objects double at every level (2^40 leaves) is refused quickly
/// instead of being expanded.
#[test]
fn shared_reference_bomb_is_bounded() {
    let mut xml = String::from(r#"<Obj RefId="1000"><LST><S>x</S><S>y</S></LST></Obj>"#);
    let mut inner = String::new();
    for i in 1..40 {
        inner = format!(
            r#"<Obj RefId="{}"><LST>{}<Ref RefId="{}" /></LST></Obj>"#,
            1000 + i,
            if i == 1 { xml.clone() } else { inner },
            1000 + i - 1
        );
    }
    xml = inner;
    let args = arg(Some("V"), &xml.replacen("<Obj ", r#"<Obj N="V" "#, 1));
    let m = create_pipeline(&list("Cmds", &[cmd("x", false, &args)]));
    let start = std::time::Instant::now();
    let (_, kind) = pipeline_err(&m);
    assert_eq!(kind, PipelineErrorKind::ValueTooComplex(100_000));
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn get_command_metadata_shapes() {
    let m = message(
        MessageType::GetCommandMetadata,
        r#"<Obj RefId="0"><MS><Nil N="Name" /><I32 N="CommandType">511</I32></MS></Obj>"#,
    );
    assert_eq!(
        extract_get_command_metadata(&m).unwrap(),
        Vec::<String>::new()
    );
    let m = message(
        MessageType::GetCommandMetadata,
        r#"<Obj RefId="0"><MS><Obj N="Name"><LST><S>a*</S><I32>1</I32></LST></Obj></MS></Obj>"#,
    );
    assert!(matches!(
        extract_get_command_metadata(&m),
        Err(PsrpError::Pipeline {
            kind: PipelineErrorKind::WrongType("string"),
            ..
        })
    ));
}

#[test]
fn summary_of_corpus_messages() {
    let decoded = decode_file(&corpus_dir().join("test_psrp_with_jea_configuration.yml"));
    let create = decoded[&Direction::ClientToServer]
        .iter()
        .find(|m| m.message_type == MessageType::CreatePipeline)
        .unwrap();
    let s = serde_json::to_value(decode_message_summary(create)).unwrap();
    assert_eq!(s["message_type"], "CREATE_PIPELINE");
    assert_eq!(s["message_type_value"], 0x0002_1006);
    assert_eq!(s["destination"], "server");
    assert_eq!(s["pipeline"]["statements"][0][0]["name"], "Get-Item");
    assert!(s["pid"].is_string());
    assert!(s.get("error").is_none());

    let state = decoded[&Direction::ServerToClient]
        .iter()
        .find(|m| m.message_type == MessageType::RunspacePoolState)
        .unwrap();
    let s = serde_json::to_value(decode_message_summary(state)).unwrap();
    assert_eq!(s["message_type"], "RUNSPACEPOOL_STATE");
    assert_eq!(s["destination"], "client");
    assert!(s.get("pid").is_none() && s.get("pipeline").is_none());

    let broken = message(MessageType::CreatePipeline, "<Obj>");
    let s = decode_message_summary(&broken);
    assert!(s.pipeline.is_none());
    assert!(s.error.unwrap().starts_with("clixml error at byte"));
}

#[test]
fn client_input_follows_no_input_and_defaults_to_input() {
    let ps = list("Cmds", &[cmd("Restart-Service", false, "")]);
    let with = |no_input: &str| {
        let xml = format!(
            r#"<Obj RefId="0"><MS>{no_input}<Obj N="PowerShell"><MS>{ps}<B N="IsNested">false</B></MS></Obj><B N="IsNested">false</B></MS></Obj>"#
        );
        extract_create_pipeline(&message(MessageType::CreatePipeline, &xml))
            .unwrap()
            .client_input
    };
    assert!(!with(r#"<B N="NoInput">true</B>"#));
    assert!(with(r#"<B N="NoInput">false</B>"#));
    // No member, or one that is not a boolean: input can reach the pipeline.
    assert!(with(""));
    assert!(with(r#"<S N="NoInput">true</S>"#));
}
