//! Values pinned by reading the corpus XML by hand (and decoding base64 separately).

use super::corpus::{exchange, read};
use crate::wsman::ns;
use crate::wsman::{
    parse, Action, Body, CommandStateKind, FaultSubcode, Limits, QualifiedName, SignalCode,
};

const SEND_CMD: &str = "B0973E54-434E-4D99-B4BE-ADE584CE3BFB";

#[test]
fn winrs_send_command_line_and_headers() {
    let (req, resp) = exchange("test_winrs_send.yml", 1);
    let h = &req.header;
    assert_eq!(h.action, Action::Command);
    assert_eq!(h.to.as_deref(), Some("http://192.168.56.11:5985/wsman"));
    assert_eq!(
        h.message_id.as_deref(),
        Some("uuid:0B9A3117-A985-4F4B-AE47-BB4A09EBBED9")
    );
    assert_eq!(h.resource_uri.as_deref(), Some(ns::RESOURCE_CMD));
    assert_eq!(h.max_envelope_size, Some(153_600));
    assert_eq!(h.operation_timeout.as_deref(), Some("PT20S"));
    assert_eq!(h.locale.as_deref(), Some("en-US"));
    assert_eq!(h.data_locale.as_deref(), Some("en-US"));
    assert_eq!(
        h.session_id.as_deref(),
        Some("uuid:E3EDC93B-6629-44A6-8F70-2D94D134ACD3")
    );
    assert_eq!(h.reply_to.as_deref(), Some(ns::ANONYMOUS));
    assert_eq!(req.shell_id(), Some("0D6FCA9D-2D40-44C3-B691-E665BE7AA687"));
    assert_eq!(req.option("WINRS_SKIP_CMD_SHELL"), Some("False"));
    assert_eq!(req.option("winrs_skip_cmd_shell"), Some("False"));
    let Body::CommandLine(cl) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(cl.command, "powershell.exe");
    assert_eq!(cl.arguments, vec!["-".to_owned()]);
    assert_eq!(cl.command_id, None);
    let resp = resp.unwrap();
    assert_eq!(
        resp.body,
        Body::CommandResponse {
            command_id: SEND_CMD.to_owned()
        }
    );
    assert_eq!(resp.header.to.as_deref(), Some(ns::ANONYMOUS));
}

#[test]
fn winrs_send_stdin_bytes() {
    let (req, _) = exchange("test_winrs_send.yml", 2);
    let Body::Send(streams) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].name, "stdin");
    assert_eq!(streams[0].command_id.as_deref(), Some(SEND_CMD));
    assert!(!streams[0].end, "End=\"False\"");
    assert_eq!(streams[0].data, b"Write-Host \"output 1\";");

    let (req, _) = exchange("test_winrs_send.yml", 3);
    let Body::Send(streams) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert!(streams[0].end, "End=\"True\"");
    assert_eq!(streams[0].data, b"Write-Host \"output 2\";");
}

#[test]
fn winrs_send_receive_response_streams_and_exit_code() {
    let (req, resp) = exchange("test_winrs_send.yml", 4);
    let Body::Receive(desired) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(desired[0].streams, "stdout stderr");
    assert_eq!(desired[0].command_id.as_deref(), Some(SEND_CMD));
    let resp = resp.unwrap();
    let Body::ReceiveResponse {
        streams,
        command_state,
    } = &resp.body
    else {
        panic!("{:?}", resp.body)
    };
    let got: Vec<(&str, &[u8], bool)> = streams
        .iter()
        .map(|s| (s.name.as_str(), s.data.as_slice(), s.end))
        .collect();
    assert_eq!(
        got,
        vec![
            ("stdout", &b"output 1"[..], false),
            ("stdout", &b"\n"[..], false),
            ("stdout", &b"output 2\n"[..], false),
            ("stdout", &b""[..], true),
            ("stderr", &b""[..], true),
        ]
    );
    let state = command_state.as_ref().unwrap();
    assert_eq!(state.state, CommandStateKind::Done);
    assert_eq!(state.exit_code, Some(0));
    assert_eq!(state.command_id.as_deref(), Some(SEND_CMD));
}

