//! Test key material and a raw token encoder shared by the authn tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// A 40-byte HS256 shared secret as it would sit in a key file (with a newline).
pub(crate) const HS_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-hopgate\n";
/// A different secret of the same shape.
pub(crate) const HS_OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210-someone\n";

/// (private PKCS#8 PEM, public SPKI PEM).
pub(crate) struct KeyPems {
    pub(crate) private: String,
    pub(crate) public: String,
}

/// A fresh ES256 (P-256) key pair from rcgen.
pub(crate) fn es256() -> KeyPems {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    KeyPems {
        private: kp.serialize_pem(),
        public: kp.public_key_pem(),
    }
}

/// One RSA-2048 key pair per test binary. rcgen's ring backend cannot generate RSA keys
/// (`KeyGenerationUnavailable`), so this uses the `rsa` crate jsonwebtoken already builds.
pub(crate) fn rs256() -> &'static KeyPems {
    static KEY: OnceLock<KeyPems> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public = private.to_public_key();
        KeyPems {
            private: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public: public.to_public_key_pem(LineEnding::LF).unwrap(),
        }
    })
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs arbitrary claims, bypassing TokenMinter, so tests can make bad tokens.
pub(crate) fn encode(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

pub(crate) fn hs_key(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret.trim_ascii())
}
