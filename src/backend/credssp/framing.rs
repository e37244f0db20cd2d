//! The body framing of CredSSP message encryption (MS-WSMV 2.2.9.1; PROTOCOL.md §7): reading
//! the HTTP content type and splitting a `multipart/encrypted` or
//! `multipart/x-multi-encrypted` body into its parts' TLS records. Pure: no I/O, no
//! cryptography (the tunnel decrypts the records).

use crate::backend::crypto::{parse_multipart, CryptoError, EncryptionProtocol};

/// TLS record header: content type, version, u16 length (RFC 8446 5.1).
pub(super) const RECORD_HEADER_LEN: usize = 5;

/// Largest TLS ciphertext record (RFC 8446 5.2: 2^14 + 256).
const MAX_RECORD_LEN: usize = 16 * 1024 + 256;

/// The boundary of a CredSSP-encrypted body from its HTTP `Content-Type`
/// (`multipart/encrypted` or `multipart/x-multi-encrypted` with the CredSSP protocol), `None`
/// for a non-multipart content type.
pub fn encrypted_boundary(content_type: &str) -> Result<Option<String>, CryptoError> {
    match parse_multipart(content_type, true)? {
        None => Ok(None),
        Some(t) if t.protocol == EncryptionProtocol::CredSsp => Ok(Some(t.boundary)),
        Some(_) => Err(CryptoError::ContentType {
            content_type: content_type.to_owned(),
        }),
    }
}

/// One part of a CredSSP-encrypted body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedRecords<'a> {
    /// `Length=`: the SOAP bytes the records carry.
    pub original_length: usize,
    /// The part's TLS records (the trailer-length split is only a framing convention: the
    /// records are fed to the tunnel whole).
    pub records: &'a [u8],
}

/// Splits a `multipart/encrypted` or `multipart/x-multi-encrypted` CredSSP body into its
/// parts. The end of each part's binary payload is found from the TLS record lengths, never
/// by searching the ciphertext for the boundary.
pub fn split_parts<'a>(
    body: &'a [u8],
    boundary: &str,
) -> Result<Vec<EncryptedRecords<'a>>, CryptoError> {
    let mut parts = Vec::new();
    let mut pos = 0;
    loop {
        let (last, next) = boundary_line(body, pos, boundary)
            .ok_or(CryptoError::MissingBoundary { offset: pos })?;
        if last {
            if parts.is_empty() {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "no encrypted part",
                });
            }
            let rest = body.get(next..).unwrap_or_default();
            if !rest.iter().all(u8::is_ascii_whitespace) {
                return Err(CryptoError::BadPartHeader {
                    offset: next,
                    reason: "data after the closing boundary",
                });
            }
            return Ok(parts);
        }
        pos = next;
        let (original_length, next) = part_headers(body, pos, boundary)?;
        pos = next;
        let (trailer_len, start) = octet_stream_header(body, pos)?;
        pos = start;
        while let Some(content_type) = body.get(pos) {
            // TLS content types are 20..=24; a boundary line starts with '-'.
            if !(20..=24).contains(content_type) {
                break;
            }
            let header = body
                .get(pos..pos + RECORD_HEADER_LEN)
                .ok_or(CryptoError::Truncated {
                    offset: pos,
                    needed: (pos + RECORD_HEADER_LEN).saturating_sub(body.len()),
                })?;
            let len = match header {
                [_, _, _, hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => 0,
            };
            if len > MAX_RECORD_LEN {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "tls record longer than 2^14 + 256",
                });
            }
            let end = pos + RECORD_HEADER_LEN + len;
            if end > body.len() {
                return Err(CryptoError::Truncated {
                    offset: pos,
                    needed: end - body.len(),
                });
            }
            pos = end;
        }
        let records = body.get(start..pos).unwrap_or_default();
        if records.is_empty() {
            return Err(CryptoError::BadPartHeader {
                offset: start,
                reason: "part holds no tls record",
            });
        }
        if trailer_len > records.len() {
            return Err(CryptoError::HeaderTooLong {
                offset: start.saturating_sub(4),
                len: trailer_len,
            });
        }
        parts.push(EncryptedRecords {
            original_length,
            records,
        });
        // Tolerate a line break between the records and the next boundary.
        if body.get(pos..pos + 2) == Some(b"\r\n".as_slice()) {
            pos += 2;
        }
    }
}

