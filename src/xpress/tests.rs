//! Unit tests for the xpress codec: the [MS-XCA] 3.2 examples byte for byte, hostile blocks
//! and chunk headers, and round trips of many shapes and sizes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test code: panics are failures, inputs are built here"
)]

use super::huffman::{compress, decompress, MAX_BLOCK_LEN};
use super::{compress_stream, decompress_stream, XpressError};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// [MS-XCA] 3.2, first example, as printed there: "abcdefghijklmnopqrstuvwxyz" as literals.
fn spec_alphabet() -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v.extend(hex("50 55 55 55 55 55 55 55 55 55 55 45 44 04"));
    v.resize(128, 0);
    v.push(0x04); // EOF (symbol 256) has length 4
    v.resize(256, 0);
    v.extend(hex(
        "d8 52 3e d7 94 11 5b e9 19 5f f9 d6 7c df 8d 04 00 00 00 00",
    ));
    v
}

/// [MS-XCA] 3.2, second example: "abc" × 100 as abc + match(distance 3, length 297) + EOF.
fn spec_abc() -> Vec<u8> {
    let mut v = vec![0u8; 256];
    v[48] = 0x30; // 'a' (97): length 3
    v[49] = 0x23; // 'b' (98): 3, 'c' (99): 2
    v[128] = 0x02; // EOF (256): 2
    v[143] = 0x20; // 287 = match, length class 15, distance high bit 1: 2
    v.extend(hex("a8 dc 00 00 ff 26 01"));
    v
}

