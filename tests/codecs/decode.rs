//! `hopgate decode` over the real corpus: every recording decodes without an error line,
//! the totals match what the PSRP corpus tests count, and a few lines are pinned.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: panics are failures"
)]

use std::path::{Path, PathBuf};

use hopgate::decode::{decode_recording, DecodeError, DecodeStats};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn decode_file(path: &Path) -> (DecodeStats, Vec<Value>) {
    let input = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let stats =
        decode_recording(&input, &mut out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (stats, lines)
}

fn recordings() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join("pypsrp-responses"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        // The template holds placeholder text, not envelopes.
        .filter(|p| !p.ends_with("_template.yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_recording_decodes_without_errors() {
    let mut total = DecodeStats::default();
    for path in recordings() {
        let (stats, lines) = decode_file(&path);
        assert_eq!(stats.errors, 0, "{}", path.display());
        assert_eq!(stats.envelopes, lines.len());
        for line in &lines {
            assert!(line.get("error").is_none(), "{}: {line}", path.display());
            assert!(line["action"].is_string());
        }
        total.envelopes += stats.envelopes;
        total.psrp_messages += stats.psrp_messages;
        total.pipelines += stats.pipelines;
    }
    eprintln!("{total:?}");
    assert_eq!(total.envelopes, 939);
    assert_eq!(total.psrp_messages, 615);
    assert_eq!(total.pipelines, 40);
}

/// psrpcore's read-out of the same corpus (tests/fixtures/psrp/expected.json, made by
/// tests/fixtures/psrp/dump_expected.py): per file and direction, the message types in
/// order, the pipelines and the GET_COMMAND_METADATA names. decode must agree line by line.
#[test]
fn psrp_messages_match_psrpcore_per_file_and_direction() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psrp/expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut files = 0;
    for path in recordings() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let Some(want) = expected.get(name) else {
            continue;
        };
        let (_, lines) = decode_file(&path);
        for (dir, key) in [
            ("request", "client_to_server"),
            ("response", "server_to_client"),
        ] {
            let got: Vec<&Value> = lines
                .iter()
                .filter(|l| l["dir"] == dir)
                .filter_map(|l| l.get("psrp").and_then(Value::as_array))
                .flatten()
                .collect();
            let want = want[key].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{name} {dir}");
            for (g, w) in got.iter().zip(want) {
                let ty = u32::try_from(w["type_value"].as_u64().unwrap()).unwrap();
                assert_eq!(
                    g["type"],
                    hopgate::psrp::MessageType::from_u32(ty).name(),
                    "{name} {dir}"
                );
                if let Some(p) = w.get("pipeline") {
                    assert_eq!(g["pipeline"], statements(p), "{name} {dir}");
                }
                if let Some(n) = w.get("command_names") {
                    assert_eq!(&g["command_names"], n, "{name} {dir}");
                }
            }
        }
        files += 1;
    }
    assert!(files >= 40, "{files} files compared");
}

/// psrpcore's `{cmds, extra_cmds}` as statements, by the rule in src/psrp/pipeline.rs: the
/// `ExtraCmds` statements when present, with `Cmds` in front when it differs from the first.
fn statements(p: &Value) -> Value {
    let cmds = p["cmds"].clone();
    match p.get("extra_cmds").and_then(Value::as_array) {
        Some(extra) if !extra.is_empty() => {
            let mut out: Vec<Value> = Vec::new();
            if extra[0] != cmds && !cmds.as_array().unwrap().is_empty() {
                out.push(cmds);
            }
            out.extend(
                extra
                    .iter()
                    .filter(|s| !s.as_array().unwrap().is_empty())
                    .cloned(),
            );
            Value::Array(out)
        }
        _ => Value::Array(vec![cmds]),
    }
}

fn line<'a>(lines: &'a [Value], index: u64, dir: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["index"] == index && l["dir"] == dir)
        .unwrap()
}