/// Matches `--<boundary>\r\n` (returns false) or `--<boundary>--` (returns true) at `pos`,
/// tolerating blanks after `--`; returns the position after the line.
fn boundary_line(body: &[u8], pos: usize, boundary: &str) -> Option<(bool, usize)> {
    let rest = body.get(pos..)?.strip_prefix(b"--")?;
    let blanks = rest
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let rest = rest.get(blanks..)?.strip_prefix(boundary.as_bytes())?;
    let used = 2 + blanks + boundary.len();
    if rest.starts_with(b"\r\n") {
        Some((false, pos + used + 2))
    } else if rest.starts_with(b"--") {
        Some((true, pos + used + 2))
    } else {
        None
    }
}

/// Reads one CRLF-terminated line at `pos`: (line, position after it).
fn line_at(body: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = body.get(pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..end)?, pos + end + 2))
}

/// The first part's header lines up to the next boundary line: checks the protocol and
/// returns `Length=` and the position after that boundary line.
fn part_headers(
    body: &[u8],
    mut pos: usize,
    boundary: &str,
) -> Result<(usize, usize), CryptoError> {
    let mut protocol_ok = false;
    let mut length = None;
    loop {
        if let Some((false, next)) = boundary_line(body, pos, boundary) {
            let length = length.ok_or(CryptoError::BadPartHeader {
                offset: pos,
                reason: "missing OriginalContent length",
            })?;
            if !protocol_ok {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "part is not HTTP-CredSSP-session-encrypted",
                });
            }
            return Ok((length, next));
        }
        let (line, next) =
            line_at(body, pos).ok_or(CryptoError::MissingBoundary { offset: pos })?;
        let text = std::str::from_utf8(line).map_err(|_| CryptoError::BadPartHeader {
            offset: pos,
            reason: "header line is not utf-8",
        })?;
        if let Some((name, value)) = text.trim().split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-type" => {
                    protocol_ok =
                        EncryptionProtocol::from_name(value) == Some(EncryptionProtocol::CredSsp);
                }
                "originalcontent" => {
                    let len = value
                        .split(';')
                        .filter_map(|p| p.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .ok_or(CryptoError::BadPartHeader {
                            offset: pos,
                            reason: "OriginalContent has no numeric Length",
                        })?;
                    length = Some(len);
                }
                _ => {}
            }
        }
        pos = next;
    }
}

/// The `application/octet-stream` line and the u32 trailer length after it: returns the
/// trailer length and the position of the first TLS record.
fn octet_stream_header(body: &[u8], pos: usize) -> Result<(usize, usize), CryptoError> {
    let (line, next) = line_at(body, pos).ok_or(CryptoError::BadPartHeader {
        offset: pos,
        reason: "missing octet-stream part header",
    })?;
    let is_octet = std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.trim().split_once(':'))
        .is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("content-type")
                && v.trim().eq_ignore_ascii_case("application/octet-stream")
        });
    if !is_octet {
        return Err(CryptoError::BadPartHeader {
            offset: pos,
            reason: "second part is not application/octet-stream",
        });
    }
    let len_bytes: [u8; 4] = body
        .get(next..next + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(CryptoError::Truncated {
            offset: next,
            needed: (next + 4).saturating_sub(body.len()),
        })?;
    let trailer_len = usize::try_from(u32::from_le_bytes(len_bytes)).unwrap_or(usize::MAX);
    Ok((trailer_len, next + 4))
}
