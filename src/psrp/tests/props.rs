//! Property tests: reassembly does not depend on fragment size, on how fragments are grouped
//! into WS-Man payloads or on how objects interleave; parsers never panic on any input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "tests"
)]

use proptest::prelude::*;

use super::corpus::corpus_dir;
use super::corpus::Direction;
use super::corpus_tests::decode_file;
use crate::psrp::clixml::{parse_clixml, parse_clixml_with, ClixmlLimits};
use crate::psrp::{
    extract_create_pipeline, fragment_message, parse_fragments, Defragmenter, Message, MessageType,
    FRAGMENT_HEADER_LEN,
};

/// Encoded messages from the corpus: the 30 KB CREATE_PIPELINE of test_psrp_small_msg_size.yml
/// and the 10-statement CREATE_PIPELINE and first messages of test_psrp_multiple_commands.yml.
fn corpus_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let small = decode_file(&corpus_dir().join("test_psrp_small_msg_size.yml"));
    out.extend(
        small[&Direction::ClientToServer]
            .iter()
            .filter(|m| m.message_type == MessageType::CreatePipeline)
            .map(Message::to_bytes),
    );
    let multi = decode_file(&corpus_dir().join("test_psrp_multiple_commands.yml"));
    out.extend(
        multi[&Direction::ClientToServer]
            .iter()
            .filter(|m| m.message_type == MessageType::CreatePipeline)
            .map(Message::to_bytes),
    );
    out.extend(
        multi[&Direction::ClientToServer]
            .iter()
            .take(3)
            .map(Message::to_bytes),
    );
    out.extend(
        multi[&Direction::ServerToClient]
            .iter()
            .take(3)
            .map(Message::to_bytes),
    );
    assert!(out[0].len() > 30_000);
    out
}

/// Every fragment size, from one blob byte per fragment to the whole message in one.
#[test]
fn every_fragment_size_gives_the_same_message() {
    let messages = corpus_messages();
    // The CREATE_PIPELINE of test_psrp_multiple_commands.yml at every size.
    let message = &messages[1];
    assert_eq!(
        Message::parse(message).unwrap().message_type,
        MessageType::CreatePipeline
    );
    for max in FRAGMENT_HEADER_LEN + 1..=FRAGMENT_HEADER_LEN + message.len() + 1 {
        let mut stream = Vec::new();
        for f in fragment_message(42, message, max) {
            f.write_to(&mut stream).unwrap();
        }
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push_bytes(&stream).unwrap(),
            vec![message.clone()],
            "max {max}"
        );
        assert!(d.is_idle());
    }
    // The reassembled CREATE_PIPELINE still reads as the same pipeline.
    let p = extract_create_pipeline(&Message::parse(message).unwrap()).unwrap();
    assert_eq!(p.statements.len(), 10);
}

/// Every split of a fragment stream into consecutive payloads (at fragment boundaries, as
/// MS-PSRP 2.2.4 guarantees) gives the same messages.
#[test]
fn every_split_point_gives_the_same_messages() {
    let messages = corpus_messages();
    let mut frags = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        frags.extend(fragment_message(i as u64 + 1, m, 4096));
    }
    let encoded: Vec<Vec<u8>> = frags.iter().map(|f| f.to_bytes().unwrap()).collect();
    for split in 0..=encoded.len() {
        for split2 in split..=encoded.len() {
            let mut d = Defragmenter::new();
            let mut got = Vec::new();
            for part in [
                &encoded[..split],
                &encoded[split..split2],
                &encoded[split2..],
            ] {
                got.extend(d.push_bytes(&part.concat()).unwrap());
            }
            assert_eq!(got, messages, "splits {split} {split2}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random fragment sizes, random interleaving of objects (each object's fragments stay
    /// in order), random grouping into payloads: the same messages, each completed when its
    /// last fragment arrives.
    #[test]
    fn reassembly_is_independent_of_size_interleaving_and_grouping(
        sizes in proptest::collection::vec(FRAGMENT_HEADER_LEN + 1..5000usize, 8),
        picks in proptest::collection::vec(0usize..8, 0..400),
        cuts in proptest::collection::vec(any::<bool>(), 0..400),
    ) {
        let messages = corpus_messages();
        let mut queues: Vec<std::collections::VecDeque<_>> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| fragment_message(i as u64 + 1, m, sizes[i % sizes.len()]).into())
            .collect();
        // Interleave: take from the queue `picks` chooses, then drain the rest in order.
        let mut order = Vec::new();
        let mut picks = picks.into_iter();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let i = live[picks.next().unwrap_or(0) % live.len()];
            order.push(queues[i].pop_front().unwrap());
        }
        let mut expected_completion = Vec::new();
        for f in &order {
            if f.end {
                expected_completion.push(messages[(f.object_id - 1) as usize].clone());
            }
        }
        let mut d = Defragmenter::new();
        let mut got = Vec::new();
        let mut payload = Vec::new();
        let mut cuts = cuts.into_iter();
        for f in &order {
            f.write_to(&mut payload).unwrap();
            if cuts.next().unwrap_or(true) {
                got.extend(d.push_bytes(&payload).unwrap());
                payload.clear();
            }
        }
        got.extend(d.push_bytes(&payload).unwrap());
        prop_assert_eq!(got, expected_completion);
        prop_assert!(d.is_idle());
    }

    #[test]
    fn fragment_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_fragments(&data);
        let _ = Defragmenter::new().push_bytes(&data);
        let _ = Message::parse(&data);
    }

    #[test]
    fn clixml_parser_never_panics_on_random_text(text in "\\PC{0,200}") {
        let _ = parse_clixml(&text);
    }

    #[test]
    fn clixml_parser_never_panics_on_clixml_like_text(
        parts in proptest::collection::vec(prop_oneof![
            Just("<Obj RefId=\"0\">"), Just("<Obj RefId=\"1\">"), Just("</Obj>"), Just("<MS>"),
            Just("</MS>"), Just("<LST>"), Just("</LST>"), Just("<DCT>"), Just("</DCT>"),
            Just("<En>"), Just("</En>"), Just("<S N=\"Key\">"), Just("</S>"), Just("<Ref RefId=\"0\" />"),
            Just("<TN RefId=\"0\"><T>a</T></TN>"), Just("<TNRef RefId=\"0\" />"), Just("<I32>"),
            Just("</I32>"), Just("1"), Just("x"), Just("_x000"), Just("A_"), Just("&amp;"), Just("&"),
            Just("<Nil />"), Just("<ToString>"), Just("</ToString>"), Just("<SS>"), Just("</SS>"),
        ], 0..60),
    ) {
        let text = parts.concat();
        let limits = ClixmlLimits { max_depth: 20, max_values: 50, ..ClixmlLimits::default() };
        let _ = parse_clixml_with(&text, &limits);
        let _ = parse_clixml(&text);
    }

    /// Truncations and byte flips of a real CREATE_PIPELINE never panic the parser or the
    /// pipeline read-out.
    #[test]
    fn mutated_real_pipelines_never_panic(cut in 0usize..20_000, flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 0..4)) {
        let messages = corpus_messages();
        let msg = Message::parse(&messages[1]).unwrap();
        let mut data = msg.data.clone();
        data.truncate(cut.min(data.len()));
        for (at, b) in flips {
            if let Some(slot) = data.get_mut(at) {
                *slot = b;
            }
        }
        let m = Message { data, ..msg };
        if let Ok(xml) = m.data_xml() {
            let _ = parse_clixml(xml);
        }
        let _ = extract_create_pipeline(&m);
    }
}
