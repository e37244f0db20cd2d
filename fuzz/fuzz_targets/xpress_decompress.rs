//! Fuzz the xpress codec: framed streams and raw LZ77+Huffman blocks from hostile bytes must
//! never panic or exceed their caps; whatever decodes must survive our own framing; and any
//! input must round-trip through compress → decompress. Run with
//! `cargo fuzz run xpress_decompress`.
#![no_main]

use hopgate::xpress::{compress_stream, decompress_stream, huffman};
use libfuzzer_sys::fuzz_target;

const CAP: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // 1. The input as a WinRM compressed stream.
    if let Ok(out) = decompress_stream(data, CAP) {
        assert!(out.len() <= CAP);
        let again = compress_stream(&out);
        assert_eq!(decompress_stream(&again, out.len()).as_deref(), Ok(&out[..]));
    }
    // 2. The input as one block, the first two bytes giving the declared size.
    if let [lo, hi, block @ ..] = data {
        let size = usize::from(u16::from_le_bytes([*lo, *hi])) + 1;
        if let Ok(out) = huffman::decompress(block, size) {
            assert_eq!(out.len(), size);
        }
    }
    // 3. The input as plain data: compress and decode back.
    let framed = compress_stream(data);
    assert_eq!(decompress_stream(&framed, data.len()).as_deref(), Ok(data));
});
