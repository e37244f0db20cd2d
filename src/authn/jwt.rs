//! JWT validation: settings, the validator built from them, and the claims it yields.
//!
//! Owns signature, `exp`/`nbf` (with leeway), `aud` and `iss` checks and the extraction of
//! the user, groups and target claims, on top of `jsonwebtoken` 11 (RustCrypto provider).
//! Only the configured algorithm is accepted, so an HS256 token can never be verified
//! against an RSA/EC public key used as an HMAC secret (algorithm confusion).
//!
//! It must not fetch keys over the network (JWKS is a later addition) and must not put
//! token text in errors or logs. The key file is read once, in [`JwtValidator::new`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::AuthnError;

/// Shortest HS256 shared secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// Signature algorithms accepted for client tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    #[serde(rename = "HS256")]
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
}

// === impl JwtAlgorithm ===

impl JwtAlgorithm {
    /// The JOSE name (`HS256`, `RS256`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    pub(crate) fn to_jose(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How client JWTs are validated (`[authn.jwt]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// `"HS256"`, `"RS256"` or `"ES256"`; tokens with any other `alg` are rejected.
    pub algorithm: JwtAlgorithm,
    /// For RS256/ES256: a PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY` for RS256).
    /// For HS256: a file whose content, without surrounding whitespace, is the shared
    /// secret (at least 32 bytes). Relative paths are resolved by the config loader.
    pub key_file: PathBuf,
    /// Required `iss` value. When unset, `iss` is not checked.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required `aud` value (string or one of an array). When unset, `aud` is not checked;
    /// set it in production so tokens minted for other services are refused.
    #[serde(default)]
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds. Default 30.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Longest accepted token lifetime in seconds: `exp - iat`, and `exp - now` (so a
    /// token without `iat`, or with a late one, cannot outlive it either). Default 12 h.
    #[serde(default = "default_max_lifetime_secs")]
    pub max_lifetime_secs: u64,
    /// Claim holding the user name. Default `"sub"`.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Claim holding the groups (array of strings, or one string). Default `"groups"`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim naming the target host (a hint the proxy checks against the inventory).
    /// Default `"dst"`.
    #[serde(default = "default_target_claim")]
    pub target_claim: String,
}

fn default_leeway_secs() -> u64 {
    30
}
/// 12 hours: a working day with margin; longer-lived access should be a refresh.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 12 * 3600;

fn default_max_lifetime_secs() -> u64 {
    DEFAULT_MAX_LIFETIME_SECS
}
fn default_user_claim() -> String {
    "sub".to_owned()
}
fn default_groups_claim() -> String {
    "groups".to_owned()
}
fn default_target_claim() -> String {
    "dst".to_owned()
}

// === impl JwtSettings ===

impl JwtSettings {
    /// Settings with the defaults for everything but the algorithm and key file.
    pub fn new(algorithm: JwtAlgorithm, key_file: PathBuf) -> Self {
        Self {
            algorithm,
            key_file,
            issuer: None,
            audience: None,
            leeway_secs: default_leeway_secs(),
            max_lifetime_secs: default_max_lifetime_secs(),
            user_claim: default_user_claim(),
            groups_claim: default_groups_claim(),
            target_claim: default_target_claim(),
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user claim.
    pub user: String,
    /// The groups claim (empty when absent).
    pub groups: Vec<String>,
    /// The target claim, if present.
    pub target: Option<String>,
    /// When the token expires (`exp`).
    pub expires_at: SystemTime,
}

/// Validates client JWTs against one key and one algorithm. Cheap to share (`Arc`).
pub struct JwtValidator {
    algorithm: JwtAlgorithm,
    key: DecodingKey,
    validation: Validation,
    max_lifetime_secs: u64,
    user_claim: String,
    groups_claim: String,
    target_claim: String,
}

// === impl JwtValidator ===

impl JwtValidator {
    /// Reads `settings.key_file` once and builds the validator.
    pub fn new(settings: &JwtSettings) -> Result<Self, AuthnError> {
        let material = read_key_file(&settings.key_file)?;
        Self::from_key_material(settings, &material)
    }

    /// Builds the validator from key bytes already in memory (PEM public key, or the HS256
    /// secret); `settings.key_file` is ignored.
    pub fn from_key_material(settings: &JwtSettings, material: &[u8]) -> Result<Self, AuthnError> {
        let algorithm = settings.algorithm;
        let key = decoding_key(algorithm, material)?;

        let mut validation = Validation::new(algorithm.to_jose());
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &settings.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);

        Ok(Self {
            algorithm,
            key,
            validation,
            max_lifetime_secs: settings.max_lifetime_secs,
            user_claim: settings.user_claim.clone(),
            groups_claim: settings.groups_claim.clone(),
            target_claim: settings.target_claim.clone(),
        })
    }

    /// The one algorithm this validator accepts.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Checks signature, `alg`, `exp`, `nbf`, `aud`, `iss`, the lifetime cap, and extracts
    /// the claims.
    pub fn validate(&self, token: &str) -> Result<Claims, AuthnError> {
        self.validate_at(token, SystemTime::now())
    }

    /// [`JwtValidator::validate`] with the lifetime cap measured from `now` (the library
    /// still reads the real clock for `exp`/`nbf`).
    pub fn validate_at(&self, token: &str, now: SystemTime) -> Result<Claims, AuthnError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(map_jwt_error)?;
        let claims = data.claims;

        let user = match claims.get(&self.user_claim) {
            None | Some(Value::Null) => {
                return Err(AuthnError::MissingClaim(self.user_claim.clone()))
            }
            Some(Value::String(s)) if is_usable_name(s) => s.clone(),
            Some(_) => return Err(AuthnError::InvalidClaim(self.user_claim.clone())),
        };
        let groups = match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| AuthnError::InvalidClaim(self.groups_claim.clone()))?,
            Some(_) => return Err(AuthnError::InvalidClaim(self.groups_claim.clone())),
        };
        let target = match claims.get(&self.target_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(AuthnError::InvalidClaim(self.target_claim.clone())),
        };
        let exp = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or_else(|| AuthnError::InvalidClaim("exp".to_owned()))?;
        let iat = match claims.get("iat") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(numeric_date(v).ok_or_else(|| AuthnError::InvalidClaim("iat".to_owned()))?)
            }
        };
        self.check_lifetime(exp, iat, now)?;

        Ok(Claims {
            user,
            groups,
            target,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        })
    }
}

