//! LZ77 match finding for the LZ77+Huffman encoder ([MS-XCA] 2.1.4.1).
//!
//! Turns one block (at most 65,536 bytes) into literals and (length, distance) matches with
//! hash chains over 3-byte prefixes and one step of lazy evaluation. Distances are 1..=65535
//! and lengths at least 3, the limits of the format. It knows nothing of Huffman codes.

/// Shortest match the format can express.
pub(crate) const MIN_MATCH: usize = 3;
/// Longest distance the format can express (15 extra bits above the high bit).
pub(crate) const MAX_DISTANCE: usize = 65535;
const HASH_BITS: u32 = 15;
/// How many earlier positions to try per position; bounds the work per byte.
const MAX_CHAIN: usize = 32;
/// Stop searching once a match this long is found.
const NICE_LEN: usize = 258;
/// A 3-byte match further back than this costs more bits than three literals.
const FAR_MIN3: usize = 8192;
const NONE: u32 = u32::MAX;

/// One LZ77 item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// A raw byte.
    Literal(u8),
    /// Copy `len` bytes from `dist` bytes back.
    Match {
        /// Length, at least `MIN_MATCH`.
        len: usize,
        /// Distance, 1..=`MAX_DISTANCE`.
        dist: usize,
    },
}

/// Chained hash table over the block being compressed.
struct Finder<'a> {
    data: &'a [u8],
    head: Vec<u32>,
    prev: Vec<u32>,
}

// === impl Finder ===

impl<'a> Finder<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            head: vec![NONE; 1 << HASH_BITS],
            prev: vec![NONE; data.len()],
        }
    }

    fn hash(&self, pos: usize) -> Option<usize> {
        let bytes = self.data.get(pos..pos + MIN_MATCH)?;
        let [a, b, c] = bytes else { return None };
        let v = u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c);
        Some((v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize)
    }

    /// Records `pos` as the newest position with its 3-byte prefix.
    fn insert(&mut self, pos: usize) {
        let (Some(h), Ok(p)) = (self.hash(pos), u32::try_from(pos)) else {
            return;
        };
        if let (Some(head), Some(prev)) = (self.head.get_mut(h), self.prev.get_mut(pos)) {
            *prev = *head;
            *head = p;
        }
    }

    /// Longest earlier match for `pos` (length, distance), if any worth using.
    fn best(&self, pos: usize) -> Option<(usize, usize)> {
        let h = self.hash(pos)?;
        let limit = self.data.len() - pos;
        let mut candidate = self.head.get(h).copied().unwrap_or(NONE);
        let mut best: Option<(usize, usize)> = None;
        let mut tries = 0;
        while candidate != NONE && tries < MAX_CHAIN {
            let cand = candidate as usize;
            let dist = pos - cand;
            if dist > MAX_DISTANCE {
                break;
            }
            let len = common_prefix(self.data, cand, pos, limit);
            let good = len >= MIN_MATCH && (len > MIN_MATCH || dist <= FAR_MIN3);
            if good && best.is_none_or(|(l, _)| len > l) {
                best = Some((len, dist));
                if len >= NICE_LEN || len == limit {
                    break;
                }
            }
            candidate = self.prev.get(cand).copied().unwrap_or(NONE);
            tries += 1;
        }
        best
    }
}

/// Length of the common prefix of `data[a..]` and `data[b..]`, at most `limit` (a < b).
fn common_prefix(data: &[u8], a: usize, b: usize, limit: usize) -> usize {
    match (data.get(a..a + limit), data.get(b..b + limit)) {
        (Some(x), Some(y)) => x.iter().zip(y).take_while(|(p, q)| p == q).count(),
        _ => 0,
    }
}

/// Splits `data` into literals and matches. `data` must be one block (≤ 65,536 bytes); the
/// encoder checks that before calling.
pub(crate) fn tokenize(data: &[u8]) -> Vec<Token> {
    let mut finder = Finder::new(data);
    let mut tokens = Vec::with_capacity(data.len() / 2 + 16);
    let mut pos = 0;
    let mut pending = None; // the match found at `pos` by the previous lazy look-ahead
    while pos < data.len() {
        let current = pending.take().or_else(|| finder.best(pos));
        finder.insert(pos);
        let Some((len, dist)) = current else {
            push_literal(&mut tokens, data, pos);
            pos += 1;
            continue;
        };
        // Lazy evaluation: if the next position has a longer match, emit a literal now.
        if len < NICE_LEN {
            if let Some(next) = finder.best(pos + 1) {
                if next.0 > len {
                    push_literal(&mut tokens, data, pos);
                    pos += 1;
                    pending = Some(next);
                    continue;
                }
            }
        }
        for p in pos + 1..pos + len {
            finder.insert(p);
        }
        tokens.push(Token::Match { len, dist });
        pos += len;
    }
    tokens
}

fn push_literal(tokens: &mut Vec<Token>, data: &[u8], pos: usize) {
    if let Some(&b) = data.get(pos) {
        tokens.push(Token::Literal(b));
    }
}
