//! Cost of defragmenting and decoding a real 21 KB CREATE_PIPELINE (8 statements, from
//! test_client_execute_ps_environment.yml). The budget is 50 µs in a release build:
//! `cargo test --release --lib psrp::tests::perf -- --ignored --nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use super::corpus::{corpus_dir, Direction};
use super::corpus_tests::decode_file;
use crate::psrp::{extract_create_pipeline, fragment_message, Defragmenter, Message, MessageType};

#[test]
#[ignore = "timing: run in release"]
fn defragment_and_decode_20kb_create_pipeline() {
    let decoded = decode_file(&corpus_dir().join("test_client_execute_ps_environment.yml"));
    let msg = decoded[&Direction::ClientToServer]
        .iter()
        .find(|m| m.message_type == MessageType::CreatePipeline)
        .unwrap();
    let bytes = msg.to_bytes();
    assert!(bytes.len() > 20_000);
    // Three fragments, as a client with a small envelope would send them.
    let mut stream = Vec::new();
    for f in fragment_message(9, &bytes, 8192) {
        f.write_to(&mut stream).unwrap();
    }
    let run = || {
        let mut d = Defragmenter::new();
        let mut out = d.push_bytes(&stream).unwrap();
        let m = Message::from_vec(out.pop().unwrap()).unwrap();
        extract_create_pipeline(&m).unwrap()
    };
    assert_eq!(run().statements.len(), 8);
    let mut times: Vec<Duration> = (0..300)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(run());
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "defragment + decode {} bytes: median {median:?}, min {:?}",
        bytes.len(),
        times[0]
    );
    // Baseline on this machine: quick-xml alone scanning the same XML, building nothing.
    let xml = msg.data_xml().unwrap();
    let mut scan: Vec<Duration> = (0..300)
        .map(|_| {
            let t = Instant::now();
            let mut r = quick_xml::NsReader::from_str(xml);
            let mut n = 0usize;
            while !matches!(
                r.read_resolved_event(),
                Ok((_, quick_xml::events::Event::Eof)) | Err(_)
            ) {
                n += 1;
            }
            std::hint::black_box(n);
            t.elapsed()
        })
        .collect();
    scan.sort();
    eprintln!("quick-xml scan alone: median {:?}", scan[scan.len() / 2]);
    let budget = if cfg!(debug_assertions) {
        Duration::from_millis(5)
    } else {
        Duration::from_micros(50)
    };
    assert!(median < budget, "median {median:?} over {budget:?}");
}
