//! Codec benchmarks over the real corpus (`../shared/corpus`): xpress stream compression.
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
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
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

#[allow(dead_code, reason = "used by later benches")]
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

criterion_group!(benches, xpress);
criterion_main!(benches);
