//! Canonical Huffman codes of MS-XCA LZ77+Huffman ([MS-XCA] 2.1.4.2, 2.2.4).
//!
//! The alphabet has 512 symbols (0–255 literals, 256–511 matches); each code is at most 15
//! bits and the code lengths travel as 256 bytes of nibbles (even symbol in the low nibble).
//! Codes are canonical: ordered by (length, symbol), read most significant bit first. This
//! file builds the decoder's lookup structure from a table and, for the encoder, builds
//! length-limited code lengths from symbol counts. It does no bit I/O.

use super::XpressError;

/// Number of symbols in the alphabet.
pub(crate) const SYMBOLS: usize = 512;
/// Size of the packed code-length table at the start of every block.
pub(crate) const TABLE_LEN: usize = SYMBOLS / 2;
/// Longest code the format allows (lengths are stored in 4 bits).
pub(crate) const MAX_CODE_LEN: u32 = 15;
/// Codes up to this length decode with one table lookup; longer ones walk the lengths.
const FAST_BITS: u32 = 10;
/// Marks a fast-table slot whose code is longer than `FAST_BITS`.
const SLOW: u16 = u16::MAX;

/// Decoder for one block's canonical code.
#[derive(Debug)]
pub(crate) struct DecodeTable {
    /// Code length per symbol (0 = unused).
    lengths: [u8; SYMBOLS],
    /// `FAST_BITS`-bit prefix → symbol, or `SLOW`.
    fast: Vec<u16>,
    /// First canonical code of each length (index = length).
    first_code: [u32; 16],
    /// Number of symbols of each length.
    count: [u32; 16],
    /// Index into `sorted` of the first symbol of each length.
    first_index: [u32; 16],
    /// Used symbols in canonical order (length, then symbol).
    sorted: Vec<u16>,
}

// === impl DecodeTable ===

impl DecodeTable {
    /// Parses the 256-byte code-length table and checks that it is a complete prefix code,
    /// as [MS-XCA] 2.2.4 requires (the spec's 2^15-entry table must be exactly full).
    pub(crate) fn parse(table: &[u8; TABLE_LEN]) -> Result<Self, XpressError> {
        let mut lengths = [0u8; SYMBOLS];
        for (pair, byte) in lengths.chunks_exact_mut(2).zip(table.iter()) {
            if let [even, odd] = pair {
                *even = byte & 0x0f;
                *odd = byte >> 4;
            }
        }

        let mut count = [0u32; 16];
        for &len in &lengths {
            if let Some(c) = count.get_mut(usize::from(len)) {
                *c += 1;
            }
        }
        let filled: u32 = (1..=MAX_CODE_LEN)
            .map(|len| count.get(len as usize).copied().unwrap_or(0) << (MAX_CODE_LEN - len))
            .sum();
        if filled != 1 << MAX_CODE_LEN {
            return Err(XpressError::InvalidTable { filled });
        }

        let mut first_code = [0u32; 16];
        let mut first_index = [0u32; 16];
        let mut code = 0u32;
        let mut index = 0u32;
        for len in 1..=MAX_CODE_LEN as usize {
            let n = count.get(len).copied().unwrap_or(0);
            if let (Some(fc), Some(fi)) = (first_code.get_mut(len), first_index.get_mut(len)) {
                *fc = code;
                *fi = index;
            }
            code = (code + n) << 1;
            index += n;
        }

        let mut sorted = Vec::with_capacity(index as usize);
        for len in 1..=15u8 {
            for (symbol, &l) in (0u16..).zip(lengths.iter()) {
                if l == len {
                    sorted.push(symbol);
                }
            }
        }

        let mut fast = vec![SLOW; 1 << FAST_BITS];
        let mut next = first_code;
        for &symbol in &sorted {
            let len = u32::from(lengths.get(usize::from(symbol)).copied().unwrap_or(0));
            if len == 0 || len > FAST_BITS {
                continue;
            }
            let Some(code) = next.get_mut(len as usize) else {
                continue;
            };
            let start = (*code << (FAST_BITS - len)) as usize;
            let end = ((*code + 1) << (FAST_BITS - len)) as usize;
            *code += 1;
            if let Some(slots) = fast.get_mut(start..end) {
                slots.fill(symbol);
            }
        }

        Ok(Self {
            lengths,
            fast,
            first_code,
            count,
            first_index,
            sorted,
        })
    }

    /// Decodes one symbol from the top 15 bits of `window` (the bit register's next bits,
    /// left-aligned in a u32). Returns the symbol and its code length.
    pub(crate) fn decode(&self, window: u32) -> (u16, u32) {
        let prefix = (window >> (32 - FAST_BITS)) as usize;
        if let Some(&symbol) = self.fast.get(prefix) {
            if symbol != SLOW {
                let len = self.lengths.get(usize::from(symbol)).copied().unwrap_or(0);
                return (symbol, u32::from(len));
            }
        }
        for len in FAST_BITS + 1..=MAX_CODE_LEN {
            let code = window >> (32 - len);
            let l = len as usize;
            let (first, n, at) = (
                self.first_code.get(l).copied().unwrap_or(0),
                self.count.get(l).copied().unwrap_or(0),
                self.first_index.get(l).copied().unwrap_or(0),
            );
            if code >= first && code - first < n {
                let symbol = self
                    .sorted
                    .get((at + code - first) as usize)
                    .copied()
                    .unwrap_or(0);
                return (symbol, len);
            }
        }
        // INVARIANT: a complete code (checked in `parse`) decodes every 15-bit window, so
        // this point is unreachable; answer with a harmless literal rather than panic.
        (0, MAX_CODE_LEN)
    }
}

