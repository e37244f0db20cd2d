//! A refused pipeline answered as a failed one: the ids, the messages, what comes after.

use super::*;
use crate::psrp::clixml::parse_clixml;
use crate::psrp::{parse_fragments, read_host_message, HostEvent, InvocationState};

const PID: &str = "0B0C0D0E-0000-4000-8000-00000000000A";

fn stop_computer() -> String {
    create_pipeline_xml(&[&[("Stop-Computer", false, &[(Some("Force"), "")])]])
}

/// The PSRP messages in a gateway-made ReceiveResponse.
fn messages(env: &Envelope) -> Vec<Message> {
    let Body::ReceiveResponse { streams, .. } = &env.body else {
        panic!("not a ReceiveResponse: {env:?}");
    };
    streams
        .iter()
        .flat_map(|s| parse_fragments(&s.data).unwrap())
        .map(|f| {
            assert!(f.start && f.end, "one whole fragment per message");
            Message::parse(&f.blob).unwrap()
        })
        .collect()
}

#[test]
fn a_denied_command_gets_its_own_command_response_and_never_reaches_the_host() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let (verdict, facts) = inspect(
        &mut sh,
        &who,
        &psrp_command(PID, &stop_computer(), 1),
        &mut ids,
    );
    let Verdict::Reply(reply) = verdict else {
        panic!("not answered by the gateway: {verdict:?}");
    };
    assert_eq!(reply.header.action, Action::CommandResponse);
    assert_eq!(
        reply.body,
        Body::CommandResponse {
            command_id: PID.into()
        },
        "the client's own CommandId is echoed"
    );
    assert_eq!(
        reply.header.relates_to.as_deref(),
        Some("uuid:00000000-0000-0000-0000-0000000000AA")
    );
    let reasons = denied_reasons(&facts);
    assert_eq!(reasons.len(), 1, "{facts:?}");
    assert!(reasons[0].contains("Stop-Computer"), "{reasons:?}");
    assert_eq!(sh.counts().commands_denied, 1);
    assert!(sh.live_commands().is_empty());
}

#[test]
fn the_receive_gets_pipeline_state_failed_with_an_error_record_then_done() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    inspect(
        &mut sh,
        &who,
        &psrp_command(PID, &stop_computer(), 1),
        &mut ids,
    );
    let (verdict, facts) = inspect(&mut sh, &who, &receive(PID), &mut ids);
    assert!(facts.is_empty());
    let Verdict::Reply(reply) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(reply.header.action, Action::ReceiveResponse);
    let Body::ReceiveResponse {
        streams,
        command_state,
    } = &reply.body
    else {
        panic!()
    };
    assert_eq!(streams[0].name, "stdout");
    assert_eq!(streams[0].command_id.as_deref(), Some(PID));
    let state = command_state.as_ref().unwrap();
    assert_eq!(state.state, wsman::CommandStateKind::Done);
    assert_eq!(state.command_id.as_deref(), Some(PID));

    let msgs = messages(&reply);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.message_type, MessageType::PipelineState);
    assert_eq!(m.destination, Destination::Client);
    assert_eq!((m.rpid, m.pid), (RPID, Uuid::parse_str(PID).unwrap()));
    assert!(
        m.data.starts_with(&[0xEF, 0xBB, 0xBF]),
        "BOM as Windows sends"
    );
    // The same reader that records real hosts' failures reads it.
    let Some(HostEvent::State { state, error, .. }) = read_host_message(m, 1 << 16).unwrap() else {
        panic!("not a state");
    };
    assert_eq!(state, InvocationState::Failed);
    let error = error.unwrap();
    assert!(
        error.starts_with("Access is denied by hopgate: "),
        "{error}"
    );
    assert!(error.contains("Stop-Computer"), "{error}");

    // The record as PowerShell reads it: category, error id, target.
    let values = parse_clixml(m.data_xml().unwrap()).unwrap();
    let top = values[0].as_object().unwrap();
    assert_eq!(
        top.member("PipelineState").unwrap().primitive(),
        &crate::psrp::clixml::ValueKind::I32(5)
    );
    let rec = top
        .member("ExceptionAsErrorRecord")
        .unwrap()
        .as_object()
        .unwrap();
    assert_eq!(
        rec.type_name(),
        Some("System.Management.Automation.ErrorRecord")
    );
    let s = |n: &str| rec.member(n).unwrap().as_str().unwrap().to_string();
    assert_eq!(s("FullyQualifiedErrorId"), DENIED_ERROR_ID);
    assert_eq!(
        rec.member("ErrorCategory_Category").unwrap().primitive(),
        &crate::psrp::clixml::ValueKind::I32(18),
        "PermissionDenied"
    );
    assert!(s("ErrorCategory_Message").starts_with("PermissionDenied: ("));
    assert!(s("TargetObject").starts_with("Stop-Computer"));
    let exc = rec.member("Exception").unwrap().as_object().unwrap();
    assert_eq!(
        exc.member("Message").unwrap().as_str(),
        Some(error.as_str())
    );
}

