//! Codec benchmarks over the real corpus (`../shared/corpus`): WS-Man envelope parsing,
//! PSRP reassembly and message decoding, pipeline extraction, `hopgate decode`, and xpress
//! stream compression.
//!
//! Run: `cargo bench --bench codecs -- --warm-up-time 1 --measurement-time 3`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness: inputs are fixed files, a panic is a broken setup"
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hopgate::psrp::{self, Defragmenter};
use hopgate::wsman::{self, Body};
use hopgate::xpress::{compress_stream, decompress_stream};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `{request, response}` envelope of the pypsrp corpus, in file order.
fn corpus_envelopes() -> Vec<String> {
    let dir = root().join("../shared/corpus/pypsrp-responses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml") && !p.ends_with("_template.yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let Some(messages) = doc.get("messages").and_then(|m| m.as_sequence()) else {
            continue;
        };
        for m in messages {
            for side in ["request", "response"] {
                if let Some(s) = m.get(side).and_then(|v| v.as_str()) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

/// The decoded bytes of every distinct `rsp:Stream` / `rsp:Arguments` payload, concatenated:
/// realistic PSRP fragment data (CLIXML, file chunks) for the xpress benches.
fn corpus_stream_bytes(envelopes: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for env in envelopes {
        for tag in ["<rsp:Stream", "<rsp:Arguments"] {
            let mut rest = env.as_str();
            while let Some(at) = rest.find(tag) {
                rest = &rest[at..];
                let Some(gt) = rest.find('>') else { break };
                let Some(lt) = rest[gt..].find('<') else {
                    break;
                };
                let text = &rest[gt + 1..gt + lt];
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                    if seen.insert(bytes.clone()) {
                        out.extend_from_slice(&bytes);
                    }
                }
                rest = &rest[gt + lt..];
            }
        }
    }
    out
}

fn xpress(c: &mut Criterion) {
    let envelopes = corpus_envelopes();
    let text = corpus_stream_bytes(&envelopes);
    let mut group = c.benchmark_group("xpress");
    for (name, data) in [("corpus_streams", text.clone()), ("random", noise(1 << 20))] {
        let framed = compress_stream(&data);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::new("compress_stream", name), &data, |b, d| {
            b.iter(|| compress_stream(black_box(d)))
        });
        group.bench_with_input(
            BenchmarkId::new("decompress_stream", name),
            &framed,
            |b, f| b.iter(|| decompress_stream(black_box(f), usize::MAX).unwrap()),
        );
    }
    // Streams framed by Microsoft's own compressor (tests/fixtures/xpress).
    let dir = root().join("tests/fixtures/xpress");
    let fixtures: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "framed"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let plain: usize = fixtures
        .iter()
        .map(|f| decompress_stream(f, usize::MAX).unwrap().len())
        .sum();
    group.throughput(Throughput::Bytes(plain as u64));
    group.bench_function("decompress_stream/microsoft_fixtures", |b| {
        b.iter(|| {
            for f in &fixtures {
                black_box(decompress_stream(black_box(f), usize::MAX).unwrap());
            }
        })
    });
    group.finish();
}

fn noise(len: usize) -> Vec<u8> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.to_le_bytes()[3]
        })
        .collect()
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

fn limits() -> wsman::Limits {
    wsman::Limits {
        max_bytes: 16 << 20,
        ..wsman::Limits::default()
    }
}

fn envelope_parse(c: &mut Criterion) {
    let envelopes = corpus_envelopes();
    let total: usize = envelopes.iter().map(String::len).sum();
    let mut group = c.benchmark_group("wsman");
    let parse_all = |b: &mut criterion::Bencher| {
        b.iter(|| {
            for e in &envelopes {
                black_box(wsman::parse(black_box(e.as_bytes()), &limits()).unwrap());
            }
        })
    };
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("parse_corpus/bytes", parse_all);
    group.throughput(Throughput::Elements(envelopes.len() as u64));
    group.bench_function("parse_corpus/envelopes", parse_all);

    // The Command envelope closest to 20 KB: a CREATE_PIPELINE in rsp:Arguments.
    let command = envelopes
        .iter()
        .filter(|e| e.contains("/windows/shell/Command</"))
        .min_by_key(|e| e.len().abs_diff(20_000))
        .unwrap();
    group.throughput(Throughput::Bytes(command.len() as u64));
    group.bench_function(BenchmarkId::new("parse_command", command.len()), |b| {
        b.iter(|| wsman::parse(black_box(command.as_bytes()), &limits()).unwrap())
    });
    group.finish();
}

const HOSTILE_HEAD: &str = concat!(
    r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
    r#"xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
    r#"xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" "#,
    r#"xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>"#,
    r#"<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action>"#,
    r#"<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>"#,
    r#"</s:Header><s:Body>"#
);

/// A Create whose `rsp:Shell` holds `shell` (open tag tail, content) for the hostile
/// benches of issue #14.
fn hostile_create(attrs: &str, content: &str) -> Vec<u8> {
    format!("{HOSTILE_HEAD}<rsp:Shell{attrs}>{content}</rsp:Shell></s:Body></s:Envelope>")
        .into_bytes()
}

