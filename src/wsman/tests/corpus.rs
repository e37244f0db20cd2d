//! Every envelope of the real corpus parses; cross-message invariants of real sessions hold.

use std::path::{Path, PathBuf};

use crate::wsman::{parse, Action, Body, Envelope, Limits};

/// The shared corpus (`../shared/corpus` from the crate root).
pub(super) fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"))
}

#[derive(Debug, serde::Deserialize)]
struct Session {
    messages: Vec<Exchange>,
}

/// One recorded exchange; other keys of the pypsrp format are ignored.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Exchange {
    pub(super) request: Option<String>,
    pub(super) response: Option<String>,
}

/// All recorded pypsrp sessions as (file name, exchanges), `_template.yml` excluded.
pub(super) fn pypsrp_sessions() -> Vec<(String, Vec<Exchange>)> {
    let dir = corpus_dir().join("pypsrp-responses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "_template.yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let session: Session =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (file_name(&p), session.messages)
        })
        .collect()
}

/// Exchange `index` of pypsrp session `file`.
pub(super) fn exchange(file: &str, index: usize) -> (Envelope, Option<Envelope>) {
    let path = corpus_dir().join("pypsrp-responses").join(file);
    let session: Session = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ex = &session.messages[index];
    let req = parse(
        ex.request.as_deref().unwrap().as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    let resp = ex
        .response
        .as_deref()
        .map(|r| parse(r.as_bytes(), &Limits::default()).unwrap());
    (req, resp)
}

/// A corpus file's bytes.
pub(super) fn read(rel: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_pypsrp_envelope_parses_with_known_request_actions() {
    let mut requests = 0;
    let mut responses = 0;
    for (file, exchanges) in pypsrp_sessions() {
        for (i, ex) in exchanges.iter().enumerate() {
            let req_xml = ex.request.as_deref().unwrap();
            let req = parse(req_xml.as_bytes(), &Limits::default())
                .unwrap_or_else(|e| panic!("{file}[{i}] request: {e}"));
            assert!(
                !matches!(req.header.action, Action::Other(_)),
                "{file}[{i}] request action unknown: {:?}",
                req.header.action
            );
            assert!(req.header.message_id.is_some(), "{file}[{i}]");
            assert!(
                req.header.to.is_some() && req.spans.to.is_some(),
                "{file}[{i}]"
            );
            requests += 1;
            let Some(resp_xml) = ex.response.as_deref() else {
                continue;
            };
            let resp = parse(resp_xml.as_bytes(), &Limits::default())
                .unwrap_or_else(|e| panic!("{file}[{i}] response: {e}"));
            responses += 1;
            // Windows always answers with RelatesTo = the request's MessageID.
            assert_eq!(
                resp.header.relates_to, req.header.message_id,
                "{file}[{i}] RelatesTo"
            );
            // And with the matching response action, or a fault.
            if let Some(expected) = req.header.action.response() {
                assert!(
                    resp.header.action == expected || resp.header.action.is_fault(),
                    "{file}[{i}]: {:?} answered by {:?}",
                    req.header.action,
                    resp.header.action
                );
            }
            if resp.header.action.is_fault() {
                assert!(matches!(resp.body, Body::Fault(_)), "{file}[{i}]");
            }
        }
    }
    // Counted with a separate XML parser over the same files (PROTOCOL.md corpus notes:
    // 470 requests; one recorded exchange has no response).
    assert_eq!(requests, 470);
    assert_eq!(responses, 469);
}

#[test]
fn command_ids_agree_between_request_and_response() {
    // PSRP clients choose the CommandId; Windows must echo it in CommandResponse.
    let mut checked = 0;
    for (file, exchanges) in pypsrp_sessions() {
        for (i, ex) in exchanges.iter().enumerate() {
            let (Some(req), Some(resp)) = (ex.request.as_deref(), ex.response.as_deref()) else {
                continue;
            };
            let req = parse(req.as_bytes(), &Limits::default()).unwrap();
            let resp = parse(resp.as_bytes(), &Limits::default()).unwrap();
            if let (Body::CommandLine(cl), Body::CommandResponse { command_id }) =
                (&req.body, &resp.body)
            {
                if let Some(chosen) = &cl.command_id {
                    assert_eq!(chosen, command_id, "{file}[{i}]");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} PSRP commands checked");
}

#[test]
fn every_shell_request_names_its_shell() {
    // Every request after Create addresses a shell by the ShellId the CreateResponse gave.
    for (file, exchanges) in pypsrp_sessions() {
        let mut known: Vec<String> = Vec::new();
        for (i, ex) in exchanges.iter().enumerate() {
            let req = parse(
                ex.request.as_deref().unwrap().as_bytes(),
                &Limits::default(),
            )
            .unwrap();
            let resp = ex
                .response
                .as_deref()
                .map(|r| parse(r.as_bytes(), &Limits::default()).unwrap());
            if matches!(
                req.header.action,
                Action::Command | Action::Send | Action::Receive | Action::Signal
            ) {
                let id = req
                    .shell_id()
                    .unwrap_or_else(|| panic!("{file}[{i}] no ShellId"));
                // Sessions that reconnect to shells opened elsewhere are exempt.
                if !known.is_empty() && !file.contains("disconnect") && !file.contains("is_alive") {
                    assert!(
                        known.iter().any(|k| k == id),
                        "{file}[{i}] unknown shell {id}"
                    );
                }
            }
            if let Some(Envelope {
                body: Body::ResourceCreated { .. },
                ..
            }) = &resp
            {
                let resp = resp.as_ref().unwrap();
                known.push(resp.shell_id().unwrap().to_owned());
            }
        }
    }
}

#[test]
fn ironposh_and_winrb_envelopes_parse() {
    let envelopes = [
        "ironposh/tests--error_response.xml",
        "ironposh/tests--receive_response.xml",
        "ironposh/tests--resource_created.xml",
        "ironposh/malformed/extra_unknown_elements.xml",
        "winrb-stubs/get_omi_config_response.xml",
        "winrb-stubs/open_shell_omi.xml",
        "winrb-stubs/open_shell_v1.xml",
        "winrb-stubs/open_shell_v2.xml",
        "winrb-stubs/soap_fault_omi.xml",
        "winrb-stubs/soap_fault_v1.xml",
        "winrb-stubs/soap_fault_v2.xml",
        "winrb-stubs/wmi_error_v2.xml",
    ];
    for rel in envelopes {
        let env = parse(&read(rel), &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(env.header.message_id.is_some(), "{rel}");
    }
    // Every non-template stub is listed above, so a new stub cannot be skipped silently.
    let stubs = std::fs::read_dir(corpus_dir().join("winrb-stubs"))
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .filter(|n| n.ends_with(".xml"))
        .count();
    assert_eq!(stubs, 8);
}

#[test]
fn clixml_files_are_not_envelopes() {
    // Two ironposh files are bare CLIXML objects, not SOAP: the codec says so.
    for rel in [
        "ironposh/tests--error_record.xml",
        "ironposh/tests--command_completion_get_ser.xml",
    ] {
        assert_eq!(
            parse(&read(rel), &Limits::default()),
            Err(crate::wsman::WsmanError::NotAnEnvelope),
            "{rel}"
        );
    }
}
