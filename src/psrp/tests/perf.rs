//! Cost of reassembly and decoding: linear in the input (checked here on every test run),
//! and the absolute cost of a real 21 KB CREATE_PIPELINE (8 statements, from
//! test_client_execute_ps_environment.yml), run in release:
//! `cargo test --release --lib psrp::tests::perf -- --ignored --nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use uuid::Uuid;

use super::corpus::{corpus_dir, Direction};
use super::corpus_tests::decode_file;
use crate::psrp::{
    extract_create_pipeline, fragment_message, Defragmenter, Destination, Message, MessageType,
};

/// Fastest of `runs` timings of each of `small` and `large`, taken alternately so that load
/// from other processes falls on both alike (the minimum is the least disturbed timing).
/// Only the ratio of the two is asserted: this catches quadratic work, not slowness.
fn fastest_pair(
    runs: usize,
    small: &mut dyn FnMut(),
    large: &mut dyn FnMut(),
) -> (Duration, Duration) {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut s, mut l) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        s = s.min(time(small));
        l = l.min(time(large));
    }
    (s, l)
}

/// A CREATE_PIPELINE with one command and `args` string arguments, as encoded bytes.
fn pipeline_with_args(args: usize) -> Vec<u8> {
    let arg = r#"<Obj><MS><S N="N">Name</S><S N="V">some value &amp; more</S></MS></Obj>"#;
    let xml = format!(
        r#"<Obj RefId="0"><MS><Obj N="PowerShell"><MS><Obj N="Cmds"><LST><Obj><MS><S N="Cmd">Get-Item</S><B N="IsScript">false</B><Obj N="Args"><LST>{}</LST></Obj></MS></Obj></LST></Obj></MS></Obj></MS></Obj>"#,
        arg.repeat(args)
    );
    Message {
        destination: Destination::Server,
        message_type: MessageType::CreatePipeline,
        rpid: Uuid::nil(),
        pid: Uuid::nil(),
        data: xml.into_bytes(),
    }
    .to_bytes()
}

/// Defragments `message` sent as small fragments and reads its pipeline.
fn decode(stream: &[u8]) -> usize {
    let mut d = Defragmenter::new();
    let mut out = d.push_bytes(stream).unwrap();
    let m = Message::from_vec(out.pop().unwrap()).unwrap();
    extract_create_pipeline(&m).unwrap().statements[0][0]
        .args
        .len()
}

fn stream(message: &[u8], fragment: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fragment_message(1, message, fragment) {
        f.write_to(&mut out).unwrap();
    }
    out
}

/// 16 times the input may cost at most 64 times the time: quadratic work would be 256
/// times; cache effects on a 300 KB document account for up to about 1.5 times.
#[test]
fn decoding_cost_is_linear() {
    let small = stream(&pipeline_with_args(250), 512);
    let large = stream(&pipeline_with_args(4000), 512);
    assert_eq!(decode(&small), 250);
    assert_eq!(decode(&large), 4000);
    let (t_small, t_large) = fastest_pair(9, &mut || assert_eq!(decode(&small), 250), &mut || {
        assert_eq!(decode(&large), 4000)
    });
    assert!(t_large < t_small * 64, "{t_small:?} → {t_large:?}");
}

/// Reassembly alone, with many small fragments: 16 times the data, at most 64 times the time.
#[test]
fn reassembly_cost_is_linear() {
    let small_msg = vec![7u8; 64 * 1024];
    let large_msg = vec![7u8; 1024 * 1024];
    let small = stream(&small_msg, 85);
    let large = stream(&large_msg, 85);
    let run = |s: &[u8]| {
        Defragmenter::new()
            .push_bytes(s)
            .unwrap()
            .pop()
            .unwrap()
            .len()
    };
    assert_eq!(run(&small), small_msg.len());
    assert_eq!(run(&large), large_msg.len());
    let (t_small, t_large) =
        fastest_pair(9, &mut || assert_eq!(run(&small), 64 * 1024), &mut || {
            assert_eq!(run(&large), 1024 * 1024)
        });
    assert!(t_large < t_small * 64, "{t_small:?} → {t_large:?}");
}

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
    let stream = stream(&bytes, 8192);
    let run = || {
        let mut d = Defragmenter::new();
        let mut out = d.push_bytes(&stream).unwrap();
        let m = Message::from_vec(out.pop().unwrap()).unwrap();
        extract_create_pipeline(&m).unwrap()
    };
    assert_eq!(run().statements.len(), 8);
    let mut times: Vec<Duration> = (0..500)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(run());
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    // Yardstick on the same machine: quick-xml alone reading the same XML, building nothing.
    let xml = msg.data_xml().unwrap();
    let mut scan: Vec<Duration> = (0..500)
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
    eprintln!(
        "defragment + decode {} bytes: median {median:?} (min {:?}); quick-xml scan alone: median {:?} (min {:?})",
        bytes.len(),
        times[0],
        scan[scan.len() / 2],
        scan[0]
    );
    // Minimums: the least disturbed runs on a shared machine.
    assert!(
        times[0] < scan[0] * 4,
        "{:?} vs scan {:?}",
        times[0],
        scan[0]
    );
    assert!(times[0] < Duration::from_millis(1), "{:?}", times[0]);
}