/// Parse time against input size (1x, 2x, 4x, 8x) for the shapes of issue #14: an
/// `rsp:Shell` with n attributes (the count cap lifted, so the duplicate check itself is
/// measured), n siblings, and n-deep nesting (refused at the depth limit). Time per byte
/// stays flat when parsing is linear.
fn envelope_hostile(c: &mut Criterion) {
    let mut group = c.benchmark_group("wsman_hostile");
    let uncapped = wsman::Limits {
        max_attributes: usize::MAX,
        ..limits()
    };
    for k in [1usize, 2, 4, 8] {
        let n = 12_500 * k;
        let attrs: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
        let inputs = [
            ("attributes", hostile_create(&attrs, "")),
            ("siblings", hostile_create("", &"<x/>".repeat(n))),
            (
                "nested",
                hostile_create("", &format!("{}{}", "<x>".repeat(n), "</x>".repeat(n))),
            ),
        ];
        for (name, xml) in &inputs {
            group.throughput(Throughput::Bytes(xml.len() as u64));
            group.bench_with_input(BenchmarkId::new(*name, format!("{k}x")), xml, |b, xml| {
                b.iter(|| black_box(wsman::parse(black_box(xml), &uncapped)))
            });
        }
    }
    group.finish();
}

/// Per recording and direction, the PSRP payloads in order (decoded base64 of creationXml,
/// rsp:Arguments, rsp:Stream, connectXml...), taken out with the wsman parser.
fn psrp_payload_runs() -> Vec<Vec<Vec<u8>>> {
    let dir = corpus_dir().join("pypsrp-responses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml") && !p.ends_with("_template.yml"))
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for file in files {
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        for m in doc["messages"].as_sequence().unwrap() {
            let request =
                wsman::parse(m["request"].as_str().unwrap().as_bytes(), &limits()).unwrap();
            let psrp_shell = request
                .header
                .resource_uri
                .as_deref()
                .is_some_and(|u| u.starts_with("http://schemas.microsoft.com/powershell/"));
            if !psrp_shell {
                continue;
            }
            match request.body {
                Body::Shell(s) => to_server.extend(s.creation_xml),
                Body::CommandLine(cl) => to_server.extend(cl.arguments.iter().map(|a| {
                    base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .unwrap()
                })),
                Body::Send(streams) => to_server.extend(streams.into_iter().map(|s| s.data)),
                Body::Connect { connect_xml } => to_server.extend(connect_xml),
                _ => {}
            }
            let response =
                wsman::parse(m["response"].as_str().unwrap().as_bytes(), &limits()).unwrap();
            match response.body {
                Body::ReceiveResponse { streams, .. } => {
                    to_client.extend(streams.into_iter().map(|s| s.data))
                }
                Body::ConnectResponse {
                    connect_response_xml,
                } => to_client.extend(connect_response_xml),
                _ => {}
            }
        }
        runs.push(to_server);
        runs.push(to_client);
    }
    runs
}

fn psrp(c: &mut Criterion) {
    let runs = psrp_payload_runs();
    let bytes: usize = runs.iter().flatten().map(Vec::len).sum();
    let messages: Vec<psrp::Message> = runs
        .iter()
        .flat_map(|run| {
            let mut d = Defragmenter::new();
            run.iter()
                .flat_map(|p| d.push_bytes(p).unwrap())
                .map(|m| psrp::Message::from_vec(m).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut group = c.benchmark_group("psrp");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(
        BenchmarkId::new(
            "defragment_and_parse",
            format!("{} messages", messages.len()),
        ),
        |b| {
            b.iter(|| {
                let mut n = 0;
                for run in &runs {
                    let mut d = Defragmenter::new();
                    for payload in run {
                        for m in d.push_bytes(black_box(payload)).unwrap() {
                            black_box(psrp::Message::from_vec(m).unwrap());
                            n += 1;
                        }
                    }
                }
                n
            })
        },
    );
    let pipelines: Vec<&psrp::Message> = messages
        .iter()
        .filter(|m| m.message_type == psrp::MessageType::CreatePipeline)
        .collect();
    let pipeline_bytes: usize = pipelines.iter().map(|m| m.data.len()).sum();
    group.throughput(Throughput::Elements(pipelines.len() as u64));
    group.bench_function(
        BenchmarkId::new(
            "extract_create_pipeline",
            format!("{} pipelines, {pipeline_bytes} bytes", pipelines.len()),
        ),
        |b| {
            b.iter(|| {
                for m in &pipelines {
                    black_box(psrp::extract_create_pipeline(black_box(m)).unwrap());
                }
            })
        },
    );
    group.finish();
}

fn decode_tool(c: &mut Criterion) {
    let dir = corpus_dir().join("pypsrp-responses");
    let recordings: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml") && !p.ends_with("_template.yml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let total: usize = recordings.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("decode_recording/corpus", |b| {
        b.iter(|| {
            for r in &recordings {
                let mut sink = std::io::sink();
                black_box(hopgate::decode::decode_recording(black_box(r), &mut sink).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    envelope_parse,
    envelope_hostile,
    psrp,
    decode_tool,
    xpress
);
criterion_main!(benches);
