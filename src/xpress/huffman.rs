//! One MS-XCA LZ77+Huffman block: decode ([MS-XCA] 2.2.4) and encode (2.1.4.3).
//!
//! A block is a 256-byte table of 4-bit code lengths followed by a bit stream read as
//! little-endian 16-bit words, most significant bit first. Long match lengths are raw bytes
//! placed in the stream at the point where a decoder that reads ahead by two words finds them.
//! The WinRM framing compresses at most 65,536 bytes per chunk, which is exactly one block,
//! so this file handles single blocks only and refuses larger sizes.
//!
//! The decoder follows the spec's pseudocode and Microsoft's reference decoder: it needs the
//! full 260-byte head, every refill must find its two bytes, every match must lie inside the
//! output produced so far and inside the declared size. It never reads or writes outside
//! its buffers and allocates at most the declared size.

use super::codes::{DecodeTable, EncodeTable, SYMBOLS, TABLE_LEN};
use super::lz77::{self, Token};
use super::XpressError;

/// Most output one block may produce.
pub const MAX_BLOCK_LEN: usize = 65536;
/// The end-of-data symbol the encoder appends ([MS-XCA] 2.1.4.3).
const EOF_SYMBOL: usize = 256;

/// Decompresses one LZ77+Huffman block that decodes to exactly `size` bytes.
///
/// Bytes after the point where `size` bytes have been produced are ignored (the encoder's
/// end-of-data symbol and padding live there), as in Microsoft's decoder.
pub fn decompress(input: &[u8], size: usize) -> Result<Vec<u8>, XpressError> {
    if size > MAX_BLOCK_LEN {
        return Err(XpressError::BlockTooLarge { size });
    }
    if size == 0 {
        return Ok(Vec::new());
    }
    let table: &[u8; TABLE_LEN] = input
        .get(..TABLE_LEN)
        .and_then(|t| t.try_into().ok())
        .ok_or(XpressError::TruncatedTable {
            available: input.len(),
        })?;
    if input.len() < TABLE_LEN + 4 {
        return Err(XpressError::TruncatedTable {
            available: input.len(),
        });
    }
    let codes = DecodeTable::parse(table)?;
    let mut bits = BitReader::new(input)?;
    let mut out: Vec<u8> = Vec::with_capacity(size);

    while out.len() < size {
        let (symbol, len) = codes.decode(bits.window());
        bits.consume(len)?;
        if let Ok(literal) = u8::try_from(symbol) {
            out.push(literal);
            continue;
        }
        // Match symbols 256..=511: low nibble = length class, high nibble = distance bits.
        let m = symbol.saturating_sub(256);
        let offset_bits = u32::from(m >> 4);
        let length = match usize::from(m & 15) {
            15 => bits.long_length()?,
            short => short + 3,
        };
        let distance = (1usize << offset_bits) + bits.peek(offset_bits) as usize;
        bits.consume(offset_bits)?;

        let start = out
            .len()
            .checked_sub(distance)
            .ok_or(XpressError::DistanceTooFar {
                output_offset: out.len(),
                distance,
            })?;
        if length > size - out.len() {
            return Err(XpressError::MatchOverrun {
                output_offset: out.len(),
                length,
                declared: size,
            });
        }
        if distance >= length {
            out.extend_from_within(start..start + length);
        } else {
            // Overlapping copy ("aaaa" as a + match(1, 3)): byte by byte, as the spec says.
            for i in start..start + length {
                let byte = out.get(i).copied().unwrap_or(0);
                out.push(byte);
            }
        }
    }
    Ok(out)
}

/// The spec's 32-bit bit register: `bits` holds the next `16 + extra` bits left-aligned.
#[derive(Debug)]
struct BitReader<'a> {
    input: &'a [u8],
    /// Byte offset of the next unread input byte.
    pos: usize,
    bits: u32,
    extra: i32,
}

// === impl BitReader ===

impl<'a> BitReader<'a> {
    fn new(input: &'a [u8]) -> Result<Self, XpressError> {
        let mut reader = Self {
            input,
            pos: TABLE_LEN,
            bits: 0,
            extra: 16,
        };
        let high = reader.read_u16()?;
        let low = reader.read_u16()?;
        reader.bits = u32::from(high) << 16 | u32::from(low);
        Ok(reader)
    }

    /// The next bits, left-aligned (at least 16 of them are valid).
    fn window(&self) -> u32 {
        self.bits
    }

    /// The next `n` (0..=15) bits as a number.
    fn peek(&self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            self.bits >> (32 - n)
        }
    }

    /// Drops `n` (0..=15) bits and refills one 16-bit word when the register runs low.
    fn consume(&mut self, n: u32) -> Result<(), XpressError> {
        if n == 0 {
            return Ok(());
        }
        self.bits <<= n;
        self.extra -= n as i32;
        if self.extra < 0 {
            let word = self.read_u16()?;
            self.bits |= u32::from(word) << (-self.extra) as u32;
            self.extra += 16;
        }
        Ok(())
    }

    /// A match length escaped with length class 15: one byte, or 255 then a u16, or
    /// 255, 0u16 then a u32 (the encoder's form for lengths ≥ 65539).
    fn long_length(&mut self) -> Result<usize, XpressError> {
        let byte = self.read_u8()?;
        if byte < 255 {
            return Ok(usize::from(byte) + 15 + 3);
        }
        let at = self.pos;
        let mut value = u32::from(self.read_u16()?);
        if value == 0 {
            value = self.read_u32()?;
        }
        if value < 15 {
            return Err(XpressError::InvalidMatchLength { value, offset: at });
        }
        Ok(value as usize + 3)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], XpressError> {
        let bytes = self
            .input
            .get(self.pos..self.pos.saturating_add(N))
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(XpressError::TruncatedInput {
                offset: self.pos,
                needed: N,
            })?;
        self.pos += N;
        Ok(bytes)
    }

    fn read_u8(&mut self) -> Result<u8, XpressError> {
        self.take::<1>().map(|[b]| b)
    }

    fn read_u16(&mut self) -> Result<u16, XpressError> {
        self.take::<2>().map(u16::from_le_bytes)
    }

    fn read_u32(&mut self) -> Result<u32, XpressError> {
        self.take::<4>().map(u32::from_le_bytes)
    }
}