/// An encoder's code: length and canonical code per symbol.
#[derive(Debug)]
pub(crate) struct EncodeTable {
    /// Code length per symbol (0 = unused).
    pub(crate) lengths: [u8; SYMBOLS],
    /// Canonical code per symbol, right-aligned.
    pub(crate) codes: [u16; SYMBOLS],
}

// === impl EncodeTable ===

impl EncodeTable {
    /// Builds a complete, length-limited (≤ 15 bits) canonical code for the given counts.
    /// Symbols with a zero count get no code. At least two symbols always get codes, because
    /// a decoder rejects a table that does not fill the code space.
    pub(crate) fn from_counts(counts: &[u32; SYMBOLS]) -> Self {
        let mut used: Vec<(u32, u16)> = (0u16..)
            .zip(counts.iter())
            .filter(|(_, &c)| c > 0)
            .map(|(s, &c)| (c, s))
            .collect();
        // A one-symbol code cannot be complete; add a second symbol of count 1.
        while used.len() < 2 {
            let spare = (0u16..)
                .find(|s| !used.iter().any(|&(_, u)| u == *s))
                .unwrap_or(0);
            used.push((1, spare));
        }
        // Most frequent first; among equal counts the higher symbol first. Shorter codes go
        // to the front, which reproduces the [MS-XCA] 3.2 examples byte for byte.
        used.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));

        let bl_count = limited_length_counts(&used);
        let mut lengths = [0u8; SYMBOLS];
        let mut it = used.iter();
        for (len, &n) in (0u8..).zip(bl_count.iter()) {
            for _ in 0..n {
                if let Some(&(_, symbol)) = it.next() {
                    if let Some(l) = lengths.get_mut(usize::from(symbol)) {
                        *l = len;
                    }
                }
            }
        }

        let mut next_code = [0u16; 16];
        let mut code = 0u16;
        for len in 1..16 {
            let previous = bl_count.get(len - 1).copied().unwrap_or(0);
            code = (code + u16::try_from(previous).unwrap_or(0)) << 1;
            if let Some(nc) = next_code.get_mut(len) {
                *nc = code;
            }
        }
        let mut codes = [0u16; SYMBOLS];
        for (code_slot, &len) in codes.iter_mut().zip(lengths.iter()) {
            if len > 0 {
                if let Some(nc) = next_code.get_mut(usize::from(len)) {
                    *code_slot = *nc;
                    *nc += 1;
                }
            }
        }
        Self { lengths, codes }
    }

    /// The 256-byte packed table that starts the block.
    pub(crate) fn packed(&self) -> [u8; TABLE_LEN] {
        let mut table = [0u8; TABLE_LEN];
        for (byte, pair) in table.iter_mut().zip(self.lengths.chunks_exact(2)) {
            if let [even, odd] = pair {
                *byte = (even & 0x0f) | (odd << 4);
            }
        }
        table
    }
}

/// Number of codes of each length (index = length, 0..=15) for symbols sorted by descending
/// count: a Huffman tree, then the lengths over 15 folded back while keeping the code
/// complete (the Kraft sum stays exactly 1).
fn limited_length_counts(sorted_desc: &[(u32, u16)]) -> [u32; 16] {
    let depths = huffman_depths(sorted_desc);
    let mut bl_count = [0u32; 16];
    for depth in depths {
        let slot = depth.min(MAX_CODE_LEN) as usize;
        if let Some(c) = bl_count.get_mut(slot) {
            *c += 1;
        }
    }
    let kraft = |bl: &[u32; 16]| -> u32 {
        (1..=MAX_CODE_LEN)
            .map(|len| bl.get(len as usize).copied().unwrap_or(0) << (MAX_CODE_LEN - len))
            .sum()
    };
    let mut total = kraft(&bl_count);
    // Clamping deep codes to 15 can only overfill the code space; each round removes one
    // 15-bit code's worth (drop a 15-bit leaf, split a shorter leaf into two longer ones).
    while total > 1 << MAX_CODE_LEN {
        if let Some(c) = bl_count.get_mut(MAX_CODE_LEN as usize) {
            *c -= 1;
        }
        for len in (1..MAX_CODE_LEN as usize).rev() {
            if bl_count.get(len).copied().unwrap_or(0) > 0 {
                if let Some(c) = bl_count.get_mut(len) {
                    *c -= 1;
                }
                if let Some(c) = bl_count.get_mut(len + 1) {
                    *c += 2;
                }
                break;
            }
        }
        total -= 1;
    }
    bl_count
}

/// Depths of a Huffman tree over the given counts (sorted by descending count), returned in
/// ascending order so that the most frequent symbol gets the smallest depth.
fn huffman_depths(sorted_desc: &[(u32, u16)]) -> Vec<u32> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    // Nodes: leaves 0..n, then internal nodes; parent links give depths.
    let n = sorted_desc.len();
    let mut parent: Vec<usize> = vec![usize::MAX; 2 * n];
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = sorted_desc
        .iter()
        .enumerate()
        .map(|(i, &(c, _))| Reverse((u64::from(c), i)))
        .collect();
    let mut next = n;
    while heap.len() > 1 {
        let (Some(Reverse((wa, a))), Some(Reverse((wb, b)))) = (heap.pop(), heap.pop()) else {
            break;
        };
        if let Some(p) = parent.get_mut(a) {
            *p = next;
        }
        if let Some(p) = parent.get_mut(b) {
            *p = next;
        }
        heap.push(Reverse((wa + wb, next)));
        next += 1;
    }
    let mut depths: Vec<u32> = (0..n)
        .map(|leaf| {
            let mut depth = 0u32;
            let mut node = leaf;
            while let Some(&p) = parent.get(node) {
                if p == usize::MAX {
                    break;
                }
                depth += 1;
                node = p;
            }
            depth
        })
        .collect();
    depths.sort_unstable();
    depths
}
