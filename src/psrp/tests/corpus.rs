//! Test helper: reads the pypsrp corpus (`../shared/corpus/pypsrp-responses/*.yml`) and takes
//! the PSRP payloads out of each SOAP envelope by namespace with quick-xml, independently of
//! `wsman` (which `psrp` must not use).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helper"
)]

use std::path::PathBuf;

use base64::Engine as _;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

const NS_WSA: &[u8] = b"http://schemas.xmlsoap.org/ws/2004/08/addressing";
const NS_WSMAN: &[u8] = b"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
const NS_RSP: &[u8] = b"http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const NS_PS: &[u8] = b"http://schemas.microsoft.com/powershell";
/// Resource URIs of PSRP shells start with this (WinRS `cmd` shells carry no PSRP).
pub(super) const PS_RESOURCE: &str = "http://schemas.microsoft.com/powershell";

pub(super) fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/pypsrp-responses"
    ))
}

/// The `test_*.yml` files, sorted.
pub(super) fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory ../shared/corpus/pypsrp-responses")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("test_") && name.ends_with(".yml")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "corpus looks incomplete: {} files",
        files.len()
    );
    files
}

/// What a test needs from one SOAP envelope.
#[derive(Debug, Default)]
pub(super) struct Envelope {
    pub action: String,
    pub resource_uri: String,
    pub shell_id: Option<String>,
    /// Text of creationXml, connectXml, connectResponseXml, rsp:Arguments and rsp:Stream,
    /// in document order (base64 for PSRP shells; WinRS arguments are plain text).
    pub payloads: Vec<String>,
}

/// One request and its response.
#[derive(Debug)]
pub(super) struct Exchange {
    pub request: Envelope,
    pub response: Option<Envelope>,
}

#[derive(serde::Deserialize)]
struct File {
    messages: Option<Vec<Pair>>,
}

#[derive(serde::Deserialize)]
struct Pair {
    request: Option<String>,
    response: Option<String>,
}

pub(super) fn load(path: &std::path::Path) -> Vec<Exchange> {
    let text = std::fs::read_to_string(path).unwrap();
    let file: File = serde_norway::from_str(&text).unwrap();
    file.messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| {
            let request = parse_envelope(pair.request.as_deref()?)?;
            let response = pair.response.as_deref().and_then(parse_envelope);
            Some(Exchange { request, response })
        })
        .collect()
}

pub(super) fn parse_envelope(xml: &str) -> Option<Envelope> {
    if !xml.trim_start().starts_with('<') {
        return None;
    }
    let mut reader = NsReader::from_str(xml);
    let mut env = Envelope::default();
    // What the text of the current element is for.
    #[derive(PartialEq)]
    enum Want {
        Nothing,
        Action,
        ResourceUri,
        ShellId,
        Payload,
    }
    let mut want = Want::Nothing;
    let mut text = String::new();
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .expect("corpus envelope is well-formed");
        let ns: Vec<u8> = match ns {
            ResolveResult::Bound(n) => n.as_ref().to_vec(),
            _ => Vec::new(),
        };
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name().as_ref().to_vec();
                let attr = |name: &[u8]| {
                    e.attributes()
                        .filter_map(Result::ok)
                        .find(|a| a.key.local_name().as_ref() == name)
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                text.clear();
                want = match (ns.as_slice(), local.as_slice()) {
                    (NS_WSA, b"Action") => Want::Action,
                    (NS_WSMAN, b"ResourceURI") => Want::ResourceUri,
                    (NS_WSMAN, b"Selector") if attr(b"Name").as_deref() == Some("ShellId") => {
                        Want::ShellId
                    }
                    (NS_RSP, b"Shell") => {
                        if let Some(id) = attr(b"ShellId") {
                            env.shell_id = Some(id);
                        }
                        Want::Nothing
                    }
                    (NS_RSP, b"Arguments" | b"Stream")
                    | (NS_PS, b"creationXml" | b"connectXml" | b"connectResponseXml") => {
                        Want::Payload
                    }
                    _ => Want::Nothing,
                };
            }
            Event::Text(t) => text.push_str(&t.xml_content().unwrap()),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                if let Some(c) = r.resolve_char_ref().unwrap() {
                    text.push(c);
                } else {
                    text.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap());
                }
            }
            Event::End(_) => {
                let t = text.trim();
                match want {
                    Want::Action => env.action = t.to_owned(),
                    Want::ResourceUri => env.resource_uri = t.to_owned(),
                    Want::ShellId => env.shell_id = Some(t.to_owned()),
                    Want::Payload if !t.is_empty() => {
                        env.payloads.push(t.to_owned());
                    }
                    _ => {}
                }
                want = Want::Nothing;
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Some(env)
}

/// Direction of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Direction {
    ClientToServer,
    ServerToClient,
}

/// Every PSRP payload of a file in arrival order, with the shell it belongs to (a
/// response belongs to its request's shell).
pub(super) fn psrp_payloads(exchanges: &[Exchange]) -> Vec<(String, Direction, Vec<u8>)> {
    let decode = |t: &String| base64::engine::general_purpose::STANDARD.decode(t).unwrap();
    let mut out = Vec::new();
    for ex in exchanges {
        if !ex.request.resource_uri.starts_with(PS_RESOURCE) {
            continue;
        }
        let shell = ex.request.shell_id.clone().unwrap_or_default();
        for p in &ex.request.payloads {
            out.push((shell.clone(), Direction::ClientToServer, decode(p)));
        }
        if let Some(resp) = &ex.response {
            for p in &resp.payloads {
                out.push((shell.clone(), Direction::ServerToClient, decode(p)));
            }
        }
    }
    out
}