#[test]
fn winrs_signal_codes() {
    let (req, _) = exchange("test_winrs_send.yml", 5);
    assert_eq!(
        req.body,
        Body::Signal {
            command_id: Some(SEND_CMD.to_owned()),
            code: SignalCode::CtrlC
        }
    );
    // pypsrp's capitalised `Terminate`, accepted by Windows.
    let (req, _) = exchange("test_psrp_multiple_invocations.yml", 5);
    assert!(matches!(
        req.body,
        Body::Signal {
            code: SignalCode::Terminate,
            ..
        }
    ));
}

#[test]
fn stderr_exit_code_and_escaped_arguments() {
    let (req, _) = exchange("test_winrs_stderr_rc.yml", 1);
    let Body::CommandLine(cl) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(cl.command, "cmd.exe");
    // `&amp;&amp;` and `&gt;` in the XML.
    assert_eq!(
        cl.arguments,
        vec!["/c echo out && echo err>&2 && exit 1".to_owned()]
    );
    let (_, resp) = exchange("test_winrs_stderr_rc.yml", 2);
    let Body::ReceiveResponse {
        streams,
        command_state,
    } = resp.unwrap().body
    else {
        panic!()
    };
    assert_eq!(command_state.unwrap().exit_code, Some(1));
    assert_eq!(streams[0].data, b"out \r\n");
    assert_eq!(streams[1].name, "stderr");
    assert_eq!(streams[1].data, b"err \r\n");
}

#[test]
fn environment_variables_are_unescaped_verbatim() {
    let (req, _) = exchange("test_winrs_environment.yml", 0);
    let Body::Shell(shell) = &req.body else {
        panic!("{:?}", req.body)
    };
    let odd = "_-(){}[]<>*+-/\\?\"!@#$^&|;:i,.`~0".to_owned();
    assert_eq!(
        shell.environment,
        vec![
            ("env1".to_owned(), "var1".to_owned()),
            ("1234".to_owned(), "5678".to_owned()),
            (odd.clone(), odd),
        ]
    );
    assert_eq!(shell.input_streams.as_deref(), Some("stdin"));
    assert_eq!(shell.output_streams.as_deref(), Some("stdout stderr"));
}

#[test]
fn shell_options_from_extra_opts() {
    let (req, _) = exchange("test_winrs_extra_opts.yml", 0);
    let Body::Shell(shell) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(shell.working_directory.as_deref(), Some("C:\\Windows"));
    assert_eq!(shell.idle_timeout.as_deref(), Some("PT60S"));
    assert_eq!(shell.name.as_deref(), Some("shell 1"));
}

#[test]
fn timed_out_fault() {
    let (req, resp) = exchange("test_winrs_operation_timeout.yml", 3);
    assert_eq!(req.header.action, Action::Receive);
    let resp = resp.unwrap();
    assert_eq!(resp.header.action, Action::Fault);
    let Body::Fault(f) = &resp.body else {
        panic!("{:?}", resp.body)
    };
    assert_eq!(f.code, QualifiedName::new(ns::SOAP, "Receiver"));
    assert_eq!(f.subcode, Some(QualifiedName::new(ns::WSMAN, "TimedOut")));
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::TimedOut));
    assert!(f.is_timed_out());
    assert_eq!(f.wsman_code, Some(2_150_858_793));
    assert_eq!(f.machine.as_deref(), Some("192.168.56.11"));
    assert_eq!(
        f.message.as_deref(),
        Some("The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
    );
    assert_eq!(f.reason, f.message);
    assert_eq!(f.fault_detail, None);
}

#[test]
fn invalid_selectors_fault_with_nested_provider_fault() {
    let (_, resp) = exchange("test_psrp_is_alive_invalid_selectors.yml", 4);
    let Body::Fault(f) = resp.unwrap().body else {
        panic!()
    };
    assert_eq!(f.code, QualifiedName::new(ns::SOAP, "Sender"));
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::InvalidSelectors));
    assert_eq!(f.wsman_code, Some(2_150_858_843));
    assert_eq!(
        f.fault_detail.as_deref(),
        Some(ns::fault_detail::UNEXPECTED_SELECTORS)
    );
    assert_eq!(
        f.message.as_deref(),
        Some("The WS-Management service cannot process the request because the request contained invalid selectors for the resource.")
    );
}