/// CREATE_PIPELINE split across Command (fragment 0) and the next Send (fragment 1): the
/// pipeline appears on the Send, where it completes (PROTOCOL.md section 4).
#[test]
fn pinned_pipeline_split_across_command_and_send() {
    let (_, lines) = decode_file(&corpus().join("pypsrp-responses/test_psrp_small_msg_size.yml"));
    let command = line(&lines, 4, "request");
    assert_eq!(command["action"], "Command");
    assert_eq!(
        command["command_id"],
        "95836029-EF4B-4D4F-B90D-A17D275F12F3"
    );
    assert!(command.get("psrp").is_none());
    let send = line(&lines, 5, "request");
    assert_eq!(send["action"], "Send");
    assert_eq!(send["shell_id"], "55FE7B8A-1137-449B-A0C8-B5658EE91382");
    let msg = &send["psrp"][0];
    assert_eq!(msg["type"], "CREATE_PIPELINE");
    // The header GUIDs are in the older pypsrp byte order (PROTOCOL.md section 4).
    assert_eq!(msg["rpid"], "8a7bfe55-3711-9b44-a0c8-b5658ee91382");
    assert_eq!(msg["pid"], "29608395-4bef-4f4d-b90d-a17d275f12f3");
    let cmd = &msg["pipeline"][0][0];
    assert_eq!(cmd["is_script"], true);
    assert!(cmd["name"]
        .as_str()
        .unwrap()
        .starts_with("begin {\n    $big_var = 'aaaa"));
    let done = line(&lines, 8, "response");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["psrp"][1]["type"], "PIPELINE_STATE");
}

/// A WinRS cmd shell: the command text, the ShellId from the CreateResponse carried to
/// later lines, the CommandId from the CommandResponse, the exit code and a fault.
#[test]
fn pinned_winrs_lines() {
    let (_, lines) = decode_file(&corpus().join("pypsrp-responses/test_client_execute_cmd.yml"));
    let cmd = line(&lines, 6, "request");
    assert_eq!(cmd["command"], "echo abc");
    assert_eq!(cmd["shell_id"], "1ADD7C03-49A1-42AC-9DC4-26D45C6C1512");
    assert_eq!(
        line(&lines, 6, "response")["command_id"],
        "A1A268F5-D543-4F22-BBCE-62E71E764CF1"
    );
    let done = line(&lines, 7, "response");
    assert_eq!(done["action"], "ReceiveResponse");
    assert_eq!(done["exit_code"], 0);

    let (_, lines) = decode_file(&corpus().join("pypsrp-responses/test_winrs_bad_cmd_id.yml"));
    assert_eq!(
        line(&lines, 1, "request")["arguments"],
        serde_json::json!(["/c", "echo", "hi"])
    );
    let fault = line(&lines, 2, "response");
    assert_eq!(fault["action"], "Fault");
    assert_eq!(fault["fault"]["subcode"], "InvalidSelectors");
    assert_eq!(fault["fault"]["wsman_code"], 2_150_858_843_u64);
}

#[test]
fn single_envelope_input() {
    let (stats, lines) = decode_file(&corpus().join("ironposh/tests--receive_response.xml"));
    assert_eq!(stats.envelopes, 1);
    assert_eq!(lines[0]["dir"], "response");
    assert_eq!(lines[0]["action"], "ReceiveResponse");
    assert_eq!(lines[0]["psrp"][0]["type"], "RUNSPACEPOOL_STATE");
    assert!(lines[0].get("index").is_none());
}

#[test]
fn bad_input_is_a_clear_error() {
    let mut sink = Vec::new();
    assert!(matches!(
        decode_recording(b"", &mut sink),
        Err(DecodeError::Empty)
    ));
    assert!(matches!(
        decode_recording(b" \n\t", &mut sink),
        Err(DecodeError::Empty)
    ));
    let e = decode_recording(b"messages: [unclosed", &mut sink).unwrap_err();
    assert!(matches!(e, DecodeError::Recording { .. }), "{e}");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert!(matches!(
        decode_recording(b"just some words", &mut sink),
        Err(DecodeError::Recording { .. })
    ));
    for entry in std::fs::read_dir(corpus().join("ironposh/malformed")).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let result = decode_recording(&input, &mut sink);
        // Unknown elements are tolerated by design (wsman's malformed tests say why).
        if path.ends_with("extra_unknown_elements.xml") {
            assert!(result.is_ok(), "{}", path.display());
            sink.clear();
        } else {
            assert!(result.is_err(), "{} decoded", path.display());
        }
    }
    assert!(sink.is_empty());
    // A broken envelope inside a recording becomes an error line; the rest still decodes.
    let yaml = b"messages:\n- request: <s:Envelope>\n  response: <oops\n";
    let mut out = Vec::new();
    let stats = decode_recording(yaml, &mut out).unwrap();
    assert_eq!((stats.envelopes, stats.errors), (2, 2));
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines().all(|l| l.contains("\"error\":\"envelope: ")),
        "{text}"
    );
}

