//! The vault file format, version 1: sealing and opening bytes, no file I/O.
//!
//! Layout (all integers big-endian):
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 8 | magic `HGVAULT\0` |
//! | 8 | 2 | format version = 1 |
//! | 10 | 8 | key check: HMAC-SHA256(master, "hopgate-vault-v1 key-check")[..8] |
//! | 18 | 16 | salt, fresh random on every write |
//! | 34 | 12 | AES-GCM nonce, fresh random on every write |
//! | 46 | n+16 | AES-256-GCM ciphertext of the JSON body, then the tag |
//!
//! The encryption key is HMAC-SHA256(master, "hopgate-vault-v1 aes-256-gcm" || salt), so
//! each write uses a fresh key as well as a fresh nonce (no nonce-reuse risk however often
//! the file is rewritten). The whole 46-byte header is the AEAD associated data, so any
//! change to it fails authentication. The key check lets a wrong key be reported as such
//! instead of as "tampered"; it reveals nothing usable about the key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;
use zeroize::Zeroizing;

use super::error::VaultError;
use super::key::VaultKey;

/// File magic.
pub(crate) const MAGIC: [u8; 8] = *b"HGVAULT\0";
/// The format version this code writes and reads.
pub(crate) const VERSION: u16 = 1;
const KEY_CHECK_LEN: usize = 8;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Header length (also the associated data).
pub(crate) const HEADER_LEN: usize = MAGIC.len() + 2 + KEY_CHECK_LEN + SALT_LEN + NONCE_LEN;
/// Smallest valid file: a header and the tag of an empty plaintext.
pub(crate) const MIN_LEN: usize = HEADER_LEN + TAG_LEN;

const KEY_CHECK_LABEL: &[u8] = b"hopgate-vault-v1 key-check";
const ENC_KEY_LABEL: &[u8] = b"hopgate-vault-v1 aes-256-gcm";

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &VaultKey, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    // INVARIANT: HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key.bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    for p in parts {
        mac.update(p);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn key_check(key: &VaultKey) -> [u8; KEY_CHECK_LEN] {
    let full = hmac(key, &[KEY_CHECK_LABEL]);
    let mut out = [0u8; KEY_CHECK_LEN];
    out.copy_from_slice(full.get(..KEY_CHECK_LEN).unwrap_or(&[0; KEY_CHECK_LEN]));
    out
}

fn cipher(key: &VaultKey, salt: &[u8]) -> Aes256Gcm {
    let enc_key = hmac(key, &[ENC_KEY_LABEL, salt]);
    Aes256Gcm::new(enc_key.as_ref().into())
}

/// Encrypts `plaintext` into a complete vault file image.
pub(crate) fn seal(key: &VaultKey, plaintext: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);

    let mut out = Vec::with_capacity(MIN_LEN + plaintext.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&key_check(key));
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let ciphertext = cipher(key, &salt)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &out,
            },
        )
        // INVARIANT: AES-GCM encryption fails only for plaintexts over 64 GiB.
        .unwrap_or_else(|_| unreachable!("vault body exceeds the aes-gcm limit"));
    out.extend_from_slice(&ciphertext);
    out
}

/// Checks and decrypts a vault file image. `path` is only used in errors.
pub(crate) fn open(
    key: &VaultKey,
    bytes: &[u8],
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let p = || path.to_owned();
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        // A short file that is a prefix of the magic is truncated, anything else is foreign.
        return Err(if MAGIC.starts_with(bytes) {
            VaultError::Truncated {
                path: p(),
                len: bytes.len(),
                min: MIN_LEN,
            }
        } else {
            VaultError::NotAVault { path: p() }
        });
    }
    if let Some(&[hi, lo]) = bytes.get(8..10) {
        let version = u16::from_be_bytes([hi, lo]);
        if version != VERSION {
            return Err(VaultError::UnsupportedVersion { path: p(), version });
        }
    }
    let (Some(header), Some(body)) = (bytes.get(..HEADER_LEN), bytes.get(HEADER_LEN..)) else {
        return Err(VaultError::Truncated {
            path: p(),
            len: bytes.len(),
            min: MIN_LEN,
        });
    };
    if body.len() < TAG_LEN {
        return Err(VaultError::Truncated {
            path: p(),
            len: bytes.len(),
            min: MIN_LEN,
        });
    }
    let check = header.get(10..10 + KEY_CHECK_LEN);
    let salt = header.get(18..18 + SALT_LEN);
    let nonce = header.get(34..34 + NONCE_LEN);
    let nonce = nonce.and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok());
    let (Some(check), Some(salt), Some(nonce)) = (check, salt, nonce) else {
        return Err(VaultError::Truncated {
            path: p(),
            len: bytes.len(),
            min: MIN_LEN,
        });
    };
    if check != key_check(key) {
        return Err(VaultError::WrongKey { path: p() });
    }
    cipher(key, salt)
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: body,
                aad: header,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Tampered { path: p() })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn key(b: u8) -> VaultKey {
        VaultKey::parse(&hex::encode([b; 32]), "test").unwrap()
    }

    #[test]
    fn seal_open_round_trip_with_fresh_salt_and_nonce() {
        let k = key(7);
        let a = seal(&k, b"{\"entries\":{}}");
        let b = seal(&k, b"{\"entries\":{}}");
        assert_eq!(&a[..8], b"HGVAULT\0");
        assert_eq!(&a[8..10], &[0, 1]);
        assert_eq!(a.len(), HEADER_LEN + 14 + TAG_LEN);
        assert_ne!(a[18..46], b[18..46], "salt and nonce differ per write");
        assert_ne!(a[46..], b[46..], "so do the ciphertexts");
        assert_eq!(
            &open(&k, &a, Path::new("v")).unwrap()[..],
            b"{\"entries\":{}}"
        );
    }

    #[test]
    fn wrong_key_is_reported_as_such() {
        let sealed = seal(&key(1), b"x");
        assert!(matches!(
            open(&key(2), &sealed, Path::new("v")),
            Err(VaultError::WrongKey { .. })
        ));
    }

    #[test]
    fn any_flipped_bit_fails() {
        let k = key(3);
        let sealed = seal(&k, b"some secret body");
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            let r = open(&k, &t, Path::new("v"));
            let expected = match i {
                0..=7 => matches!(r, Err(VaultError::NotAVault { .. })),
                8..=9 => matches!(r, Err(VaultError::UnsupportedVersion { .. })),
                10..=17 => matches!(r, Err(VaultError::WrongKey { .. })),
                _ => matches!(r, Err(VaultError::Tampered { .. })),
            };
            assert!(expected, "byte {i}: {r:?}");
        }
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let k = key(4);
        let sealed = seal(&k, b"body");
        for len in 0..sealed.len() {
            let r = open(&k, &sealed[..len], Path::new("v"));
            assert!(
                matches!(
                    r,
                    Err(VaultError::Truncated { .. } | VaultError::Tampered { .. })
                ),
                "len {len}: {r:?}"
            );
        }
        // Cut inside the body but past the minimum: the tag fails.
        assert!(matches!(
            open(&k, &sealed[..sealed.len() - 1], Path::new("v")),
            Err(VaultError::Tampered { .. })
        ));
        assert!(matches!(
            open(&k, &sealed[..MIN_LEN - 1], Path::new("v")),
            Err(VaultError::Truncated { .. })
        ));
    }

    #[test]
    fn foreign_files_are_not_vaults() {
        assert!(matches!(
            open(
                &key(5),
                b"{\"entries\":{}} plaintext json, not a vault",
                Path::new("v")
            ),
            Err(VaultError::NotAVault { .. })
        ));
    }
}
