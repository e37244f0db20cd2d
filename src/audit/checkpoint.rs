//! Signed checkpoints: an `audit.checkpoint` line vouching, with an Ed25519 signature, for
//! everything in the chain up to the line before it.
//!
//! The chain alone shows that lines were edited, deleted or reordered, but someone who can
//! write the files can recompute every hash and forge a whole new chain. A checkpoint signs
//! the hash of the line before it (which commits to every earlier line) with a key kept in
//! the vault, so a forged chain cannot carry valid checkpoints. The writer closes every
//! rotated file with one (and the file in use at a clean shutdown when a key is
//! configured); `hopgate audit verify --pubkey` checks them.
//!
//! Owns the checkpoint's fields, the exact bytes that are signed, the signing key (a
//! PKCS#8 Ed25519 key, base64 in a vault entry), public key files and key ids. It does no
//! file or network I/O and never prints or logs the private key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

/// The `event` value of a checkpoint line.
pub const CHECKPOINT_EVENT: &str = "audit.checkpoint";
/// Domain separation for the signed bytes, so a signature made by this key can never be
/// mistaken for one over anything else.
const SIGNED_PREFIX: &str = "hopgate audit checkpoint v1";

/// Why a key or checkpoint is unusable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the signing key is not base64-encoded PKCS#8")]
    KeyEncoding,
    #[error("the signing key is not an Ed25519 PKCS#8 key")]
    KeyRejected,
    #[error("cannot generate a key: the system random source failed")]
    Random,
    #[error("the public key file holds no base64 Ed25519 public key (32 bytes)")]
    PublicKey,
    #[error("missing or invalid checkpoint field `{field}`")]
    Field { field: &'static str },
    #[error("checkpoint is not signed")]
    Unsigned,
    #[error("checkpoint was signed with another key (key id {found}, expected {expected})")]
    OtherKey { found: String, expected: String },
    #[error("bad checkpoint signature")]
    BadSignature,
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The file it closes is being rotated.
    Rotate,
    /// The writer is stopping cleanly.
    Shutdown,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rotate => "rotate",
            Self::Shutdown => "shutdown",
        }
    }
}