/// Re-encodes every `rsp:Stream` payload of an envelope with `f`.
fn map_streams(xml: &str, f: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<rsp:Stream") {
        let gt = at + rest[at..].find('>').unwrap();
        out.push_str(&rest[..=gt]);
        rest = &rest[gt + 1..];
        if out.ends_with("/>") {
            continue;
        }
        let end = rest.find("</rsp:Stream>").unwrap();
        let data = b64.decode(rest[..end].trim()).unwrap();
        out.push_str(&b64.encode(f(&data)));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The PSRP corpus recording as a default PowerShell client would have it: the Create asks
/// for xpress, the host answers XpressCompression, and every stream (Send and
/// ReceiveResponse) is framed and compressed. `accept` false keeps NoCompression and
/// leaves the streams plain.
fn as_compressed(path: &Path, accept: bool) -> Vec<u8> {
    let mut doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for m in doc["messages"].as_sequence_mut().unwrap() {
        for side in ["request", "response"] {
            let mut xml = m[side].as_str().unwrap().to_owned();
            if xml.contains("/transfer/Create</") && side == "request" {
                xml = xml.replacen(
                    "</s:Header>",
                    "<rsp:CompressionType xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\" s:mustUnderstand=\"true\">xpress</rsp:CompressionType></s:Header>",
                    1,
                );
            }
            if accept {
                xml = xml.replace(
                    "<rsp:CompressionMode>NoCompression</rsp:CompressionMode>",
                    "<rsp:CompressionMode>XpressCompression</rsp:CompressionMode>",
                );
                xml = map_streams(&xml, &hopgate::xpress::compress_stream);
            }
            m[side] = serde_norway::Value::String(xml);
        }
    }
    serde_norway::to_string(&doc).unwrap().into_bytes()
}

fn decode_bytes(input: &[u8]) -> (DecodeStats, Vec<Value>) {
    let mut out = Vec::new();
    let stats = decode_recording(input, &mut out).unwrap();
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (stats, lines)
}

#[test]
fn compressed_streams_are_decompressed_per_shell() {
    for file in [
        "test_psrp_small_msg_size.yml",
        "test_psrp_multiple_commands.yml",
        "test_client_fetch_file.yml",
    ] {
        let path = corpus().join("pypsrp-responses").join(file);
        let (plain_stats, plain) = decode_file(&path);
        let compressed_input = as_compressed(&path, true);
        let (stats, lines) = decode_bytes(&compressed_input);
        assert_eq!(stats, plain_stats, "{file}");
        assert_eq!(stats.errors, 0);
        for (a, b) in plain.iter().zip(&lines) {
            let mut a = a.clone();
            if a.get("compression_mode").is_some() {
                a["compression_mode"] = "XpressCompression".into();
            }
            assert_eq!(&a, b, "{file}");
        }
        // The host refused (NoCompression): the streams are plain and read as such.
        let (stats, lines) = decode_bytes(&as_compressed(&path, false));
        assert_eq!((stats, &lines), (plain_stats, &plain), "{file}");
    }
    // Really compressed: the recording shrank.
    let path = corpus().join("pypsrp-responses/test_client_fetch_file.yml");
    assert!(as_compressed(&path, true).len() < std::fs::read(&path).unwrap().len());
}

#[test]
fn a_bad_compressed_stream_is_an_error_line() {
    let path = corpus().join("pypsrp-responses/test_psrp_small_msg_size.yml");
    let good = String::from_utf8(as_compressed(&path, true)).unwrap();
    // Drop the last byte of every received stream: its last chunk claims more than is there.
    let mut doc: serde_norway::Value = serde_norway::from_str(&good).unwrap();
    for m in doc["messages"].as_sequence_mut().unwrap() {
        let xml = m["response"].as_str().unwrap().to_owned();
        m["response"] = map_streams(&xml, &|d: &[u8]| d[..d.len() - 1].to_vec()).into();
    }
    let (stats, lines) = decode_bytes(serde_norway::to_string(&doc).unwrap().as_bytes());
    assert!(stats.errors > 0);
    let errors: Vec<&str> = lines.iter().filter_map(|l| l["error"].as_str()).collect();
    assert!(
        errors.iter().all(|e| e.starts_with("compressed stream: ")),
        "{errors:?}"
    );
}

/// The `hopgate decode` command itself: JSON lines and exit 0 on a recording, a clear
/// message and exit 1 on bad input, never a panic.
#[test]
fn decode_command_exit_codes() {
    let bin = env!("CARGO_BIN_EXE_hopgate");
    let ok = std::process::Command::new(bin)
        .arg("decode")
        .arg(corpus().join("pypsrp-responses/test_psrp_small_msg_size.yml"))
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8(ok.stdout).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(text.contains("\"CREATE_PIPELINE\""));

    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("garbage.xml", &b"<s:Envelope><unclosed"[..]),
        ("binary.yml", &[0xff, 0xfe, 0x00, 0x01][..]),
        ("empty.yml", &b""[..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = std::process::Command::new(bin)
            .arg("decode")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && !err.contains("panicked"),
            "{name}: {err}"
        );
    }
}
