//! PSRP fragments (MS-PSRP 2.2.4): parsing the 21-byte big-endian header + blob, writing it,
//! and cutting a message into fragments.
//!
//! Owns only the framing of single fragments. Reassembly lives in `defrag.rs`; this module
//! keeps no state and never interprets the blob.

use super::error::PsrpError;

/// Length of a fragment header: ObjectId (8) + FragmentId (8) + flags (1) + BlobLength (4).
pub const FRAGMENT_HEADER_LEN: usize = 21;

const FLAG_START: u8 = 0x01;
const FLAG_END: u8 = 0x02;

/// One PSRP fragment, owning its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// ObjectId: one per message, rising in each direction.
    pub object_id: u64,
    /// FragmentId: 0, 1, 2… within one object.
    pub fragment_id: u64,
    /// S flag: first fragment of the message.
    pub start: bool,
    /// E flag: last fragment of the message.
    pub end: bool,
    /// A slice of the PSRP message.
    pub blob: Vec<u8>,
}

/// One PSRP fragment borrowing its blob from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentRef<'a> {
    /// ObjectId.
    pub object_id: u64,
    /// FragmentId.
    pub fragment_id: u64,
    /// S flag.
    pub start: bool,
    /// E flag.
    pub end: bool,
    /// The blob, borrowed.
    pub blob: &'a [u8],
}

// === impl Fragment ===

impl Fragment {
    /// Length of this fragment once encoded (header + blob).
    pub fn encoded_len(&self) -> usize {
        FRAGMENT_HEADER_LEN + self.blob.len()
    }

    /// Appends the encoded fragment to `out`.
    ///
    /// Fails only when the blob does not fit the 32-bit length field; `out` is then unchanged.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), PsrpError> {
        let len = u32::try_from(self.blob.len()).map_err(|_| PsrpError::FragmentBlobTooLong {
            len: self.blob.len(),
        })?;
        let mut flags = 0u8;
        if self.start {
            flags |= FLAG_START;
        }
        if self.end {
            flags |= FLAG_END;
        }
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.object_id.to_be_bytes());
        out.extend_from_slice(&self.fragment_id.to_be_bytes());
        out.push(flags);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.blob);
        Ok(())
    }

    /// The encoded fragment as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PsrpError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Borrowed view of this fragment.
    pub fn as_ref(&self) -> FragmentRef<'_> {
        FragmentRef {
            object_id: self.object_id,
            fragment_id: self.fragment_id,
            start: self.start,
            end: self.end,
            blob: &self.blob,
        }
    }
}

// === impl FragmentRef ===

impl FragmentRef<'_> {
    /// Copies the blob into an owned [`Fragment`].
    pub fn to_owned(&self) -> Fragment {
        Fragment {
            object_id: self.object_id,
            fragment_id: self.fragment_id,
            start: self.start,
            end: self.end,
            blob: self.blob.to_vec(),
        }
    }
}

/// Iterator over the fragments packed into one buffer; see [`fragment_refs`].
#[derive(Debug, Clone)]
pub struct FragmentIter<'a> {
    data: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for FragmentIter<'a> {
    type Item = Result<FragmentRef<'a>, PsrpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.data.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        match parse_one(rest, self.offset) {
            Ok((fragment, used)) => {
                self.offset += used;
                Some(Ok(fragment))
            }
            Err(e) => {
                // INVARIANT: after an error the iterator is fused; the rest of the buffer
                // has no trustworthy framing.
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the fragments packed one after another in `data` without copying blobs.
///
/// Several fragments may share one base64 blob (MS-PSRP 2.2.4); an empty buffer holds none.
pub fn fragment_refs(data: &[u8]) -> FragmentIter<'_> {
    FragmentIter {
        data,
        offset: 0,
        failed: false,
    }
}

/// Parses every fragment packed in `data`.
///
/// A truncated header or blob is an error carrying the byte offset of that fragment.
pub fn parse_fragments(data: &[u8]) -> Result<Vec<Fragment>, PsrpError> {
    fragment_refs(data)
        .map(|f| f.map(|f| f.to_owned()))
        .collect()
}

/// Parses one fragment at the start of `rest`; `offset` is only used in errors.
fn parse_one(rest: &[u8], offset: usize) -> Result<(FragmentRef<'_>, usize), PsrpError> {
    let truncated = || PsrpError::TruncatedFragmentHeader {
        offset,
        available: rest.len(),
    };
    let (header, body) = rest
        .split_first_chunk::<FRAGMENT_HEADER_LEN>()
        .ok_or_else(truncated)?;
    let (object_id, header) = header.split_first_chunk::<8>().ok_or_else(truncated)?;
    let (fragment_id, header) = header.split_first_chunk::<8>().ok_or_else(truncated)?;
    let (flags, header) = header.split_first_chunk::<1>().ok_or_else(truncated)?;
    let (len, _) = header.split_first_chunk::<4>().ok_or_else(truncated)?;
    let declared = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
    let blob = body
        .get(..declared)
        .ok_or(PsrpError::TruncatedFragmentBlob {
            offset,
            declared,
            available: body.len(),
        })?;
    let [flags] = *flags;
    Ok((
        FragmentRef {
            object_id: u64::from_be_bytes(*object_id),
            fragment_id: u64::from_be_bytes(*fragment_id),
            start: flags & FLAG_START != 0,
            end: flags & FLAG_END != 0,
            blob,
        },
        FRAGMENT_HEADER_LEN + declared,
    ))
}

/// Cuts `message` into fragments of object `object_id` so that every encoded fragment
/// (header + blob) is at most `max_fragment_len` bytes.
///
/// A limit too small for the header still yields one blob byte per fragment; an empty
/// message yields one empty Start+End fragment.
pub fn fragment_message(object_id: u64, message: &[u8], max_fragment_len: usize) -> Vec<Fragment> {
    let blob_max = max_fragment_len
        .saturating_sub(FRAGMENT_HEADER_LEN)
        .clamp(1, u32::MAX as usize);
    if message.is_empty() {
        return vec![Fragment {
            object_id,
            fragment_id: 0,
            start: true,
            end: true,
            blob: Vec::new(),
        }];
    }
    let count = message.len().div_ceil(blob_max);
    message
        .chunks(blob_max)
        .enumerate()
        .map(|(i, chunk)| Fragment {
            object_id,
            fragment_id: i as u64,
            start: i == 0,
            end: i + 1 == count,
            blob: chunk.to_vec(),
        })
        .collect()
}