// === impl JwtValidator (lifetime) ===

impl JwtValidator {
    /// Refuses a token whose `exp - iat` exceeds the cap, or whose `exp` lies further than
    /// the cap (plus leeway, for the issuer's clock) ahead of `now`.
    fn check_lifetime(
        &self,
        exp: u64,
        iat: Option<u64>,
        now: SystemTime,
    ) -> Result<(), AuthnError> {
        let max = self.max_lifetime_secs;
        let too_long = AuthnError::LifetimeTooLong { max_secs: max };
        if iat.is_some_and(|iat| exp.saturating_sub(iat) > max) {
            return Err(too_long);
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if exp.saturating_sub(now) > max.saturating_add(self.validation.leeway) {
            return Err(too_long);
        }
        Ok(())
    }
}

impl fmt::Debug for JwtValidator {
    // The key is left out: for HS256 it is the shared secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("algorithm", &self.algorithm)
            .field("leeway", &self.validation.leeway)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .field("audience", &self.validation.aud)
            .field("issuer", &self.validation.iss)
            .field("user_claim", &self.user_claim)
            .field("groups_claim", &self.groups_claim)
            .field("target_claim", &self.target_claim)
            .finish_non_exhaustive()
    }
}

/// Reads a key file into memory that is wiped on drop.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, AuthnError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| AuthnError::KeyRead {
            path: path.to_owned(),
            source,
        })
}

