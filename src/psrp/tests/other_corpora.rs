//! The rest of `../shared/corpus`: a PowerShell 7 era receive response and CLIXML records
//! (Devolutions/ironPosh tests, MIT) and a Windows error record template (WinRb/WinRM stubs,
//! Apache-2.0). Expected values were read from the files by hand.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use base64::Engine as _;
use uuid::Uuid;

use super::corpus::parse_envelope;
use crate::psrp::clixml::{parse_clixml, ObjectContent, ValueKind};
use crate::psrp::{decode_message_summary, Defragmenter, Destination, Message, MessageType};

fn corpus(path: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/");
    std::fs::read_to_string(format!("{dir}{path}")).unwrap()
}

#[test]
fn ironposh_receive_response_runspace_opened() {
    let env = parse_envelope(&corpus("ironposh/tests--receive_response.xml")).unwrap();
    assert_eq!(env.payloads.len(), 1);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&env.payloads[0])
        .unwrap();
    // Object 3, fragment 0, S|E, 103 bytes.
    assert_eq!(
        &bytes[..21],
        &[0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x67]
    );
    let mut messages = Defragmenter::new().push_bytes(&bytes).unwrap();
    assert_eq!(messages.len(), 1);
    let msg = Message::from_vec(messages.pop().unwrap()).unwrap();
    assert_eq!(msg.destination, Destination::Client);
    assert_eq!(msg.message_type, MessageType::RunspacePoolState);
    // Header bytes 6c 0c f5 5b ff 35 47 f2 ... read in .NET order.
    assert_eq!(
        msg.rpid,
        Uuid::parse_str("5bf50c6c-35ff-f247-907b-e76252726109").unwrap()
    );
    assert_eq!(msg.pipeline_id(), None);
    assert!(msg.data.starts_with(&[0xEF, 0xBB, 0xBF]));
    let xml = msg.data_xml().unwrap();
    assert_eq!(
        xml,
        r#"<Obj RefId="0"><MS><I32 N="RunspaceState">2</I32></MS></Obj>"#
    );
    let v = parse_clixml(xml).unwrap();
    assert_eq!(
        v[0].as_object()
            .unwrap()
            .member("RunspaceState")
            .unwrap()
            .kind,
        ValueKind::I32(2)
    );
    let s = decode_message_summary(&msg);
    assert_eq!(
        (s.message_type, s.destination),
        ("RUNSPACEPOOL_STATE", "client")
    );
}

#[test]
fn ironposh_error_record() {
    let v = parse_clixml(&corpus("ironposh/tests--error_record.xml")).unwrap();
    assert_eq!(v.len(), 1);
    let rec = v[0].as_object().unwrap();
    assert_eq!(
        rec.type_name(),
        Some("System.Management.Automation.ErrorRecord")
    );
    assert!(rec
        .to_string
        .as_deref()
        .unwrap()
        .starts_with("The term 'ed' is not recognized"));
    assert_eq!(
        rec.member("FullyQualifiedErrorId").unwrap().as_str(),
        Some("CommandNotFoundException")
    );
    assert_eq!(
        rec.member("ErrorCategory_Category").unwrap().kind,
        ValueKind::I32(13)
    );
    assert_eq!(
        rec.member("ErrorCategory_Message").unwrap().as_str(),
        Some("ObjectNotFound: (ed:String) [], CommandNotFoundException")
    );
    let exc = rec.member("Exception").unwrap().as_object().unwrap();
    assert_eq!(
        exc.type_name(),
        Some("System.Management.Automation.CommandNotFoundException")
    );
    // `_x000D__x000A_` in the stack trace decodes to CR LF.
    assert!(exc
        .to_string
        .as_deref()
        .unwrap()
        .contains("try again.\r\n   at System.Management"));
}

#[test]
fn ironposh_command_completion_with_clixml_namespace() {
    let v = parse_clixml(&corpus("ironposh/tests--command_completion_get_ser.xml")).unwrap();
    let obj = v[0].as_object().unwrap();
    assert_eq!(
        obj.type_name(),
        Some("System.Management.Automation.CommandCompletion")
    );
    assert_eq!(
        obj.member("CurrentMatchIndex").unwrap().kind,
        ValueKind::I32(-1)
    );
    assert_eq!(
        obj.member("ReplacementLength").unwrap().kind,
        ValueKind::I32(7)
    );
    let ObjectContent::List(_, matches) = &obj
        .member("CompletionMatches")
        .unwrap()
        .as_object()
        .unwrap()
        .content
    else {
        panic!("list")
    };
    let texts: Vec<&str> = matches
        .iter()
        .map(|m| {
            m.as_object()
                .unwrap()
                .member("CompletionText")
                .unwrap()
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Get-ServerBpaResult",
            "Get-ServerClusterName",
            "Get-ServerEvent",
            "Get-ServerFeature",
            "Get-ServerInventory",
            "Get-ServerService",
            "Get-Service"
        ]
    );
    let tip = matches[0]
        .as_object()
        .unwrap()
        .member("ToolTip")
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(tip, "\r\nGet-ServerBpaResult \r\n");
}

/// The WinRb template with its ERB placeholders filled in.
#[test]
fn winrb_error_record_template() {
    let mut text = corpus("winrb-stubs/error_record.xml.erb");
    for (placeholder, value) in [
        ("<%= error_message %>", "boom &amp; more"),
        (
            "<%= category_message %>",
            "NotSpecified: (:) [], WriteErrorException",
        ),
        (
            "<%= error_id %>",
            "Microsoft.PowerShell.Commands.WriteErrorException",
        ),
        ("<%= script_root %>", "C:\\scripts"),
        ("<%= stack_trace %>", "at line 1"),
    ] {
        text = text.replace(placeholder, value);
    }
    assert!(!text.contains("<%"));
    let v = parse_clixml(&text).unwrap();
    let rec = v[0].as_object().unwrap();
    assert_eq!(
        rec.type_name(),
        Some("System.Management.Automation.ErrorRecord")
    );
    assert_eq!(rec.to_string.as_deref(), Some("boom & more"));
    assert_eq!(
        rec.member("FullyQualifiedErrorId").unwrap().as_str(),
        Some("Microsoft.PowerShell.Commands.WriteErrorException")
    );
}
