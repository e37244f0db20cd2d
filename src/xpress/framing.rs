//! The WinRM chunk framing of compressed shell streams (PROTOCOL.md §9; MS-WSMV footnote 134).
//!
//! A stream's bytes are cut into chunks of at most 64 KiB. Each chunk starts with two
//! little-endian u16: `original_length - 1` and `compressed_length - 1`. Equal lengths mean
//! the chunk is stored as is; otherwise its bytes are one LZ77+Huffman block that decodes to
//! `original_length` bytes. Every chunk is independent. This file checks every header
//! against the bytes present and the caller's cap before it allocates or decodes anything.

use super::huffman;
use super::XpressError;

/// Largest chunk (original bytes) the framing can describe.
pub const MAX_CHUNK_LEN: usize = 65536;
/// Chunks shorter than this are always stored: the 256-byte code table alone would eat any
/// gain (the same threshold Windows uses).
pub const MIN_COMPRESSED_CHUNK_LEN: usize = 266;
const HEADER_LEN: usize = 4;

/// Decodes a framed stream. Fails on any truncated or lying header, on any bad block, and
/// when the output would exceed `max_total` bytes.
pub fn decompress_stream(input: &[u8], max_total: usize) -> Result<Vec<u8>, XpressError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < input.len() {
        let rest = input.get(offset..).unwrap_or(&[]);
        let ([o0, o1, c0, c1], _) =
            rest.split_first_chunk::<HEADER_LEN>()
                .ok_or(XpressError::TruncatedChunkHeader {
                    offset,
                    available: rest.len(),
                })?;
        let original = usize::from(u16::from_le_bytes([*o0, *o1])) + 1;
        let compressed = usize::from(u16::from_le_bytes([*c0, *c1])) + 1;
        if out.len().saturating_add(original) > max_total {
            return Err(XpressError::TooLarge {
                offset,
                limit: max_total,
            });
        }
        let body_start = offset + HEADER_LEN;
        let available = input.len() - body_start;
        let body =
            input
                .get(body_start..body_start + compressed)
                .ok_or(XpressError::ChunkOverrun {
                    offset,
                    declared: compressed,
                    available,
                })?;
        if compressed == original {
            out.extend_from_slice(body);
        } else if compressed > original {
            return Err(XpressError::CompressedLonger {
                offset,
                compressed,
                original,
            });
        } else {
            let block =
                huffman::decompress(body, original).map_err(|source| XpressError::Chunk {
                    offset,
                    source: Box::new(source),
                })?;
            out.extend_from_slice(&block);
        }
        offset = body_start + compressed;
    }
    Ok(out)
}

/// Frames `input` into chunks of at most 64 KiB. A chunk is compressed only when that makes
/// it strictly smaller (equal lengths would read as "stored"); otherwise it is stored.
pub fn compress_stream(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + HEADER_LEN * (input.len() / MAX_CHUNK_LEN + 1));
    for chunk in input.chunks(MAX_CHUNK_LEN) {
        let packed = if chunk.len() >= MIN_COMPRESSED_CHUNK_LEN {
            huffman::compress(chunk)
                .ok()
                .filter(|c| c.len() < chunk.len())
        } else {
            None
        };
        let body = packed.as_deref().unwrap_or(chunk);
        // INVARIANT: 1 <= body.len() <= chunk.len() <= 65536, so both fit a u16 after -1.
        let original = u16::try_from(chunk.len() - 1).unwrap_or(u16::MAX);
        let compressed = u16::try_from(body.len() - 1).unwrap_or(u16::MAX);
        out.extend_from_slice(&original.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}
