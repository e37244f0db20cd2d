//! Cross-checks hopgate's xpress codec against two independent MS-XCA LZ77+Huffman
//! implementations: `xpress-huffman` (a decoder) reads what we compress, and `compcol`'s
//! encoder produces streams that we must decode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    reason = "test code: panics are failures, inputs are built here"
)]

use compcol::xpress_huffman::XpressHuffman;
use hopgate::xpress::huffman;
use proptest::prelude::*;

/// compcol prefixes its stream with a u32 LE length; strip and check it.
fn compcol_compress(data: &[u8]) -> Vec<u8> {
    let framed = compcol::vec::compress_to_vec::<XpressHuffman>(data).unwrap();
    let (len, body) = framed.split_at(4);
    assert_eq!(
        u32::from_le_bytes(len.try_into().unwrap()) as usize,
        data.len()
    );
    body.to_vec()
}

/// `xpress-huffman` stops decoding as soon as its input cursor reaches the end of the
/// buffer, even with symbols still in its 32-bit register; Microsoft's decoder and the spec
/// only need the bits they consume. A block that ends right after its last word (a tiny
/// input: table + 4 bytes) therefore needs two bytes of padding for that oracle only;
/// trailing bytes after the last symbol mean nothing in the format.
fn for_xpress_huffman(block: &[u8]) -> Vec<u8> {
    let mut padded = block.to_vec();
    padded.extend_from_slice(&[0, 0]);
    padded
}

fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = seed | 1;
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let word = [
            "<S N=\"Cmd\">",
            "Get-ChildItem",
            "</S>",
            " -Path C:\\",
            "\r\n",
            "Obj",
        ][(s % 6) as usize];
        out.extend_from_slice(word.as_bytes());
        out.push(b'a' + (s >> 60) as u8);
    }
    out.truncate(len);
    out
}

#[test]
fn our_blocks_decode_with_xpress_huffman() {
    for (i, len) in [1usize, 2, 17, 300, 4096, 65535, 65536]
        .into_iter()
        .enumerate()
    {
        for data in [text(len, i as u64 + 1), vec![b'z'; len]] {
            let packed = huffman::compress(&data).unwrap();
            assert_eq!(
                xpress_huffman::decompress(&for_xpress_huffman(&packed), data.len()).unwrap(),
                data
            );
        }
    }
}

#[test]
fn compcol_blocks_decode_with_ours() {
    for (i, len) in [1usize, 3, 266, 1000, 30_000, 65536]
        .into_iter()
        .enumerate()
    {
        for data in [text(len, i as u64 + 7), vec![0u8; len]] {
            let packed = compcol_compress(&data);
            assert_eq!(huffman::decompress(&packed, data.len()).unwrap(), data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_blocks_agree_with_both_oracles(
        data in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..=65536),
            (proptest::collection::vec(0u8..6, 1..50), 1usize..3000)
                .prop_map(|(unit, n)| { let mut v = unit.repeat(n); v.truncate(65536); v }),
        ]
    ) {
        let ours = huffman::compress(&data).unwrap();
        prop_assert_eq!(xpress_huffman::decompress(&for_xpress_huffman(&ours), data.len()).unwrap(), data.clone());
        if !data.is_empty() {
            let theirs = compcol_compress(&data);
            prop_assert_eq!(huffman::decompress(&theirs, data.len()).unwrap(), data);
        }
    }
}

/// Writes blocks compressed by us for a third, Python oracle (`dissect.util`'s
/// `lzxpress_huffman.decompress`). Run by `tests/xpress_dissect_check.py`, which sets
/// `XPRESS_DUMP_DIR`; ignored in a plain `cargo test`, which has no Python dependency.
#[test]
#[ignore = "driven by tests/xpress_dissect_check.py"]
fn dump_blocks_for_python_oracle() {
    let dir = std::path::PathBuf::from(std::env::var("XPRESS_DUMP_DIR").unwrap());
    let mut inputs: Vec<Vec<u8>> = vec![b"abc".repeat(100), b"abcdefghijklmnopqrstuvwxyz".to_vec()];
    for (i, len) in [1usize, 5, 266, 999, 4096, 40_000, 65536]
        .into_iter()
        .enumerate()
    {
        inputs.push(text(len, 100 + i as u64));
        inputs.push(vec![0xa5; len]);
        let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64;
        inputs.push(
            (0..len)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 32) as u8
                })
                .collect(),
        );
    }
    for (i, data) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:03}.raw")), data).unwrap();
        std::fs::write(
            dir.join(format!("{i:03}.xh")),
            huffman::compress(data).unwrap(),
        )
        .unwrap();
    }
}

/// Cross-check with Microsoft's own LZ77+Huffman code (`src/xpress.c` of
/// PowerShell/psl-omi-provider, the code behind the OMI PSRP server; not vendored here).
/// A local harness frames inputs with it into `NNN.msframed`; this test checks that we
/// decode each to `NNN.raw`, and writes our framing of `NNN.raw` to `NNN.ours` for the
/// harness to decode in turn. Set `XPRESS_MS_DIR` to the harness's directory.
#[test]
#[ignore = "needs a locally built harness around Microsoft's xpress.c"]
fn ms_reference_crosscheck_files() {
    use hopgate::xpress::{compress_stream, decompress_stream};
    let dir = std::path::PathBuf::from(std::env::var("XPRESS_MS_DIR").unwrap());
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("raw") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let theirs = std::fs::read(path.with_extension("msframed")).unwrap();
        assert_eq!(
            decompress_stream(&theirs, raw.len()).unwrap(),
            raw,
            "{}",
            path.display()
        );
        std::fs::write(path.with_extension("ours"), compress_stream(&raw)).unwrap();
        checked += 1;
    }
    assert!(checked > 0);
}
