//! WinRM message-encryption framing (MS-WSMV 2.2.9.1; PROTOCOL.md §7).
//!
//! Owns the `multipart/encrypted` body layout that carries a sealed SOAP envelope over plain
//! http, for both directions (the backend client and the emulated host use the same code).
//! It does no I/O and no cryptography: the caller seals and unseals with its security context
//! (`backend::ntlm`) and hands this module the signature header and the sealed bytes.
//!
//! Layout (CRLF line ends, part headers start with a TAB):
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<n>\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE header length><header><sealed data>--Encrypted Boundary--\r\n
//! ```

use std::fmt;

/// The MIME boundary every known client and Windows use.
pub const BOUNDARY: &str = "Encrypted Boundary";

/// The original content type Windows and the clients put in `OriginalContent`.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// Largest signature/wrap header we accept (NTLM: 16, Kerberos AES: 60, CredSSP trailers are
/// small too); anything bigger is a corrupt or hostile length field.
const MAX_HEADER_LEN: usize = 1024;

/// Errors while building or reading an encrypted body, or while sealing/unsealing it.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The content type is not `multipart/encrypted` with a protocol we handle.
    #[error("unsupported encrypted content type {content_type:?}")]
    ContentType {
        /// The value received (never contains secrets).
        content_type: String,
    },
    /// A boundary line was expected at this byte offset.
    #[error("missing boundary line at byte {offset}")]
    MissingBoundary {
        /// Byte offset in the body.
        offset: usize,
    },
    /// The first part's headers are malformed.
    #[error("bad part header at byte {offset}: {reason}")]
    BadPartHeader {
        /// Byte offset in the body.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// The protocol named inside the body differs from the one in the HTTP content type.
    #[error("part protocol {found:?} differs from {expected:?}")]
    ProtocolMismatch {
        /// Protocol from the HTTP header.
        expected: String,
        /// Protocol from the part header.
        found: String,
    },
    /// The sealed part ended before the data its length fields announce.
    #[error("truncated sealed data at byte {offset}: need {needed} more bytes")]
    Truncated {
        /// Byte offset in the body.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The signature length field is implausibly large.
    #[error("signature length {len} at byte {offset} exceeds {MAX_HEADER_LEN}")]
    HeaderTooLong {
        /// Byte offset of the length field.
        offset: usize,
        /// The announced length.
        len: usize,
    },
    /// The closing `--Encrypted Boundary--` line is missing.
    #[error("missing closing boundary at end of body ({len} bytes)")]
    MissingTerminator {
        /// Body length.
        len: usize,
    },
    /// The unsealed length differs from `OriginalContent ... Length=`.
    #[error("decrypted length {actual} differs from announced length {expected}")]
    LengthMismatch {
        /// `Length=` value.
        expected: usize,
        /// Bytes actually recovered.
        actual: usize,
    },
    /// The signature header has the wrong size for the security package.
    #[error("signature header is {len} bytes, expected {expected}")]
    SignatureLength {
        /// Bytes received.
        len: usize,
        /// Bytes the package uses.
        expected: usize,
    },
    /// The GSSAPI context (delegate) refused to seal or unseal.
    #[error("gssapi message protection failed: {detail}")]
    Gss {
        /// GSSAPI status text (never key material).
        detail: String,
    },
    /// The security context refused to seal.
    #[error("sealing failed")]
    Seal {
        /// The security package error.
        #[source]
        source: sspi::Error,
    },
    /// The security context refused to unseal (bad signature, wrong sequence number, ...).
    #[error("unsealing failed")]
    Unseal {
        /// The security package error.
        #[source]
        source: sspi::Error,
    },
}

/// Which session-encryption protocol string a body carries (PROTOCOL.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionProtocol {
    /// `application/HTTP-SPNEGO-session-encrypted` (NTLM, Negotiate, pywinrm Kerberos).
    Spnego,
    /// `application/HTTP-Kerberos-session-encrypted` (pypsrp bare Kerberos).
    Kerberos,
    /// `application/HTTP-CredSSP-session-encrypted`.
    CredSsp,
}

// === impl EncryptionProtocol ===

impl EncryptionProtocol {
    /// The protocol string as it appears in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spnego => "application/HTTP-SPNEGO-session-encrypted",
            Self::Kerberos => "application/HTTP-Kerberos-session-encrypted",
            Self::CredSsp => "application/HTTP-CredSSP-session-encrypted",
        }
    }

    /// Parses a protocol string, ignoring ASCII case.
    pub fn from_name(value: &str) -> Option<Self> {
        [Self::Spnego, Self::Kerberos, Self::CredSsp]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(value.trim()))
    }

    /// The HTTP `Content-Type` value for an encrypted body with this protocol.
    pub fn content_type(self) -> String {
        format!(
            "multipart/encrypted;protocol=\"{}\";boundary=\"{BOUNDARY}\"",
            self.as_str()
        )
    }
}

