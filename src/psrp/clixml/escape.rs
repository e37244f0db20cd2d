//! The `_xHHHH_` string escapes of CLIXML (MS-PSRP 2.2.5.3.2), both ways.
//!
//! PowerShell escapes control characters, C1 characters, characters outside the BMP (as two
//! UTF-16 surrogate escapes) and any literal `_x`/`_X` (as `_x005F_x`). Decoding follows
//! .NET `XmlConvert.DecodeName`: `_xHHHHHHHH_` (a code point above the BMP) or `_xHHHH_`
//! (a UTF-16 code unit; a surrogate pair spread over two escapes is joined). A lone
//! surrogate becomes U+FFFD. This module does XML-level escaping of nothing: that is the
//! reader's and writer's job.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Decodes `_xHHHH_` escapes; borrows when there are none.
pub fn decode(text: &str) -> Cow<'_, str> {
    if !text.contains("_x") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut pending_high: Option<u16> = None;
    let mut copied = 0; // start of the not-yet-copied run
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'_') && bytes.get(i + 1) == Some(&b'x') {
            if let Some(c) = hex_at(bytes, i + 2, 8).and_then(wide_char) {
                if bytes.get(i + 10) == Some(&b'_') {
                    flush(&mut out, text, copied, i, &mut pending_high);
                    out.push(c);
                    i += 11;
                    copied = i;
                    continue;
                }
            }
            if let Some(unit) = hex_at(bytes, i + 2, 4) {
                if bytes.get(i + 6) == Some(&b'_') {
                    flush(&mut out, text, copied, i, &mut pending_high);
                    // Four hex digits always fit; the fallback is never taken.
                    let unit = u16::try_from(unit).unwrap_or(0xFFFD);
                    push_unit(&mut out, unit, &mut pending_high);
                    i += 7;
                    copied = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    flush(&mut out, text, copied, bytes.len(), &mut pending_high);
    Cow::Owned(out)
}

/// Copies `text[from..to]` (a run without escapes) after closing any pending surrogate.
fn flush(out: &mut String, text: &str, from: usize, to: usize, pending_high: &mut Option<u16>) {
    if from < to {
        if pending_high.take().is_some() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
        // Escapes are ASCII, so run boundaries are char boundaries.
        out.push_str(text.get(from..to).unwrap_or_default());
    } else if to == text.len() && pending_high.take().is_some() {
        out.push(char::REPLACEMENT_CHARACTER);
    }
}

fn push_unit(out: &mut String, unit: u16, pending_high: &mut Option<u16>) {
    match unit {
        0xD800..=0xDBFF => {
            if pending_high.replace(unit).is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
        0xDC00..=0xDFFF => match pending_high.take() {
            Some(high) => {
                let c = char::decode_utf16([high, unit])
                    .next()
                    .and_then(Result::ok)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                out.push(c);
            }
            None => out.push(char::REPLACEMENT_CHARACTER),
        },
        _ => {
            if pending_high.take().is_some() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            out.push(char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
}

fn hex_at(bytes: &[u8], at: usize, digits: usize) -> Option<u32> {
    let slice = bytes.get(at..at + digits)?;
    slice.iter().try_fold(0u32, |acc, b| {
        let d = char::from(*b).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

fn wide_char(value: u32) -> Option<char> {
    if (0x1_0000..=0x10_FFFF).contains(&value) {
        char::from_u32(value)
    } else {
        None
    }
}

/// Encodes a string the way PowerShell does before XML escaping; borrows when nothing needs
/// escaping.
pub fn encode(text: &str) -> Cow<'_, str> {
    let needs =
        |c: char| matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}') || u32::from(c) > 0xFFFF;
    let bytes = text.as_bytes();
    let has_x = bytes
        .windows(2)
        .any(|w| w.first() == Some(&b'_') && matches!(w.get(1), Some(b'x' | b'X')));
    if !has_x && !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' && matches!(chars.peek(), Some('x' | 'X')) {
            out.push_str("_x005F_");
        } else if needs(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "_x{unit:04X}_");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}