#[test]
fn later_receives_repeat_done_and_terminate_is_answered_locally() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    inspect(
        &mut sh,
        &who,
        &psrp_command(PID, &stop_computer(), 1),
        &mut ids,
    );
    inspect(&mut sh, &who, &receive(PID), &mut ids);
    let (verdict, _) = inspect(&mut sh, &who, &receive(&PID.to_lowercase()), &mut ids);
    let Verdict::Reply(again) = verdict else {
        panic!("{verdict:?}");
    };
    assert!(messages(&again).is_empty(), "the state is sent once");

    // pypsrp's stop() sends ctrl_c with the pipeline id upper-cased; close() terminates.
    for (code, then_forwarded) in [
        (wsman::SignalCode::PsCtrlC, false),
        (wsman::SignalCode::Terminate, false),
        (wsman::SignalCode::Terminate, true),
    ] {
        let signal = request(
            Action::Signal,
            PS,
            Body::Signal {
                command_id: Some(PID.into()),
                code,
            },
        );
        let (verdict, _) = inspect(&mut sh, &who, &signal, &mut ids);
        match verdict {
            Verdict::Reply(r) => {
                assert!(!then_forwarded);
                assert_eq!(r.body, Body::SignalResponse);
            }
            Verdict::Forward(_) => assert!(then_forwarded, "forgotten after terminate"),
            other => panic!("{other:?}"),
        }
    }
    // After the terminate the id is the host's business again.
    assert!(matches!(
        inspect(&mut sh, &who, &receive(PID), &mut ids).0,
        Verdict::Forward(_)
    ));
}

#[test]
fn input_for_a_denied_pipeline_is_answered_and_dropped() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    inspect(
        &mut sh,
        &who,
        &psrp_command(PID, &stop_computer(), 1),
        &mut ids,
    );
    let input = client_message(
        MessageType::EndOfPipelineInput,
        Uuid::parse_str(PID).unwrap(),
        "",
        2,
        1 << 20,
    )
    .concat();
    let (verdict, facts) = inspect(&mut sh, &who, &send(PID, input), &mut ids);
    assert!(facts.is_empty());
    assert!(matches!(verdict, Verdict::Reply(r) if r.body == Body::SendResponse));
}

#[test]
fn the_pool_lives_on_the_next_pipeline_goes_to_the_host() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    inspect(
        &mut sh,
        &who,
        &psrp_command(PID, &stop_computer(), 1),
        &mut ids,
    );
    inspect(&mut sh, &who, &receive(PID), &mut ids);
    let next = "0B0C0D0E-0000-4000-8000-00000000000B";
    let xml = create_pipeline_xml(&[&[("Get-Service", false, &[(Some("Name"), "WinRM")])]]);
    let (verdict, facts) = inspect(&mut sh, &who, &psrp_command(next, &xml, 2), &mut ids);
    let Verdict::Forward(bodies) = verdict else {
        panic!("{verdict:?}");
    };
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        allowed(&facts),
        [vec!["Get-Service -Name \"WinRM\"".to_string()]]
    );
    // Receives for it go to the host too.
    assert!(matches!(
        inspect(&mut sh, &who, &receive(next), &mut ids).0,
        Verdict::Forward(_)
    ));
    let c = sh.counts();
    assert_eq!((c.commands_allowed, c.commands_denied), (1, 1));
}

#[test]
fn a_pipeline_split_over_command_and_send_is_held_then_failed() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let big = "x".repeat(5000);
    let xml = create_pipeline_xml(&[&[("Stop-Computer", false, &[(Some("ComputerName"), &big)])]]);
    let frags = client_message(
        MessageType::CreatePipeline,
        Uuid::parse_str(PID).unwrap(),
        &xml,
        1,
        2000,
    );
    assert!(frags.len() >= 3);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&frags[0]);
    let cmd = request(
        Action::Command,
        PS,
        Body::CommandLine(CommandLine {
            command_id: Some(PID.into()),
            command: String::new(),
            arguments: vec![b64],
        }),
    );
    let (verdict, facts) = inspect(&mut sh, &who, &cmd, &mut ids);
    assert!(
        facts.is_empty(),
        "nothing judged before the pipeline is whole"
    );
    assert!(matches!(&verdict, Verdict::Reply(r) if r.header.action == Action::CommandResponse));
    let (verdict, _) = inspect(&mut sh, &who, &send(PID, frags[1].clone()), &mut ids);
    assert!(
        matches!(&verdict, Verdict::Reply(r) if r.body == Body::SendResponse),
        "held"
    );
    let rest = frags[2..].concat();
    let (verdict, facts) = inspect(&mut sh, &who, &send(PID, rest), &mut ids);
    assert!(
        matches!(&verdict, Verdict::Reply(r) if r.body == Body::SendResponse),
        "{verdict:?}"
    );
    assert_eq!(denied_reasons(&facts).len(), 1);
    let (verdict, _) = inspect(&mut sh, &who, &receive(PID), &mut ids);
    let Verdict::Reply(r) = verdict else { panic!() };
    assert_eq!(messages(&r)[0].message_type, MessageType::PipelineState);
}