#[test]
fn provider_fault_text_and_addressing_fault() {
    let (_, resp) = exchange("test_winrs_fail_poll_process.yml", 1);
    let Body::Fault(f) = resp.unwrap().body else {
        panic!()
    };
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::InvalidParameter));
    assert_eq!(f.wsman_code, Some(87));
    assert_eq!(f.message.as_deref(), Some("The parameter is incorrect."));

    let (_, resp) = exchange("test_psrp_is_alive_other_wsman_error.yml", 3);
    let resp = resp.unwrap();
    assert_eq!(
        resp.header.action,
        Action::Other(ns::action::ADDRESSING_FAULT.to_owned())
    );
    assert!(resp.header.action.is_fault());
    let Body::Fault(f) = resp.body else { panic!() };
    assert_eq!(
        f.subcode_kind(),
        Some(FaultSubcode::InvalidMessageInformationHeader)
    );
    assert_eq!(f.wsman_code, Some(2_150_858_767));
}

#[test]
fn psrp_create_creation_xml_and_response() {
    let (req, resp) = exchange("test_psrp_disconnected_commands.yml", 0);
    assert_eq!(
        req.header.resource_uri.as_deref(),
        Some("http://schemas.microsoft.com/powershell/Microsoft.PowerShell")
    );
    let opt = req.header.option("protocolversion").unwrap();
    assert_eq!(opt.value, "2.3");
    assert_eq!(opt.must_comply, Some(true));
    let Body::Shell(shell) = &req.body else {
        panic!("{:?}", req.body)
    };
    assert_eq!(
        shell.shell_id.as_deref(),
        Some("B2E1C91B-A3AA-41B4-B346-405E6A90005B")
    );
    assert_eq!(shell.input_streams.as_deref(), Some("stdin pr"));
    let creation = shell.creation_xml.as_ref().unwrap();
    // 1344 base64 characters decode to 1006 bytes; the first PSRP fragment header is
    // ObjectId 1, FragmentId 0.
    assert_eq!(creation.len(), 1006);
    assert_eq!(
        &creation[..16],
        &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );

    let resp = resp.unwrap();
    assert_eq!(
        resp.shell_id(),
        Some("B2E1C91B-A3AA-41B4-B346-405E6A90005B")
    );
    let Body::ResourceCreated {
        address,
        selectors,
        shell,
        ..
    } = &resp.body
    else {
        panic!("{:?}", resp.body)
    };
    assert_eq!(address.as_deref(), Some("https://127.0.0.1:55986/wsman"));
    assert_eq!(selectors.len(), 1);
    let shell = shell.as_ref().unwrap();
    assert_eq!(shell.compression_mode.as_deref(), Some("NoCompression"));
    assert_eq!(shell.owner.as_deref(), Some("WIN-NNMU24VVKJ0\\vagrant"));
    assert_eq!(shell.client_ip.as_deref(), Some("10.0.2.2"));
    assert_eq!(shell.idle_timeout.as_deref(), Some("PT7200.000S"));
}

#[test]
fn psrp_connect_payloads() {
    let (req, resp) = exchange("test_psrp_disconnected_commands.yml", 13);
    assert_eq!(req.header.action, Action::Connect);
    let Body::Connect {
        connect_xml: Some(x),
    } = &req.body
    else {
        panic!("{:?}", req.body)
    };
    assert_eq!(x.len(), 286);
    let Body::ConnectResponse {
        connect_response_xml: Some(x),
    } = resp.unwrap().body
    else {
        panic!()
    };
    assert_eq!(x.len(), 375);
}

