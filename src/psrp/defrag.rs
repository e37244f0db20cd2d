//! Reassembly of PSRP messages from fragments (MS-PSRP 2.2.4, 3.1.5.1.2), one
//! [`Defragmenter`] per direction of one runspace pool, keyed by ObjectId.
//!
//! Owns the partial-message state and its memory bounds. It does not parse message headers
//! or CLIXML, and it does not know which WS-Man element a fragment came from: the caller
//! feeds `creationXml`, Command `Arguments` and every `Stream` of one direction into the same
//! defragmenter, in arrival order, so a message begun in a Command and finished in a later
//! Send comes out whole.
//!
//! Error policy: an error about one object discards that object's partial data (its later
//! fragments then fail as [`PsrpError::MissingStart`]); other partial objects are kept. The
//! gateway fails the request closed on any error, so nothing half-checked is forwarded.

use std::collections::HashMap;

use super::error::PsrpError;
use super::fragment::{fragment_refs, Fragment, FragmentRef};

/// Memory bounds of a [`Defragmenter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Most bytes held at once across all partial messages; also the largest message.
    pub max_buffered_bytes: usize,
    /// Most messages partially received at once.
    pub max_pending_objects: usize,
}

impl Default for DefragLimits {
    fn default() -> Self {
        Self {
            max_buffered_bytes: 16 * 1024 * 1024,
            max_pending_objects: 32,
        }
    }
}

#[derive(Debug)]
struct Pending {
    next_fragment_id: u64,
    data: Vec<u8>,
}

/// Reassembles the messages of one direction.
#[derive(Debug, Default)]
pub struct Defragmenter {
    limits: DefragLimits,
    pending: HashMap<u64, Pending>,
    // INVARIANT: equals the sum of `data.len()` over `pending`.
    buffered: usize,
}

// === impl Defragmenter ===

impl Defragmenter {
    /// A defragmenter with the default limits (16 MiB, 32 partial messages).
    pub fn new() -> Self {
        Self::default()
    }

    /// A defragmenter with explicit limits.
    pub fn with_limits(limits: DefragLimits) -> Self {
        Self {
            limits,
            pending: HashMap::new(),
            buffered: 0,
        }
    }

    /// Number of messages begun but not finished.
    pub fn pending_objects(&self) -> usize {
        self.pending.len()
    }

    /// ObjectIds of the messages begun but not finished (unordered). A gateway holds back
    /// forwarding while a message it must check is among them.
    pub fn pending_object_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.keys().copied()
    }

    /// Bytes held for unfinished messages.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// True when no message is partially received.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every partial message.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.buffered = 0;
    }

    /// Adds one fragment; returns the whole message when this fragment completes it.
    pub fn push(&mut self, fragment: Fragment) -> Result<Option<Vec<u8>>, PsrpError> {
        let Fragment {
            object_id,
            fragment_id,
            start,
            end,
            blob,
        } = fragment;
        self.push_inner(object_id, fragment_id, start, end, Blob::Owned(blob))
    }

    /// Adds one borrowed fragment (the blob is copied only if the message is unfinished).
    pub fn push_ref(&mut self, fragment: FragmentRef<'_>) -> Result<Option<Vec<u8>>, PsrpError> {
        self.push_inner(
            fragment.object_id,
            fragment.fragment_id,
            fragment.start,
            fragment.end,
            Blob::Borrowed(fragment.blob),
        )
    }

    /// Parses the fragments packed in `data` and adds them in order; returns the messages
    /// they complete, in completion order.
    ///
    /// On error, fragments before the bad one have been applied and messages they completed
    /// are lost with the error (the caller fails the request).
    pub fn push_bytes(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, PsrpError> {
        let mut done = Vec::new();
        for fragment in fragment_refs(data) {
            if let Some(message) = self.push_ref(fragment?)? {
                done.push(message);
            }
        }
        Ok(done)
    }

    fn push_inner(
        &mut self,
        object_id: u64,
        fragment_id: u64,
        start: bool,
        end: bool,
        blob: Blob<'_>,
    ) -> Result<Option<Vec<u8>>, PsrpError> {
        let limit = self.limits.max_buffered_bytes;
        if start {
            if let Some(old) = self.pending.remove(&object_id) {
                // A second start means the stream is corrupt: drop both copies.
                self.buffered -= old.data.len();
                return Err(PsrpError::DuplicateStart { object_id });
            }
            if fragment_id != 0 {
                return Err(PsrpError::StartFragmentNotFirst {
                    object_id,
                    fragment_id,
                });
            }
            if end {
                if blob.len() > limit {
                    return Err(PsrpError::MessageTooLarge { object_id, limit });
                }
                return Ok(Some(blob.into_vec()));
            }
            if self.pending.len() >= self.limits.max_pending_objects {
                return Err(PsrpError::TooManyPendingObjects {
                    limit: self.limits.max_pending_objects,
                });
            }
            if blob.len() > limit.saturating_sub(self.buffered) {
                return Err(PsrpError::MessageTooLarge { object_id, limit });
            }
            self.buffered += blob.len();
            self.pending.insert(
                object_id,
                Pending {
                    next_fragment_id: 1,
                    data: blob.into_vec(),
                },
            );
            return Ok(None);
        }

        let Some(pending) = self.pending.get_mut(&object_id) else {
            return Err(PsrpError::MissingStart {
                object_id,
                fragment_id,
            });
        };
        let expected = pending.next_fragment_id;
        let too_large = blob.len() > limit.saturating_sub(self.buffered);
        if fragment_id != expected || too_large {
            let dropped = pending.data.len();
            self.pending.remove(&object_id);
            self.buffered -= dropped;
            return Err(if too_large && fragment_id == expected {
                PsrpError::MessageTooLarge { object_id, limit }
            } else {
                PsrpError::OutOfOrderFragment {
                    object_id,
                    expected,
                    got: fragment_id,
                }
            });
        }
        // Amortised growth: appending is linear in the message size overall.
        pending.data.extend_from_slice(blob.as_slice());
        pending.next_fragment_id = expected.wrapping_add(1);
        self.buffered += blob.len();
        if !end {
            return Ok(None);
        }
        let done = self.pending.remove(&object_id).map(|p| p.data);
        if let Some(data) = &done {
            self.buffered -= data.len();
        }
        Ok(done)
    }
}

/// A blob that is either already owned (moved in, no copy) or borrowed (copied on keep).
enum Blob<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Blob<'_> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Blob::Owned(v) => v,
            Blob::Borrowed(s) => s,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Blob::Owned(v) => v,
            Blob::Borrowed(s) => s.to_vec(),
        }
    }
}