/// Compresses one block of at most 65,536 bytes with LZ77+Huffman.
///
/// The output always decodes back to `input` (given `input.len()` as the size); it may be
/// longer than the input for small or incompressible data, which is why the framing stores
/// such chunks instead.
pub fn compress(input: &[u8]) -> Result<Vec<u8>, XpressError> {
    if input.len() > MAX_BLOCK_LEN {
        return Err(XpressError::BlockTooLarge { size: input.len() });
    }
    let tokens = lz77::tokenize(input);
    let mut counts = [0u32; SYMBOLS];
    for token in &tokens {
        if let Some(c) = counts.get_mut(symbol_of(token)) {
            *c += 1;
        }
    }
    if let Some(c) = counts.get_mut(EOF_SYMBOL) {
        *c += 1;
    }
    let code = EncodeTable::from_counts(&counts);

    let mut w = BitWriter::new(code.packed(), input.len());
    let put_symbol = |w: &mut BitWriter, symbol: usize| {
        let len = code.lengths.get(symbol).copied().unwrap_or(0);
        let bits = code.codes.get(symbol).copied().unwrap_or(0);
        w.write_bits(u32::from(len), u32::from(bits));
    };
    for token in &tokens {
        put_symbol(&mut w, symbol_of(token));
        if let Token::Match { len, dist } = *token {
            let rest = len - 3;
            if rest >= 15 {
                match u8::try_from(rest - 15) {
                    Ok(b) if b < 255 => w.write_byte(b),
                    _ => w.write_long_length(rest),
                }
            }
            let high = high_bit(dist);
            // INVARIANT: dist <= 65535 (lz77::MAX_DISTANCE), so the low bits fit a u32.
            w.write_bits(high, u32::try_from(dist - (1 << high)).unwrap_or(0));
        }
    }
    put_symbol(&mut w, EOF_SYMBOL);
    Ok(w.finish())
}

/// The Huffman symbol of a token ([MS-XCA] 2.1.4.1).
fn symbol_of(token: &Token) -> usize {
    match *token {
        Token::Literal(b) => usize::from(b),
        Token::Match { len, dist } => 256 + (len - 3).min(15) + 16 * high_bit(dist) as usize,
    }
}

/// Index of the highest set bit (dist ≥ 1).
fn high_bit(dist: usize) -> u32 {
    usize::BITS - 1 - dist.max(1).leading_zeros()
}

/// The spec's bit writer (2.1.4.3): 16-bit words go to reserved slots two words ahead of the
/// byte position, so raw length bytes land where the decoder reads them.
#[derive(Debug)]
struct BitWriter {
    out: Vec<u8>,
    /// Slot of the word being filled.
    slot1: usize,
    /// Slot reserved for the word after it.
    slot2: usize,
    free: u32,
    next: u32,
}

// === impl BitWriter ===

impl BitWriter {
    fn new(table: [u8; TABLE_LEN], hint: usize) -> Self {
        let mut out = Vec::with_capacity(TABLE_LEN + 4 + hint);
        out.extend_from_slice(&table);
        out.extend_from_slice(&[0; 4]);
        Self {
            out,
            slot1: TABLE_LEN,
            slot2: TABLE_LEN + 2,
            free: 16,
            next: 0,
        }
    }

    /// Writes the low `n` (0..=16) bits of `bits`, most significant first.
    fn write_bits(&mut self, n: u32, bits: u32) {
        if self.free >= n {
            self.free -= n;
            self.next = if n == 0 {
                self.next
            } else {
                (self.next << n) | bits
            };
        } else {
            let spill = n - self.free;
            self.next = (self.next << self.free) | (bits >> spill);
            self.put_word(self.slot1, self.next);
            self.slot1 = self.slot2;
            self.slot2 = self.out.len();
            self.out.extend_from_slice(&[0, 0]);
            self.free = 16 - spill;
            // Only the low `spill` bits are still unwritten; the rest shift out later.
            self.next = bits;
        }
    }

    fn write_byte(&mut self, b: u8) {
        self.out.push(b);
    }

    /// Length escape for `rest` = length − 3 ≥ 270: 255, then u16, or u16 0 and u32.
    fn write_long_length(&mut self, rest: usize) {
        self.out.push(255);
        match u16::try_from(rest) {
            Ok(v) => self.out.extend_from_slice(&v.to_le_bytes()),
            Err(_) => {
                self.out.extend_from_slice(&[0, 0]);
                let v = u32::try_from(rest).unwrap_or(u32::MAX);
                self.out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    fn put_word(&mut self, slot: usize, word: u32) {
        let bytes = (word & 0xffff).to_le_bytes();
        if let Some(dst) = self.out.get_mut(slot..slot + 2) {
            dst.copy_from_slice(bytes.get(..2).unwrap_or(&[0, 0]));
        }
    }

    /// Flushes the last word; the reserved slot after it stays zero as padding.
    fn finish(mut self) -> Vec<u8> {
        let word = if self.free >= 32 {
            0
        } else {
            self.next << self.free
        };
        self.put_word(self.slot1, word);
        self.out
    }
}