impl fmt::Display for EncryptionProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parameters of an encrypted HTTP `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedContentType {
    /// The session-encryption protocol.
    pub protocol: EncryptionProtocol,
    /// The MIME boundary (normally [`BOUNDARY`]).
    pub boundary: String,
}

/// Reads an HTTP `Content-Type`. Returns `Ok(None)` when the body is not encrypted at all
/// (any non-`multipart/` type) and an error for multipart types we cannot read
/// (`multipart/x-multi-encrypted`, unknown protocols).
pub fn parse_content_type(value: &str) -> Result<Option<EncryptedContentType>, CryptoError> {
    parse_multipart(value, false)
}

/// [`parse_content_type`], also accepting `multipart/x-multi-encrypted` when `multi` holds
/// (CredSSP bodies over 16 KiB are split into several parts).
pub(crate) fn parse_multipart(
    value: &str,
    multi: bool,
) -> Result<Option<EncryptedContentType>, CryptoError> {
    let mut params = value.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return Ok(None);
    }
    let unsupported = || CryptoError::ContentType {
        content_type: value.to_owned(),
    };
    let readable = media.eq_ignore_ascii_case("multipart/encrypted")
        || (multi && media.eq_ignore_ascii_case("multipart/x-multi-encrypted"));
    if !readable {
        return Err(unsupported());
    }
    let mut protocol = None;
    let mut boundary = None;
    for param in params {
        let Some((name, raw)) = param.split_once('=') else {
            continue;
        };
        let val = raw.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "protocol" => protocol = EncryptionProtocol::from_name(val),
            "boundary" => boundary = Some(val.to_owned()),
            _ => {}
        }
    }
    match (protocol, boundary) {
        (Some(protocol), Some(boundary)) if !boundary.is_empty() => {
            Ok(Some(EncryptedContentType { protocol, boundary }))
        }
        _ => Err(unsupported()),
    }
}

/// One sealed message as the security context produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Signature or wrap-token header (16 bytes for NTLM).
    pub header: Vec<u8>,
    /// The encrypted payload.
    pub data: Vec<u8>,
    /// Padding the context added (0 for NTLM); `Length=` announces plaintext + padding.
    pub padding: usize,
}

/// Builds an encrypted body for `sealed`, announcing `plaintext_len` (+ padding) in
/// `OriginalContent`.
pub fn encode_body(protocol: EncryptionProtocol, plaintext_len: usize, sealed: &Sealed) -> Vec<u8> {
    let head = format!(
        "--{BOUNDARY}\r\n\tContent-Type: {}\r\n\tOriginalContent: type={SOAP_CONTENT_TYPE};Length={}\r\n--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
        protocol.as_str(),
        plaintext_len.saturating_add(sealed.padding),
    );
    let tail = format!("--{BOUNDARY}--\r\n");
    let mut out =
        Vec::with_capacity(head.len() + 4 + sealed.header.len() + sealed.data.len() + tail.len());
    out.extend_from_slice(head.as_bytes());
    // The header length is a u32; NTLM/Kerberos headers are tiny, so saturate rather than fail.
    let header_len = u32::try_from(sealed.header.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&sealed.header);
    out.extend_from_slice(&sealed.data);
    out.extend_from_slice(tail.as_bytes());
    out
}

/// A parsed encrypted body, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPart<'a> {
    /// Protocol named in the part header.
    pub protocol: EncryptionProtocol,
    /// `OriginalContent` type (e.g. `application/soap+xml;charset=UTF-8`).
    pub original_type: &'a str,
    /// `Length=`: the plaintext length (pypsrp adds any padding).
    pub original_length: usize,
    /// Signature / wrap-token header.
    pub header: &'a [u8],
    /// Sealed payload.
    pub data: &'a [u8],
}

// === impl EncryptedPart ===

impl EncryptedPart<'_> {
    /// Checks the unsealed length against `Length=`; `padding` is what the context stripped.
    pub fn check_length(&self, unsealed_len: usize, padding: usize) -> Result<(), CryptoError> {
        if unsealed_len == self.original_length
            || unsealed_len.saturating_add(padding) == self.original_length
        {
            Ok(())
        } else {
            Err(CryptoError::LengthMismatch {
                expected: self.original_length,
                actual: unsealed_len,
            })
        }
    }
}

/// Matches a boundary line `--<boundary><suffix>` at `pos`, tolerating whitespace between
/// `--` and the boundary (`-- Encrypted Boundary`, sent by some Exchange servers). Returns the
/// position after the line.
fn match_boundary(body: &[u8], pos: usize, boundary: &str, suffix: &[u8]) -> Option<usize> {
    let rest = body.get(pos..)?;
    let rest = rest.strip_prefix(b"--")?;
    let trimmed = trim_ascii_ws_start(rest);
    let skipped = rest.len() - trimmed.len();
    trimmed
        .strip_prefix(boundary.as_bytes())?
        .strip_prefix(suffix)?;
    Some(pos + 2 + skipped + boundary.len() + suffix.len())
}

fn trim_ascii_ws_start(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Reads one CRLF-terminated line starting at `pos`; returns (line without CRLF, next pos).
fn read_line(body: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = body.get(pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..end)?, pos + end + 2))
}

/// Parses a single-part encrypted body (`multipart/encrypted`) with the given boundary.
///
/// The sealed data runs from after the header to the closing boundary at the very end of
/// the body: sealed bytes are binary and may contain anything, so the end is found from the
/// tail, never by searching.
pub fn decode_body<'a>(body: &'a [u8], boundary: &str) -> Result<EncryptedPart<'a>, CryptoError> {
    let mut pos = match_boundary(body, 0, boundary, b"\r\n")
        .ok_or(CryptoError::MissingBoundary { offset: 0 })?;

    // First part: headers describing the original content.
    let mut protocol = None;
    let mut original = None;
    loop {
        if let Some(next) = match_boundary(body, pos, boundary, b"\r\n") {
            pos = next;
            break;
        }
        let (line, next) =
            read_line(body, pos).ok_or(CryptoError::MissingBoundary { offset: pos })?;
        let text = std::str::from_utf8(line).map_err(|_| CryptoError::BadPartHeader {
            offset: pos,
            reason: "header line is not utf-8",
        })?;
        if let Some((name, value)) = text.trim().split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-type" => {
                    protocol = Some(EncryptionProtocol::from_name(value).ok_or(
                        CryptoError::BadPartHeader {
                            offset: pos,
                            reason: "unknown protocol in part content type",
                        },
                    )?);
                }
                "originalcontent" => original = Some(parse_original_content(value, pos)?),
                _ => {}
            }
        }
        pos = next;
    }
    let protocol = protocol.ok_or(CryptoError::BadPartHeader {
        offset: pos,
        reason: "missing part content type",
    })?;
    let (original_type, original_length) = original.ok_or(CryptoError::BadPartHeader {
        offset: pos,
        reason: "missing OriginalContent",
    })?;

    // Second part: one header line (application/octet-stream), then the binary payload.
    let (line, next) = read_line(body, pos).ok_or(CryptoError::BadPartHeader {
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
    pos = next;

    let end = find_terminator(body, boundary)
        .ok_or(CryptoError::MissingTerminator { len: body.len() })?;
    let payload = body.get(pos..end).ok_or(CryptoError::Truncated {
        offset: pos,
        needed: 4,
    })?;
    let (len_bytes, rest) = payload
        .split_first_chunk::<4>()
        .ok_or(CryptoError::Truncated {
            offset: pos,
            needed: 4usize.saturating_sub(payload.len()),
        })?;
    let header_len = usize::try_from(u32::from_le_bytes(*len_bytes)).unwrap_or(usize::MAX);
    if header_len > MAX_HEADER_LEN {
        return Err(CryptoError::HeaderTooLong {
            offset: pos,
            len: header_len,
        });
    }
    if rest.len() < header_len {
        return Err(CryptoError::Truncated {
            offset: pos + 4,
            needed: header_len - rest.len(),
        });
    }
    let (header, data) = rest.split_at(header_len);
    Ok(EncryptedPart {
        protocol,
        original_type,
        original_length,
        header,
        data,
    })
}

/// Parses `type=application/soap+xml;charset=UTF-8;Length=1234`.
fn parse_original_content(value: &str, offset: usize) -> Result<(&str, usize), CryptoError> {
    let bad = |reason| CryptoError::BadPartHeader { offset, reason };
    let (type_part, length_part) = value
        .rsplit_once(';')
        .ok_or(bad("OriginalContent has no Length"))?;
    let (name, len) = length_part
        .split_once('=')
        .ok_or(bad("OriginalContent has no Length"))?;
    if !name.trim().eq_ignore_ascii_case("length") {
        return Err(bad("OriginalContent has no Length"));
    }
    let length = len
        .trim()
        .parse::<usize>()
        .map_err(|_| bad("OriginalContent Length is not a number"))?;
    let original_type = type_part
        .trim()
        .strip_prefix("type=")
        .unwrap_or(type_part.trim());
    Ok((original_type, length))
}

/// Finds the start of the closing `--<boundary>--` line at the end of the body (optionally
/// followed by CRLF or trailing whitespace).
fn find_terminator(body: &[u8], boundary: &str) -> Option<usize> {
    let mut end = body.len();
    while end > 0 && body.get(end - 1).is_some_and(|b| b.is_ascii_whitespace()) {
        end -= 1;
    }
    let tail = body.get(..end)?;
    let tail = tail.strip_suffix(b"--")?;
    let tail = tail.strip_suffix(boundary.as_bytes())?;
    // Allow `-- Encrypted Boundary--` as for the opening lines.
    let mut start = tail.len();
    while start > 0
        && tail
            .get(start - 1)
            .is_some_and(|b| *b == b' ' || *b == b'\t')
    {
        start -= 1;
    }
    let tail = tail.get(..start)?;
    let tail = tail.strip_suffix(b"--")?;
    Some(tail.len())
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
