//! Fuzz the PSRP framing: fragment parsing, reassembly, message headers and the summary of
//! whatever messages come out. Run with `cargo fuzz run psrp_fragment`.
#![no_main]

use hopgate::psrp::{decode_message_summary, parse_fragments, Defragmenter, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_fragments(data);
    // Feed the input as two payloads to exercise state kept across calls.
    let mid = data.len() / 2;
    let mut defrag = Defragmenter::new();
    for part in [&data[..mid], &data[mid..]] {
        if let Ok(messages) = defrag.push_bytes(part) {
            for m in messages {
                if let Ok(msg) = Message::from_vec(m) {
                    let _ = decode_message_summary(&msg);
                }
            }
        }
    }
    assert!(defrag.buffered_bytes() <= data.len());
});