fn abc300() -> Vec<u8> {
    b"abc".repeat(100)
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Text-like data with repeats at many distances, like CLIXML.
fn texty(len: usize) -> Vec<u8> {
    let words = [
        "<Obj RefId=\"0\">",
        "<MS>",
        "<S N=\"Cmd\">Get-Process</S>",
        "<B N=\"IsScript\">false</B>",
        "<Nil N=\"UseLocalScope\" />",
        "</MS>",
        "</Obj>",
        "PowerShell",
        "\r\n",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 7u64;
    while out.len() < len {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = words[(i >> 59) as usize % words.len()];
        out.extend_from_slice(w.as_bytes());
        out.extend_from_slice((i >> 40).to_string().as_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn spec_alphabet_example_decodes() {
    let input = spec_alphabet();
    assert_eq!(input.len(), 276);
    assert_eq!(
        decompress(&input, 26).unwrap(),
        b"abcdefghijklmnopqrstuvwxyz"
    );
}

#[test]
fn spec_abc_example_decodes() {
    assert_eq!(decompress(&spec_abc(), 300).unwrap(), abc300());
}

#[test]
fn encoder_reproduces_spec_examples_byte_for_byte() {
    assert_eq!(
        compress(b"abcdefghijklmnopqrstuvwxyz").unwrap(),
        spec_alphabet()
    );
    assert_eq!(compress(&abc300()).unwrap(), spec_abc());
}

#[test]
fn long_length_u32_escape_decodes() {
    // Same stream as the abc example, but the length 294 written as 255, 0u16, u32.
    let mut v = spec_abc();
    v.truncate(256 + 4);
    v.extend(hex("ff 00 00 26 01 00 00"));
    assert_eq!(decompress(&v, 300).unwrap(), abc300());
}

#[test]
fn long_length_below_15_is_rejected() {
    let mut v = spec_abc();
    v.truncate(256 + 4);
    v.extend(hex("ff 0e 00"));
    assert_eq!(
        decompress(&v, 300),
        Err(XpressError::InvalidMatchLength {
            value: 14,
            offset: 261
        })
    );
}

#[test]
fn declared_size_too_small_for_the_match_is_rejected() {
    assert_eq!(
        decompress(&spec_abc(), 299),
        Err(XpressError::MatchOverrun {
            output_offset: 3,
            length: 297,
            declared: 299
        })
    );
}

#[test]
fn truncated_streams_are_rejected() {
    let full = spec_abc();
    assert_eq!(
        decompress(&full[..255], 300),
        Err(XpressError::TruncatedTable { available: 255 })
    );
    assert_eq!(
        decompress(&full[..259], 300),
        Err(XpressError::TruncatedTable { available: 259 })
    );
    // The long-length u16 is cut off.
    assert_eq!(
        decompress(&full[..262], 300),
        Err(XpressError::TruncatedInput {
            offset: 261,
            needed: 2
        })
    );
    // Asking for more output than the bits hold runs off the end of the input.
    assert!(matches!(
        decompress(&full, 400),
        Err(XpressError::TruncatedInput { .. }) | Err(XpressError::MatchOverrun { .. })
    ));
}

#[test]
fn incomplete_or_overfull_tables_are_rejected() {
    let mut v = spec_abc();
    v[48] = 0x40; // 'a' gets 4 bits: the code no longer fills the space
    assert_eq!(
        decompress(&v, 300),
        Err(XpressError::InvalidTable {
            filled: 32768 - 2048
        })
    );
    let mut v = spec_abc();
    v[48] = 0x20; // 'a' gets 2 bits: overfull
    assert_eq!(
        decompress(&v, 300),
        Err(XpressError::InvalidTable {
            filled: 32768 + 4096
        })
    );
    assert_eq!(
        decompress(&[0u8; 300], 10),
        Err(XpressError::InvalidTable { filled: 0 })
    );
}

#[test]
fn match_before_the_start_is_rejected() {
    // Two symbols of one bit each: 'a' = 0, symbol 256 (length 3, distance 1) = 1.
    let mut v = vec![0u8; 256];
    v[48] = 0x10; // 'a' (97) in the high nibble
    v[128] = 0x01; // symbol 256
    v.extend(hex("00 80 00 00")); // first bit 1: a match with nothing behind it
    assert_eq!(
        decompress(&v, 5),
        Err(XpressError::DistanceTooFar {
            output_offset: 0,
            distance: 1
        })
    );
    // 'a' then the match: "aaaa"; the overlapping copy works byte by byte.
    let mut v = v[..256].to_vec();
    v.extend(hex("00 40 00 00"));
    assert_eq!(decompress(&v, 4).unwrap(), b"aaaa");
}

#[test]
fn oversize_blocks_are_refused() {
    assert_eq!(
        decompress(&spec_abc(), MAX_BLOCK_LEN + 1),
        Err(XpressError::BlockTooLarge {
            size: MAX_BLOCK_LEN + 1
        })
    );
    assert!(compress(&vec![0u8; MAX_BLOCK_LEN + 1]).is_err());
    assert_eq!(decompress(&[], 0).unwrap(), b"");
}

#[test]
fn block_round_trips_of_many_shapes() {
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"ab".to_vec(),
        vec![0u8; 3],
        vec![7u8; 65536],
        noise(65536, 1),
        noise(1000, 2),
        texty(65536),
        texty(300),
        (0..=255u8).cycle().take(65536).collect(),
        [noise(40000, 3), noise(25536, 3)].concat(), // a 40000-byte-back repeat
    ];
    for data in cases {
        let packed = compress(&data).unwrap();
        assert_eq!(
            decompress(&packed, data.len()).unwrap(),
            data,
            "len {}",
            data.len()
        );
    }
}

#[test]
fn compression_actually_compresses() {
    let text = texty(65536);
    let packed = compress(&text).unwrap();
    assert!(packed.len() < text.len() / 3, "{} bytes", packed.len());
    let zeros = compress(&vec![0u8; 65536]).unwrap();
    assert!(zeros.len() < 300, "{} bytes", zeros.len());
}

#[test]
fn short_stream_is_one_stored_chunk() {
    assert_eq!(compress_stream(b"hello"), hex("04 00 04 00 68 65 6c 6c 6f"));
    assert_eq!(
        decompress_stream(&hex("04 00 04 00 68 65 6c 6c 6f"), 100).unwrap(),
        b"hello"
    );
    assert_eq!(compress_stream(b""), b"");
    assert_eq!(decompress_stream(b"", 0).unwrap(), b"");
    // 265 compressible bytes are still stored: below the 266-byte threshold.
    let framed = compress_stream(&[b'x'; 265]);
    assert_eq!(framed.len(), 4 + 265);
    assert_eq!(framed[..4], hex("08 01 08 01"));
}

#[test]
fn compressible_stream_gets_compressed_chunks() {
    let data = texty(150_000);
    let framed = compress_stream(&data);
    assert!(framed.len() < data.len() / 2);
    // First chunk: 65536 original bytes, fewer compressed.
    assert_eq!(framed[..2], [0xff, 0xff]);
    let first_len = usize::from(u16::from_le_bytes([framed[2], framed[3]])) + 1;
    assert!(first_len < 65536);
    assert_eq!(decompress_stream(&framed, data.len()).unwrap(), data);
}

#[test]
fn incompressible_stream_is_stored() {
    let data = noise(100_000, 9);
    let framed = compress_stream(&data);
    assert_eq!(framed.len(), data.len() + 8);
    assert_eq!(framed[..4], hex("ff ff ff ff"));
    assert_eq!(framed[4 + 65536..4 + 65536 + 4], hex("9f 86 9f 86")); // 34464 - 1
    assert_eq!(decompress_stream(&framed, data.len()).unwrap(), data);
}

#[test]
fn lying_chunk_headers_are_rejected() {
    // Declares 5 stored bytes, carries 4.
    assert_eq!(
        decompress_stream(&hex("04 00 04 00 68 65 6c 6c"), 100),
        Err(XpressError::ChunkOverrun {
            offset: 0,
            declared: 5,
            available: 4
        })
    );
    // Header cut short after one good chunk.
    assert_eq!(
        decompress_stream(&hex("00 00 00 00 41 04 00"), 100),
        Err(XpressError::TruncatedChunkHeader {
            offset: 5,
            available: 2
        })
    );
    // "Compressed" longer than the original.
    assert_eq!(
        decompress_stream(&hex("00 00 01 00 41 42"), 100),
        Err(XpressError::CompressedLonger {
            offset: 0,
            compressed: 2,
            original: 1
        })
    );
    // A compressed chunk whose original length is off by one.
    let mut framed = Vec::new();
    let block = spec_abc();
    framed.extend_from_slice(&(300u16).to_le_bytes()); // says 301
    framed.extend_from_slice(&((block.len() - 1) as u16).to_le_bytes());
    framed.extend_from_slice(&block);
    assert!(matches!(
        decompress_stream(&framed, 1000),
        Err(XpressError::Chunk { offset: 0, .. })
    ));
    framed[0..2].copy_from_slice(&(299u16).to_le_bytes()); // the truth
    assert_eq!(decompress_stream(&framed, 1000).unwrap(), abc300());
    // The cap applies before anything is decoded.
    assert_eq!(
        decompress_stream(&framed, 299),
        Err(XpressError::TooLarge {
            offset: 0,
            limit: 299
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        let framed = compress_stream(&data);
        prop_assert!(framed.len() <= data.len() + 4 * (data.len() / 65536 + 1));
        prop_assert_eq!(decompress_stream(&framed, data.len()).unwrap(), data);
    }

    #[test]
    fn repetitive_data_round_trips(
        unit in proptest::collection::vec(any::<u8>(), 1..40),
        repeats in 1usize..6000,
        tail in proptest::collection::vec(0u8..4, 0..3000),
    ) {
        let mut data = unit.repeat(repeats);
        data.extend_from_slice(&tail);
        let framed = compress_stream(&data);
        prop_assert_eq!(decompress_stream(&framed, data.len()).unwrap(), data.clone());
        // The repeated part must shrink at least fourfold. The random tail (2 bits of
        // information per byte) may cost up to half its size, and every 64 KiB chunk adds a
        // 256-byte Huffman table and its header. (A bound on the whole input alone failed
        // when a short repeated part met a long tail.)
        let repeated = unit.len() * repeats;
        if repeated >= 4096 && unit.len() < 20 {
            let chunks = data.len() / 65536 + 1;
            prop_assert!(framed.len() < repeated / 4 + tail.len() / 2 + 300 * chunks);
        }
    }

    #[test]
    fn hostile_streams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000), cap in 0usize..200_000) {
        if let Ok(out) = decompress_stream(&data, cap) {
            prop_assert!(out.len() <= cap);
        }
    }

    #[test]
    fn mutated_blocks_never_panic(
        seed in any::<u64>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        size in 0usize..70_000,
    ) {
        let mut block = compress(&texty(2000 + (seed % 5000) as usize)).unwrap();
        for (at, value) in flips {
            let i = at.index(block.len());
            block[i] ^= value;
        }
        if let Ok(out) = decompress(&block, size) {
            prop_assert_eq!(out.len(), size);
        }
    }
}

/// Streams compressed by Microsoft's own xpress code (tests/fixtures/xpress/README.md):
/// each must decode to the corpus payload it was made from.
#[test]
fn streams_compressed_by_microsoft_code_decode_to_the_corpus_payloads() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/fixtures/xpress");
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    let mut checked = 0;
    for line in manifest.lines() {
        let [name, len, sha] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad manifest line {line:?}");
        };
        let framed = std::fs::read(dir.join(name)).unwrap();
        let plain = decompress_stream(&framed, 1 << 20).unwrap();
        assert_eq!(plain.len(), len.parse::<usize>().unwrap(), "{name}");
        assert_eq!(hex::encode(sha2::Sha256::digest(&plain)), sha, "{name}");
        assert!(framed.len() < plain.len() / 2, "{name}: really compressed");
        let corpus_file = name.split('.').next().unwrap();
        let yaml = std::fs::read_to_string(
            root.join("../shared/corpus/pypsrp-responses")
                .join(format!("{corpus_file}.yml")),
        )
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&plain);
        assert!(
            yaml.contains(&b64),
            "{name}: payload not found in {corpus_file}.yml"
        );
        // And our own framing of the same bytes round-trips.
        assert_eq!(
            decompress_stream(&compress_stream(&plain), len.parse().unwrap()).unwrap(),
            plain
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}
