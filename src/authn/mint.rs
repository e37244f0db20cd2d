//! Dev token minting for `hopgate token`: signs JWTs the gateway's validator accepts.
//!
//! Owns [`TokenMinter`] and the HS256 secret-file generator. It is a development aid: real
//! deployments get tokens from their identity provider. It must not log the tokens it
//! makes or the key it holds.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use rand::RngCore;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::AuthnError;
use super::jwt::{hmac_secret, pem_label, read_key_file, JwtAlgorithm, JwtSettings};

/// Signs dev tokens with one key, carrying the claim names, issuer and audience the
/// gateway's [`JwtSettings`] expect.
pub struct TokenMinter {
    algorithm: JwtAlgorithm,
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
    user_claim: String,
    groups_claim: String,
    target_claim: String,
}

// === impl TokenMinter ===

impl TokenMinter {
    /// A minter from key bytes: the HS256 shared secret (surrounding whitespace trimmed,
    /// at least 32 bytes), or an RS256/ES256 private key PEM (`PRIVATE KEY` PKCS#8, or
    /// `RSA PRIVATE KEY` PKCS#1 for RS256). Default claim names, no `iss`/`aud`.
    pub fn new(algorithm: JwtAlgorithm, key_material: &[u8]) -> Result<Self, AuthnError> {
        let name = algorithm.as_str();
        let invalid = |why: String| AuthnError::KeyInvalid {
            algorithm: name,
            why,
        };
        let key = match algorithm {
            JwtAlgorithm::Hs256 => EncodingKey::from_secret(hmac_secret(name, key_material)?),
            JwtAlgorithm::Rs256 => match pem_label(key_material) {
                Some("PRIVATE KEY" | "RSA PRIVATE KEY") => {
                    EncodingKey::from_rsa_pem(key_material).map_err(|e| invalid(e.to_string()))?
                }
                other => return Err(invalid(expected_private(other))),
            },
            JwtAlgorithm::Es256 => match pem_label(key_material) {
                Some("PRIVATE KEY") => {
                    EncodingKey::from_ec_pem(key_material).map_err(|e| invalid(e.to_string()))?
                }
                other => return Err(invalid(expected_private(other))),
            },
        };
        let defaults = JwtSettings::new(algorithm, Default::default());
        let minter = Self {
            algorithm,
            key,
            issuer: None,
            audience: None,
            user_claim: defaults.user_claim,
            groups_claim: defaults.groups_claim,
            target_claim: defaults.target_claim,
        };
        // Sign once so a key that does not fit the algorithm fails here, not at first use.
        minter.sign(&Map::new())?;
        Ok(minter)
    }

    /// A minter that makes tokens the validator built from `settings` accepts: same
    /// algorithm, issuer, audience and claim names. For HS256 the signing key defaults to
    /// `settings.key_file` (the shared secret); for RS256/ES256 `private_key_file` is
    /// required, since `settings.key_file` holds only the public key.
    pub fn for_settings(
        settings: &JwtSettings,
        private_key_file: Option<&Path>,
    ) -> Result<Self, AuthnError> {
        let path = match (settings.algorithm, private_key_file) {
            (_, Some(p)) => p,
            (JwtAlgorithm::Hs256, None) => settings.key_file.as_path(),
            (alg, None) => {
                return Err(AuthnError::KeyInvalid {
                    algorithm: alg.as_str(),
                    why: "minting needs the private key file".to_owned(),
                })
            }
        };
        let material = read_key_file(path)?;
        let mut minter = Self::new(settings.algorithm, &material)?;
        minter.issuer = settings.issuer.clone();
        minter.audience = settings.audience.clone();
        minter.user_claim = settings.user_claim.clone();
        minter.groups_claim = settings.groups_claim.clone();
        minter.target_claim = settings.target_claim.clone();
        Ok(minter)
    }

    /// Sets the `iss` claim of minted tokens.
    pub fn with_issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// Sets the `aud` claim of minted tokens.
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// A signed token for `sub` valid from now for `ttl`, with `iat`, `nbf`, `exp`, a random
    /// `jti`, the groups (always present, possibly empty), the target when given, and the
    /// configured `iss`/`aud`.
    pub fn mint(
        &self,
        sub: &str,
        groups: &[String],
        target: Option<&str>,
        ttl: Duration,
    ) -> Result<String, AuthnError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthnError::Signing {
                why: "system clock is before 1970".to_owned(),
            })?
            .as_secs();
        let mut jti = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut jti);

        let mut claims = Map::new();
        claims.insert(self.user_claim.clone(), Value::from(sub));
        claims.insert(self.groups_claim.clone(), Value::from(groups.to_vec()));
        if let Some(t) = target {
            claims.insert(self.target_claim.clone(), Value::from(t));
        }
        if let Some(iss) = &self.issuer {
            claims.insert("iss".to_owned(), Value::from(iss.as_str()));
        }
        if let Some(aud) = &self.audience {
            claims.insert("aud".to_owned(), Value::from(aud.as_str()));
        }
        claims.insert("iat".to_owned(), Value::from(now));
        claims.insert("nbf".to_owned(), Value::from(now));
        claims.insert(
            "exp".to_owned(),
            Value::from(now.saturating_add(ttl.as_secs())),
        );
        claims.insert("jti".to_owned(), Value::from(hex::encode(jti)));
        self.sign(&claims)
    }

    fn sign(&self, claims: &Map<String, Value>) -> Result<String, AuthnError> {
        let header = Header::new(self.algorithm.to_jose());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| AuthnError::Signing { why: e.to_string() })
    }
}

impl fmt::Debug for TokenMinter {
    // The key is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMinter")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn expected_private(found: Option<&str>) -> String {
    match found {
        Some(label) => format!("expected a pem private key, found a `{label}` block"),
        None => "expected a pem private key, found no pem block".to_owned(),
    }
}

/// Writes a new random HS256 shared secret (32 random bytes as 64 hex characters) to
/// `path` with mode 0600. Fails if the file exists: a secret is never overwritten.
pub fn write_hs256_secret_file(path: &Path) -> std::io::Result<()> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::thread_rng().fill_bytes(raw.as_mut());
    let text = Zeroizing::new(format!("{}\n", hex::encode(raw.as_ref())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
