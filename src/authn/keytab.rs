//! Reading a Kerberos keytab (the MIT/Heimdal file format, version 0x0502 and 0x0501).
//!
//! Owns: turning keytab bytes into the service keys the Kerberos acceptor decrypts tickets
//! with. Pure: the caller reads the file (or the vault entry) and hands the bytes in. Key
//! bytes are kept in [`Zeroizing`] buffers and never displayed.
//!
//! The format (MIT krb5 `keytab.txt`): a 2-byte version, then records, each a signed 32-bit
//! length (negative: a deleted record of that size, skipped) and the record itself:
//! component count, realm, components, name type (v2 only), timestamp, 8-bit key version,
//! key type, key bytes, and an optional 32-bit key version that supersedes the 8-bit one.
//! All integers are big-endian in version 0x0502 (0x0501 used host order; we read it as
//! big-endian like MIT does on the machines that wrote it, and reject what does not parse).

use zeroize::Zeroizing;

/// One key of one principal.
pub struct KeytabEntry {
    /// Principal name components without the realm, e.g. `["HTTP", "gw.example.com"]`.
    pub components: Vec<String>,
    pub realm: String,
    /// Key version number.
    pub kvno: u32,
    /// RFC 3961 encryption type (17 aes128-cts-hmac-sha1-96, 18 aes256-cts-hmac-sha1-96, ...).
    pub enctype: i32,
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeytabEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeytabEntry")
            .field("principal", &self.principal())
            .field("kvno", &self.kvno)
            .field("enctype", &self.enctype)
            .finish_non_exhaustive()
    }
}

impl KeytabEntry {
    /// `HTTP/gw.example.com@REALM`.
    pub fn principal(&self) -> String {
        format!("{}@{}", self.components.join("/"), self.realm)
    }
}

/// Why keytab bytes could not be read. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeytabError {
    #[error("not a keytab (version bytes {0:#06x})")]
    Version(u16),
    #[error("the keytab ends inside a record (offset {0})")]
    Truncated(usize),
    #[error("a keytab record is malformed at offset {0}")]
    Malformed(usize),
    #[error("a principal name in the keytab is not UTF-8")]
    Name,
}

/// Parses a whole keytab.
pub fn parse(bytes: &[u8]) -> Result<Vec<KeytabEntry>, KeytabError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u16()?;
    let v2 = match version {
        0x0502 => true,
        0x0501 => false,
        other => return Err(KeytabError::Version(other)),
    };
    let mut out = Vec::new();
    while r.pos < bytes.len() {
        let start = r.pos;
        let len = r.i32()?;
        if len == 0 {
            // MIT writes a zero length at the end of a file it truncated: nothing follows.
            break;
        }
        let size =
            usize::try_from(len.unsigned_abs()).map_err(|_| KeytabError::Malformed(start))?;
        let body = r.take(size)?;
        if len < 0 {
            continue; // a hole left by a deleted record
        }
        out.push(record(body, v2).map_err(|e| match e {
            KeytabError::Truncated(_) | KeytabError::Malformed(_) => KeytabError::Malformed(start),
            other => other,
        })?);
    }
    Ok(out)
}

fn record(body: &[u8], v2: bool) -> Result<KeytabEntry, KeytabError> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let mut count = usize::from(r.u16()?);
    if !v2 {
        // Version 1 counted the realm as a component.
        count = count.checked_sub(1).ok_or(KeytabError::Malformed(0))?;
    }
    let realm = r.string()?;
    let mut components = Vec::with_capacity(count.min(8));
    for _ in 0..count {
        components.push(r.string()?);
    }
    if v2 {
        let _name_type = r.u32()?;
    }
    let _timestamp = r.u32()?;
    let kvno8 = r.u8()?;
    let enctype = i32::from(r.u16()?);
    let key_len = usize::from(r.u16()?);
    let key = Zeroizing::new(r.take(key_len)?.to_vec());
    // The 32-bit key version, when present and non-zero, supersedes the 8-bit one.
    let kvno = match r.remaining() {
        n if n >= 4 => match r.u32()? {
            0 => u32::from(kvno8),
            v => v,
        },
        _ => u32::from(kvno8),
    };
    Ok(KeytabEntry {
        components,
        realm,
        kvno,
        enctype,
        key,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeytabError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(KeytabError::Truncated(self.pos))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(KeytabError::Truncated(self.pos))?;
        self.pos = end;
        Ok(slice)
    }
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
    fn u8(&mut self) -> Result<u8, KeytabError> {
        let b = self.take(1)?;
        Ok(b.first().copied().unwrap_or_default())
    }
    fn u16(&mut self) -> Result<u16, KeytabError> {
        let b = self.take(2)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }
    fn u32(&mut self) -> Result<u32, KeytabError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
    fn i32(&mut self) -> Result<i32, KeytabError> {
        self.u32().map(|v| i32::from_be_bytes(v.to_be_bytes()))
    }
    fn string(&mut self) -> Result<String, KeytabError> {
        let len = usize::from(self.u16()?);
        let b = self.take(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| KeytabError::Name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "tests"
    )]
    use super::*;

    /// A keytab as `ktutil` writes it: one aes256 key of HTTP/gw.gw.test@GW.TEST, kvno 2
    /// (8-bit and 32-bit), then a hole of 8 bytes.
    fn sample() -> Vec<u8> {
        let mut rec = Vec::new();
        rec.extend_from_slice(&2u16.to_be_bytes());
        for s in ["GW.TEST", "HTTP", "gw.gw.test"] {
            rec.extend_from_slice(&(s.len() as u16).to_be_bytes());
            rec.extend_from_slice(s.as_bytes());
        }
        rec.extend_from_slice(&1u32.to_be_bytes()); // KRB5_NT_PRINCIPAL
        rec.extend_from_slice(&0x5f00_0000u32.to_be_bytes());
        rec.push(2);
        rec.extend_from_slice(&18u16.to_be_bytes());
        rec.extend_from_slice(&32u16.to_be_bytes());
        rec.extend_from_slice(&[7u8; 32]);
        rec.extend_from_slice(&2u32.to_be_bytes());
        let mut out = vec![0x05, 0x02];
        out.extend_from_slice(&(rec.len() as i32).to_be_bytes());
        out.extend_from_slice(&rec);
        out.extend_from_slice(&(-8i32).to_be_bytes());
        out.extend_from_slice(&[0u8; 8]);
        out
    }

    #[test]
    fn reads_a_record_and_skips_holes() {
        let entries = parse(&sample()).unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.principal(), "HTTP/gw.gw.test@GW.TEST");
        assert_eq!((e.kvno, e.enctype, e.key.len()), (2, 18, 32));
        // Debug output never shows the key.
        assert!(!format!("{e:?}").contains("7, 7"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        for cut in 3..bytes.len() - 12 {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            parse(b"\x04\x02").unwrap_err(),
            KeytabError::Version(0x0402)
        );
    }
}