/// The HS256 secret in a key file: its bytes without surrounding ASCII whitespace.
pub(crate) fn hmac_secret<'a>(
    algorithm: &'static str,
    material: &'a [u8],
) -> Result<&'a [u8], AuthnError> {
    let secret = material.trim_ascii();
    if secret.len() < MIN_HMAC_SECRET_LEN {
        return Err(AuthnError::KeyInvalid {
            algorithm,
            why: format!(
                "the shared secret is {} bytes, at least {MIN_HMAC_SECRET_LEN} are required",
                secret.len()
            ),
        });
    }
    Ok(secret)
}

/// The label of the first PEM block (`-----BEGIN <label>-----`), if any.
pub(crate) fn pem_label(material: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(material).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = text.get(start..)?;
    let end = rest.find("-----")?;
    rest.get(..end)
}

fn decoding_key(algorithm: JwtAlgorithm, material: &[u8]) -> Result<DecodingKey, AuthnError> {
    let name = algorithm.as_str();
    let invalid = |why: String| AuthnError::KeyInvalid {
        algorithm: name,
        why,
    };
    let key = match algorithm {
        JwtAlgorithm::Hs256 => return Ok(DecodingKey::from_secret(hmac_secret(name, material)?)),
        JwtAlgorithm::Rs256 => match pem_label(material) {
            Some("PUBLIC KEY" | "RSA PUBLIC KEY") => DecodingKey::from_rsa_pem(material),
            other => return Err(invalid(expected_public(other))),
        },
        JwtAlgorithm::Es256 => match pem_label(material) {
            Some("PUBLIC KEY") => DecodingKey::from_ec_pem(material),
            other => return Err(invalid(expected_public(other))),
        },
    }
    .map_err(|e| invalid(format!("cannot parse the pem key: {e}")))?;

    // Build a verifier once with a dummy signature: key/algorithm mismatches (e.g. an RSA
    // key for ES256, a point not on P-256) fail here at startup rather than on every token.
    match jsonwebtoken::crypto::verify("AAAA", b"probe", &key, algorithm.to_jose()) {
        Ok(_) => Ok(key),
        Err(e) => Err(invalid(format!("key does not fit the algorithm: {e}"))),
    }
}

fn expected_public(found: Option<&str>) -> String {
    match found {
        Some(label) => format!("expected a pem public key, found a `{label}` block"),
        None => "expected a pem public key, found no pem block".to_owned(),
    }
}

/// `exp`/`nbf` as whole seconds; RFC 7519 NumericDate may be fractional.
fn numeric_date(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    if (0.0..1.0e15).contains(&f) {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "bounded, non-negative, floor"
        )]
        let secs = f.floor() as u64;
        Some(secs)
    } else {
        None
    }
}

/// A user name must be non-empty, bounded and free of control characters (it goes into
/// audit lines and vault references).
fn is_usable_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) && s.trim() == s
}

/// Maps library errors onto ours without carrying any token text along.
fn map_jwt_error(e: jsonwebtoken::errors::Error) -> AuthnError {
    match e.into_kind() {
        ErrorKind::InvalidSignature => AuthnError::BadSignature,
        ErrorKind::ExpiredSignature => AuthnError::Expired,
        ErrorKind::ImmatureSignature => AuthnError::NotYetValid,
        ErrorKind::InvalidAudience => AuthnError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthnError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthnError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) => AuthnError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => AuthnError::InvalidClaim(claim),
        ErrorKind::InvalidToken => AuthnError::Malformed {
            why: "not three dot-separated parts",
        },
        ErrorKind::Base64(_) => AuthnError::Malformed {
            why: "invalid base64url",
        },
        // Includes an unknown or `none` alg in the header, which fails to deserialize.
        ErrorKind::Json(_) => AuthnError::Malformed {
            why: "invalid json in header or payload",
        },
        ErrorKind::Utf8(_) => AuthnError::Malformed {
            why: "invalid utf-8",
        },
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => AuthnError::KeyInvalid {
            algorithm: "configured",
            why: "the verification key does not fit the token algorithm".to_owned(),
        },
        _ => AuthnError::Malformed {
            why: "rejected by the jwt library",
        },
    }
}
