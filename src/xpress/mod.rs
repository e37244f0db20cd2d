//! Shell compression for WinRM streams: MS-XCA LZ77+Huffman and the WinRM chunk framing.
//!
//! Windows PowerShell clients ask for `rsp:CompressionType` `xpress` on the Create of a PSRP
//! shell (PROTOCOL.md §9, MS-WSMV 3.1.4.1.31.6). The bytes of every `rsp:Stream` in Send and
//! ReceiveResponse are then cut into chunks of at most 64 KiB; each chunk carries a 4-byte
//! header and is either stored or compressed with MS-XCA LZ77+Huffman ([MS-XCA] 2.1, 2.2).
//!
//! This module owns:
//! * [`huffman`]: one LZ77+Huffman block (at most 65,536 output bytes), decode and encode;
//! * [`framing`]: the WinRM chunk framing around those blocks.
//!
//! It is a pure codec: no I/O, no clock, no logging of payloads. Every decoder treats its
//! input as hostile: every read is bounds-checked, declared sizes are checked against the
//! bytes present, and the total output is capped by the caller. It must not decide policy
//! or know about SOAP; callers hand it the base64-decoded stream bytes.

mod codes;
pub mod framing;
pub mod huffman;
mod lz77;

#[cfg(test)]
mod tests;

pub use framing::{compress_stream, decompress_stream, MAX_CHUNK_LEN, MIN_COMPRESSED_CHUNK_LEN};

/// Everything that can go wrong while decoding (or, for oversize input, encoding) xpress data.
///
/// Offsets inside a block are byte offsets into that block's compressed bytes; framing errors
/// give the byte offset of the chunk header inside the whole stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XpressError {
    /// Fewer than the 256-byte code-length table plus the first two 16-bit words.
    #[error("compressed block too short for a huffman table: {available} bytes, need 260")]
    TruncatedTable {
        /// Bytes present in the block.
        available: usize,
    },
    /// The 512 code lengths do not form a complete prefix code ([MS-XCA] 2.2.4).
    #[error("invalid huffman table: code lengths fill {filled} of 32768 decoding slots")]
    InvalidTable {
        /// Kraft sum scaled to 2^15 (must be exactly 32768).
        filled: u32,
    },
    /// The bit stream or a long-match length needs bytes past the end of the block.
    #[error("compressed block ends early: need {needed} bytes at byte offset {offset}")]
    TruncatedInput {
        /// Byte offset of the read inside the block.
        offset: usize,
        /// How many bytes the read needed.
        needed: usize,
    },
    /// A long match length that the format forbids (below 15 after the 255 escape).
    #[error("invalid long match length {value} at byte offset {offset}")]
    InvalidMatchLength {
        /// The raw length value read.
        value: u32,
        /// Byte offset of the value inside the block.
        offset: usize,
    },
    /// A match reaches back before the first output byte.
    #[error(
        "match at output offset {output_offset} reaches {distance} bytes back, before the start"
    )]
    DistanceTooFar {
        /// Output bytes produced before the match.
        output_offset: usize,
        /// The match distance.
        distance: usize,
    },
    /// A match would write past the declared decompressed size.
    #[error("match of {length} bytes at output offset {output_offset} overruns the declared size {declared}")]
    MatchOverrun {
        /// Output bytes produced before the match.
        output_offset: usize,
        /// The match length.
        length: usize,
        /// The declared decompressed size.
        declared: usize,
    },
    /// A single block may produce at most 65,536 bytes; the WinRM framing never needs more.
    #[error("block size {size} exceeds the 65536-byte limit of one huffman block")]
    BlockTooLarge {
        /// The requested size.
        size: usize,
    },
    /// Fewer than 4 bytes left for a chunk header.
    #[error("chunk header truncated at byte offset {offset}: {available} of 4 bytes")]
    TruncatedChunkHeader {
        /// Offset of the header in the stream.
        offset: usize,
        /// Bytes left.
        available: usize,
    },
    /// The header declares more compressed bytes than the stream holds.
    #[error("chunk at byte offset {offset} declares {declared} bytes but only {available} remain")]
    ChunkOverrun {
        /// Offset of the header in the stream.
        offset: usize,
        /// Declared compressed length.
        declared: usize,
        /// Bytes left after the header.
        available: usize,
    },
    /// A "compressed" chunk longer than its original: no encoder produces this.
    #[error("chunk at byte offset {offset} claims {compressed} compressed bytes for {original} original bytes")]
    CompressedLonger {
        /// Offset of the header in the stream.
        offset: usize,
        /// Declared compressed length.
        compressed: usize,
        /// Declared original length.
        original: usize,
    },
    /// The decoded stream would exceed the caller's cap.
    #[error("decompressed stream exceeds the limit of {limit} bytes at chunk offset {offset}")]
    TooLarge {
        /// Offset of the chunk header that crossed the limit.
        offset: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// A block inside a chunk failed to decode.
    #[error("chunk at byte offset {offset}: {source}")]
    Chunk {
        /// Offset of the chunk header in the stream.
        offset: usize,
        /// What went wrong inside the block.
        #[source]
        source: Box<XpressError>,
    },
}
