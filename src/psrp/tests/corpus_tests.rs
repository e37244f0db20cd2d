//! Decoding the whole pypsrp corpus (real Windows responses, real pypsrp requests), checked
//! against psrpcore: `tests/fixtures/psrp/expected.json` was produced by
//! `tests/fixtures/psrp/dump_expected.py`, which reads the same YAML with ElementTree and
//! decodes it with psrpcore 0.3.1 only (no hopgate code).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value as Json};

use super::corpus::{corpus_files, load, psrp_payloads, Direction};
use crate::psrp::clixml::parse_clixml;
use crate::psrp::{
    extract_create_pipeline, extract_get_command_metadata, Defragmenter, Destination, Message,
    MessageType,
};

fn expected() -> Json {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/psrp/expected.json"
    ));
    serde_json::from_str(text).unwrap()
}

/// Every message of a corpus file, per direction, in completion order.
pub(super) fn decode_file(path: &std::path::Path) -> BTreeMap<Direction, Vec<Message>> {
    let exchanges = load(path);
    let mut defrag: HashMap<(String, Direction), Defragmenter> = HashMap::new();
    let mut out: BTreeMap<Direction, Vec<Message>> = BTreeMap::new();
    for (shell, dir, payload) in psrp_payloads(&exchanges) {
        let d = defrag.entry((shell, dir)).or_default();
        let messages = d
            .push_bytes(&payload)
            .unwrap_or_else(|e| panic!("{}: {dir:?}: {e}", path.display()));
        for m in messages {
            let msg = Message::from_vec(m).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.entry(dir).or_default().push(msg);
        }
    }
    for ((shell, dir), d) in &defrag {
        assert!(
            d.is_idle(),
            "{}: {shell} {dir:?} left a partial message",
            path.display()
        );
    }
    out
}

fn dir_key(dir: Direction) -> &'static str {
    match dir {
        Direction::ClientToServer => "client_to_server",
        Direction::ServerToClient => "server_to_client",
    }
}

#[test]
fn every_corpus_message_defragments_parses_and_matches_psrpcore() {
    let expected = expected();
    let mut total = 0;
    let mut clixml_values = 0;
    let mut with_bom = 0;
    for path in corpus_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let decoded = decode_file(&path);
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let ours = decoded.get(&dir).map(Vec::as_slice).unwrap_or_default();
            let theirs = expected[&file][dir_key(dir)].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{file} {dir:?}: message count");
            for (i, (msg, want)) in ours.iter().zip(theirs).enumerate() {
                let ctx = format!("{file} {dir:?} message {i}");
                assert_eq!(
                    u64::from(msg.message_type.to_u32()),
                    want["type_value"].as_u64().unwrap(),
                    "{ctx}: type"
                );
                assert!(
                    !matches!(msg.message_type, MessageType::Unknown(_)),
                    "{ctx}"
                );
                let want_dest = match dir {
                    Direction::ClientToServer => Destination::Server,
                    Direction::ServerToClient => Destination::Client,
                };
                assert_eq!(msg.destination, want_dest, "{ctx}: destination");
                if dir == Direction::ServerToClient && msg.data.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    with_bom += 1;
                }
                let xml = msg.data_xml().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(
                    xml.len() as u64,
                    want["data_len"].as_u64().unwrap(),
                    "{ctx}: data length"
                );
                let values = parse_clixml(xml).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(
                    values.len(),
                    usize::from(!xml.trim().is_empty()),
                    "{ctx}: one value"
                );
                clixml_values += values.len();
                total += 1;
            }
        }
    }
    // Numbers from expected.json (psrpcore): 199 client and 416 server messages.
    assert_eq!(total, 615, "messages decoded");
    assert!(clixml_values > 600);
    assert!(with_bom > 400, "server messages carry a BOM ({with_bom})");
}

/// The statements hopgate must report, computed from psrpcore's reading of `Cmds` and
/// `ExtraCmds` (the rule documented in pipeline.rs).
fn expected_statements(pipeline: &Json) -> Json {
    let cmds = &pipeline["cmds"];
    let mut statements: Vec<Json> = match pipeline.get("extra_cmds") {
        Some(Json::Array(extra)) => extra.iter().filter(|s| s != &&json!([])).cloned().collect(),
        _ => Vec::new(),
    };
    if statements.first() != Some(cmds) && cmds != &json!([]) {
        statements.insert(0, cmds.clone());
    }
    json!({ "statements": statements })
}

#[test]
fn every_corpus_pipeline_matches_psrpcore() {
    let expected = expected();
    let mut pipelines = 0;
    let mut metadata = 0;
    for path in corpus_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let decoded = decode_file(&path);
        let ours = decoded
            .get(&Direction::ClientToServer)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let theirs = expected[&file]["client_to_server"].as_array().unwrap();
        for (i, (msg, want)) in ours.iter().zip(theirs).enumerate() {
            let ctx = format!("{file} message {i}");
            if let Some(p) = want.get("pipeline") {
                let got = extract_create_pipeline(msg).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                // psrpcore's dump has the commands; NoInput is checked in pipeline_tests.
                assert_eq!(
                    json!({ "statements": serde_json::to_value(&got.statements).unwrap() }),
                    expected_statements(p),
                    "{ctx}"
                );
                // pypsrp's Client.copy streams the file as pipeline input.
                if file.starts_with("test_client_copy") {
                    assert!(got.client_input, "{ctx}: copy sends pipeline input");
                }
                pipelines += 1;
            } else if let Some(names) = want.get("command_names") {
                let got =
                    extract_get_command_metadata(msg).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(serde_json::to_value(&got).unwrap(), *names, "{ctx}");
                metadata += 1;
            } else {
                assert!(
                    extract_create_pipeline(msg).is_err(),
                    "{ctx}: not a pipeline"
                );
            }
        }
    }
    assert_eq!(pipelines, 40);
    assert_eq!(metadata, 3);
}