/// What a checkpoint line says besides the chain fields (`seq`, `ts`, `prev`, `hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// `rotate` or `shutdown` (not signed: it explains, it does not vouch).
    pub reason: String,
    /// `seq` of the first line of the file the checkpoint is in.
    pub first_seq: u64,
    /// `seq` of the line before the checkpoint.
    pub last_seq: u64,
    /// `hash` of the line before the checkpoint: what the signature vouches for.
    pub covers: String,
    /// Id of the signing key ([`key_id`]); None for an unsigned checkpoint.
    pub key_id: Option<String>,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`]; None when unsigned.
    pub signature: Option<String>,
}

impl Checkpoint {
    /// A checkpoint for lines `first_seq..=last_seq` ending in hash `covers`, signed when
    /// a key is given.
    pub fn new(
        reason: Reason,
        first_seq: u64,
        last_seq: u64,
        covers: &str,
        key: Option<&SigningKey>,
    ) -> Self {
        let mut cp = Self {
            reason: reason.as_str().to_string(),
            first_seq,
            last_seq,
            covers: covers.to_string(),
            key_id: None,
            signature: None,
        };
        if let Some(key) = key {
            let sig = key.pair.sign(&cp.signed_bytes(&key.key_id));
            cp.key_id = Some(key.key_id.clone());
            cp.signature = Some(B64.encode(sig.as_ref()));
        }
        cp
    }

    /// The bytes the signature is made over: the covered range and hash and the key id.
    pub fn signed_bytes(&self, key_id: &str) -> Vec<u8> {
        format!(
            "{SIGNED_PREFIX}\nfirst_seq={}\nlast_seq={}\ncovers={}\nkey_id={key_id}\n",
            self.first_seq, self.last_seq, self.covers
        )
        .into_bytes()
    }

    /// The line's own fields (the writer adds the chain fields).
    pub fn fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event".into(), Value::from(CHECKPOINT_EVENT));
        m.insert("reason".into(), Value::from(self.reason.clone()));
        m.insert("first_seq".into(), Value::from(self.first_seq));
        m.insert("last_seq".into(), Value::from(self.last_seq));
        m.insert("covers".into(), Value::from(self.covers.clone()));
        if let Some(k) = &self.key_id {
            m.insert("key_id".into(), Value::from(k.clone()));
        }
        if let Some(s) = &self.signature {
            m.insert("signature".into(), Value::from(s.clone()));
        }
        m
    }

    /// Reads a checkpoint back from a parsed line; None when the line is another event.
    pub fn from_fields(m: &Map<String, Value>) -> Option<Result<Self, CheckpointError>> {
        if m.get("event").and_then(Value::as_str) != Some(CHECKPOINT_EVENT) {
            return None;
        }
        let num = |field: &'static str| {
            m.get(field)
                .and_then(Value::as_u64)
                .ok_or(CheckpointError::Field { field })
        };
        let text = |field: &'static str| m.get(field).and_then(Value::as_str).map(str::to_string);
        Some((|| {
            Ok(Self {
                reason: text("reason").unwrap_or_default(),
                first_seq: num("first_seq")?,
                last_seq: num("last_seq")?,
                covers: text("covers").ok_or(CheckpointError::Field { field: "covers" })?,
                key_id: text("key_id"),
                signature: text("signature"),
            })
        })())
    }
}

/// The short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(public_key));
    digest.get(..16).unwrap_or(&digest).to_string()
}

/// The private key checkpoints are signed with (from the vault).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses the vault secret: a base64 PKCS#8 Ed25519 key (v1 or v2).
    pub fn from_secret(secret: &str) -> Result<Self, CheckpointError> {
        let der = Zeroizing::new(
            B64.decode(secret.trim())
                .map_err(|_| CheckpointError::KeyEncoding)?,
        );
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| CheckpointError::KeyRejected)?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Self { pair, key_id })
    }

    /// A fresh key and its vault secret (base64 PKCS#8).
    pub fn generate() -> Result<(Self, Zeroizing<String>), CheckpointError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CheckpointError::Random)?;
        let secret = Zeroizing::new(B64.encode(doc.as_ref()));
        Ok((Self::from_secret(&secret)?, secret))
    }

    /// The key's id, written into each checkpoint it signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for verifiers.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.pair.public_key().as_ref().to_vec();
        PublicKey {
            key_id: key_id(&bytes),
            bytes,
        }
    }
}

/// A public key that checks checkpoint signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    /// Parses a public key file: `#` comment lines, then the base64 32-byte key.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or(CheckpointError::PublicKey)?;
        let bytes = B64.decode(line).map_err(|_| CheckpointError::PublicKey)?;
        if bytes.len() != 32 {
            return Err(CheckpointError::PublicKey);
        }
        Ok(Self {
            key_id: key_id(&bytes),
            bytes,
        })
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key file's text (what [`PublicKey::parse`] reads).
    pub fn to_file_text(&self) -> String {
        format!(
            "# hopgate audit checkpoint key (Ed25519 public key, base64), key id {}\n{}\n",
            self.key_id,
            B64.encode(&self.bytes)
        )
    }

    /// Checks that `cp` was signed by this key.
    pub fn verify(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        let (Some(found), Some(sig)) = (&cp.key_id, &cp.signature) else {
            return Err(CheckpointError::Unsigned);
        };
        if *found != self.key_id {
            return Err(CheckpointError::OtherKey {
                found: found.clone(),
                expected: self.key_id.clone(),
            });
        }
        let sig = B64.decode(sig).map_err(|_| CheckpointError::BadSignature)?;
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(&cp.signed_bytes(found), &sig)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn signed_checkpoint_verifies_and_round_trips_through_its_fields() {
        let (key, secret) = SigningKey::generate().unwrap();
        let again = SigningKey::from_secret(&secret).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        let cp = Checkpoint::new(Reason::Rotate, 1, 41, &"ab".repeat(32), Some(&key));
        let back = Checkpoint::from_fields(&cp.fields()).unwrap().unwrap();
        assert_eq!(back, cp);
        let public = PublicKey::parse(&key.public_key().to_file_text()).unwrap();
        assert_eq!(public.key_id(), key.key_id());
        assert_eq!(public.verify(&back), Ok(()));
    }

    #[test]
    fn altered_unsigned_or_foreign_checkpoints_are_refused() {
        let (key, _) = SigningKey::generate().unwrap();
        let (other, _) = SigningKey::generate().unwrap();
        let public = key.public_key();
        let cp = Checkpoint::new(Reason::Rotate, 1, 41, &"ab".repeat(32), Some(&key));

        let mut moved = cp.clone();
        moved.last_seq = 40;
        assert_eq!(public.verify(&moved), Err(CheckpointError::BadSignature));
        let mut recovered = cp.clone();
        recovered.covers = "cd".repeat(32);
        assert_eq!(
            public.verify(&recovered),
            Err(CheckpointError::BadSignature)
        );

        let unsigned = Checkpoint::new(Reason::Shutdown, 1, 41, &"ab".repeat(32), None);
        assert_eq!(public.verify(&unsigned), Err(CheckpointError::Unsigned));
        let foreign = Checkpoint::new(Reason::Rotate, 1, 41, &"ab".repeat(32), Some(&other));
        assert!(matches!(
            public.verify(&foreign),
            Err(CheckpointError::OtherKey { .. })
        ));
        // Someone relabelling a foreign signature with the expected key id.
        let mut relabelled = foreign;
        relabelled.key_id = Some(key.key_id().to_string());
        assert_eq!(
            public.verify(&relabelled),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(
            SigningKey::from_secret("not base64!").unwrap_err(),
            CheckpointError::KeyEncoding
        );
        assert_eq!(
            SigningKey::from_secret(&B64.encode([7u8; 48])).unwrap_err(),
            CheckpointError::KeyRejected
        );
        assert_eq!(
            PublicKey::parse("# only a comment\n").unwrap_err(),
            CheckpointError::PublicKey
        );
        assert_eq!(
            PublicKey::parse(&B64.encode([1u8; 31])).unwrap_err(),
            CheckpointError::PublicKey
        );
    }
}