#[test]
fn a_split_allowed_pipeline_is_released_in_order() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let big = "y".repeat(5000);
    let xml = create_pipeline_xml(&[&[("Write-Output", false, &[(Some("InputObject"), &big)])]]);
    let frags = client_message(
        MessageType::CreatePipeline,
        Uuid::parse_str(PID).unwrap(),
        &xml,
        1,
        3000,
    );
    assert_eq!(frags.len(), 2);
    let cmd = request(
        Action::Command,
        PS,
        Body::CommandLine(CommandLine {
            command_id: Some(PID.into()),
            command: String::new(),
            arguments: vec![base64::engine::general_purpose::STANDARD.encode(&frags[0])],
        }),
    );
    let held_wire = Bytes::from(wsman::build(&cmd));
    inspect(&mut sh, &who, &cmd, &mut ids);
    let s = send(PID, frags[1].clone());
    let (verdict, facts) = inspect(&mut sh, &who, &s, &mut ids);
    assert_eq!(allowed(&facts).len(), 1);
    let Verdict::Forward(bodies) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(bodies, [held_wire, Bytes::from(wsman::build(&s))]);
}

#[test]
fn a_client_that_chose_no_command_id_gets_one_of_the_gateways() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let mut cmd = psrp_command(PID, &stop_computer(), 1);
    if let Body::CommandLine(cl) = &mut cmd.body {
        cl.command_id = None;
    }
    let (verdict, _) = inspect(&mut sh, &who, &cmd, &mut ids);
    let Verdict::Reply(r) = verdict else { panic!() };
    let Body::CommandResponse { command_id } = &r.body else {
        panic!()
    };
    assert_eq!(command_id, "00000000-0000-0000-0000-000000000001");
    assert!(matches!(
        inspect(&mut sh, &who, &receive(command_id), &mut ids).0,
        Verdict::Reply(_)
    ));
}

#[test]
fn secrets_in_the_command_are_not_echoed_in_the_error_record() {
    // The demo role does not show New-LocalUser; the record must not carry the password.
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let xml = create_pipeline_xml(&[&[(
        "New-LocalUser",
        false,
        &[(Some("Name"), "bob"), (Some("Password"), "Sup3rS3cret!")],
    )]]);
    inspect(&mut sh, &who, &psrp_command(PID, &xml, 1), &mut ids);
    let (verdict, _) = inspect(&mut sh, &who, &receive(PID), &mut ids);
    let Verdict::Reply(r) = verdict else { panic!() };
    let text = String::from_utf8_lossy(&messages(&r)[0].data).to_string();
    assert!(text.contains("New-LocalUser"), "{text}");
    assert!(!text.contains("Sup3rS3cret!"), "{text}");
}

#[test]
fn smuggled_and_unreadable_pipelines_are_still_faults() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    // CREATE_PIPELINE inside a Send that is not the rest of a held Command.
    let xml = create_pipeline_xml(&[&[("Get-Date", false, &[])]]);
    let data = client_message(MessageType::CreatePipeline, Uuid::nil(), &xml, 5, 1 << 20).concat();
    let (verdict, facts) = inspect(&mut sh, &who, &send(PID, data), &mut ids);
    assert!(
        matches!(verdict, Verdict::Deny(Denial::Access(_))),
        "{verdict:?}"
    );
    assert_eq!(
        denied_reasons(&facts),
        ["a pipeline may only be opened by a Command"]
    );
    // Arguments that are not PSRP fragments.
    let cmd = request(
        Action::Command,
        PS,
        Body::CommandLine(CommandLine {
            command_id: Some(PID.into()),
            command: String::new(),
            arguments: vec!["bm90IGZyYWdtZW50cw==".into()],
        }),
    );
    let (verdict, _) = inspect(&mut sh, &who, &cmd, &mut ids);
    assert!(matches!(verdict, Verdict::Deny(_)), "{verdict:?}");
}

#[test]
fn held_bytes_count_a_pipeline_until_it_is_whole_and_judged() {
    let who = Who::alice();
    let mut sh = open(&who, PS);
    let mut ids = counter();
    let big = "z".repeat(5000);
    let xml = create_pipeline_xml(&[&[("Write-Output", false, &[(Some("InputObject"), &big)])]]);
    let frags = client_message(
        MessageType::CreatePipeline,
        Uuid::parse_str(PID).unwrap(),
        &xml,
        1,
        3000,
    );
    assert_eq!(frags.len(), 2);
    assert_eq!(sh.held_bytes(), 0);
    let cmd = request(
        Action::Command,
        PS,
        Body::CommandLine(CommandLine {
            command_id: Some(PID.into()),
            command: String::new(),
            arguments: vec![base64::engine::general_purpose::STANDARD.encode(&frags[0])],
        }),
    );
    let _ = inspect(&mut sh, &who, &cmd, &mut ids);
    // The first fragment's blob plus the held Command request.
    assert!(sh.held_bytes() > 2000, "{}", sh.held_bytes());
    let _ = inspect(&mut sh, &who, &send(PID, frags[1].clone()), &mut ids);
    assert_eq!(sh.held_bytes(), 0, "released once whole");
}