#[test]
fn ironposh_pretty_printed_create_response_is_trimmed() {
    let env = parse(
        &read("ironposh/tests--resource_created.xml"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(env.header.action, Action::CreateResponse);
    assert_eq!(
        env.header.relates_to.as_deref(),
        Some("uuid:622d032a-f9b3-498d-b447-1359c3bb14f3")
    );
    assert_eq!(env.shell_id(), Some("07936B27-7752-4325-8B0D-E7A1E9448320"));
    let Body::ResourceCreated { address, shell, .. } = &env.body else {
        panic!("{:?}", env.body)
    };
    assert_eq!(
        address.as_deref(),
        Some("http://10.10.0.3:5985/wsman?PSVersion=7.4.10")
    );
    let shell = shell.as_ref().unwrap();
    // A PowerShell 7 client asked for compression and Windows agreed (PROTOCOL.md §9).
    assert_eq!(shell.compression_mode.as_deref(), Some("XpressCompression"));
    assert_eq!(shell.name.as_deref(), Some("Runspace1"));
    assert_eq!(shell.owner.as_deref(), Some("Administrator"));
}

#[test]
fn ironposh_receive_response_payload() {
    let env = parse(
        &read("ironposh/tests--receive_response.xml"),
        &Limits::default(),
    )
    .unwrap();
    let Body::ReceiveResponse { streams, .. } = &env.body else {
        panic!("{:?}", env.body)
    };
    assert_eq!(streams.len(), 1);
    // RUNSPACEPOOL_STATE = 2 (Opened) as CLIXML after a UTF-8 BOM.
    assert!(streams[0].data.ends_with(
        b"\xEF\xBB\xBF<Obj RefId=\"0\"><MS><I32 N=\"RunspaceState\">2</I32></MS></Obj>"
    ));
}

#[test]
fn ironposh_schema_validation_fault() {
    let env = parse(
        &read("ironposh/tests--error_response.xml"),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        env.header.action,
        Action::Fault,
        "action text is padded with newlines"
    );
    let Body::Fault(f) = &env.body else { panic!() };
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::SchemaValidationError));
    assert_eq!(f.wsman_code, Some(2_150_858_817));
    assert_eq!(f.machine.as_deref(), Some("IT-HELP-DC.ad.it-help.ninja"));
}

#[test]
fn winrb_faults() {
    let env = parse(&read("winrb-stubs/soap_fault_v2.xml"), &Limits::default()).unwrap();
    assert!(env.header.action.is_fault());
    let Body::Fault(f) = &env.body else { panic!() };
    assert_eq!(
        f.subcode,
        Some(QualifiedName::new(ns::ENUMERATION, "CannotProcessFilter"))
    );
    assert_eq!(f.subcode_kind(), None);
    assert_eq!(f.wsman_code, Some(2_150_858_778));
    assert_eq!(f.machine.as_deref(), Some("localhost"));
    // The WMI __ExtendedStatus detail is not message text.
    assert_eq!(
        f.message.as_deref(),
        Some("The specified class does not exist in the given namespace.")
    );

    let env = parse(
        &read("winrb-stubs/get_omi_config_response.xml"),
        &Limits::default(),
    )
    .unwrap();
    let Body::Fault(f) = &env.body else { panic!() };
    assert_eq!(f.code, QualifiedName::new(ns::SOAP, "Receiver"));
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::InternalError));
    assert_eq!(
        f.reason.as_deref(),
        Some("get-instance: instance name parameter is missing")
    );
    assert_eq!(f.wsman_code, None);

    let env = parse(&read("winrb-stubs/wmi_error_v2.xml"), &Limits::default()).unwrap();
    let Body::Fault(f) = &env.body else { panic!() };
    assert_eq!(f.subcode_kind(), Some(FaultSubcode::QuotaLimit));
}

#[test]
fn winrb_open_shell_v1_selector() {
    let env = parse(&read("winrb-stubs/open_shell_v1.xml"), &Limits::default()).unwrap();
    assert_eq!(
        env.shell_id(),
        Some("uuid:739990FF-1492-4CDD-80BB-6E07ADB06D85")
    );
    let env = parse(&read("winrb-stubs/open_shell_omi.xml"), &Limits::default()).unwrap();
    assert_eq!(env.shell_id(), Some("74142DC5-E14D-4FCC-86ED-63DA3EE8407E"));
}
