//! Parsing of the HTTP `Authorization` header into a typed client credential.
//!
//! Owns the syntax only (RFC 9110 §11.6.2, RFC 7617 Basic, RFC 6750 Bearer, and the WS-Man
//! mutual-certificate profile URI that Windows clients send, PROTOCOL.md §1). It must not
//! decide anything (that is [`super::authenticate`]) and must never put the credential
//! text in an error or a `Debug` string: tokens and passwords are held in [`Secret`].

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use http::HeaderValue;
use zeroize::Zeroizing;

use super::error::AuthnError;
use crate::secret::Secret;

/// The header value pywinrm, pypsrp and Go winrm send with a TLS client certificate.
pub const WSMAN_MUTUAL_CERT_PROFILE: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

/// Scheme names reported as such in [`ClientCredential::Other`] (canonical spelling).
const KNOWN_SCHEMES: [&str; 6] = [
    "Negotiate",
    "NTLM",
    "Kerberos",
    "CredSSP",
    "Digest",
    "Bearer",
];

/// Longest scheme name reported verbatim; anything else is reported as `unknown`.
const MAX_SCHEME_LEN: usize = 24;

/// Basic decoding that accepts padded and unpadded base64 (clients differ).
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What the client presented in its `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredential {
    /// `Bearer <token>`.
    Bearer(Secret),
    /// `Basic base64(user:password)`; the password is expected to be a JWT.
    Basic {
        /// The user name as sent.
        user: String,
        /// The password (a JWT for hopgate).
        password: Secret,
    },
    /// The WS-Man `secprofile/https/mutual` URI: "I am using my TLS client certificate".
    CertProfile,
    /// Any other scheme (Negotiate, NTLM, ...). Holds only a scheme name that is safe to
    /// log: a known scheme, a short alphanumeric name followed by a credential, or
    /// `unknown` (so a bare credential sent without a scheme is never echoed).
    Other(String),
}

/// Parses one `Authorization` header value.
pub fn parse_authorization(value: &HeaderValue) -> Result<ClientCredential, AuthnError> {
    let text = value
        .to_str()
        .map_err(|_| AuthnError::HeaderNotText)?
        .trim();
    if text.eq_ignore_ascii_case(WSMAN_MUTUAL_CERT_PROFILE) {
        return Ok(ClientCredential::CertProfile);
    }
    let (scheme, rest) = match text.split_once(' ') {
        Some((scheme, rest)) => (scheme, Some(rest.trim_start())),
        None => (text, None),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return match rest {
            Some(token) if !token.is_empty() => {
                Ok(ClientCredential::Bearer(Secret::new(token.to_owned())))
            }
            _ => Err(AuthnError::EmptyCredential { scheme: "bearer" }),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        return match rest {
            Some(encoded) if !encoded.is_empty() => parse_basic(encoded),
            _ => Err(AuthnError::EmptyCredential { scheme: "basic" }),
        };
    }
    Ok(ClientCredential::Other(loggable_scheme(
        scheme,
        rest.is_some(),
    )))
}

/// Longest claimed user name recorded; longer ones are cut (at a character boundary).
const MAX_CLAIMED_USER: usize = 256;

/// The user part of a Basic credential, for the audit record of a failed sign-in (the
/// password is never looked at beyond the split). `None` for other schemes or an
/// unreadable credential. Control characters are dropped and the name is capped: it comes
/// from an unauthenticated client and lands in the audit trail.
pub fn claimed_basic_user(value: &HeaderValue) -> Option<String> {
    match parse_authorization(value) {
        Ok(ClientCredential::Basic { user, .. }) => {
            let mut clean: String = user.chars().filter(|c| !c.is_control()).collect();
            if clean.len() > MAX_CLAIMED_USER {
                let mut end = MAX_CLAIMED_USER;
                while !clean.is_char_boundary(end) {
                    end -= 1;
                }
                clean.truncate(end);
            }
            Some(clean)
        }
        _ => None,
    }
}

fn parse_basic(encoded: &str) -> Result<ClientCredential, AuthnError> {
    let decoded = Zeroizing::new(
        BASIC_B64
            .decode(encoded)
            .map_err(|_| AuthnError::BasicBase64)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| AuthnError::BasicUtf8)?;
    // RFC 7617 §2: the user id cannot contain ':', the password can.
    let (user, password) = text.split_once(':').ok_or(AuthnError::BasicNoColon)?;
    Ok(ClientCredential::Basic {
        user: user.to_owned(),
        password: Secret::new(password.to_owned()),
    })
}

fn loggable_scheme(scheme: &str, has_credential: bool) -> String {
    if let Some(known) = KNOWN_SCHEMES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(scheme))
    {
        return (*known).to_owned();
    }
    let plausible = has_credential
        && scheme.len() <= MAX_SCHEME_LEN
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plausible {
        scheme.to_owned()
    } else {
        "unknown".to_owned()
    }
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

    fn parse(s: &str) -> Result<ClientCredential, AuthnError> {
        parse_authorization(&HeaderValue::from_str(s).unwrap())
    }

    #[test]
    fn bearer_any_case() {
        for v in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER   abc.def.ghi",
        ] {
            assert_eq!(
                parse(v).unwrap(),
                ClientCredential::Bearer(Secret::new("abc.def.ghi".to_owned()))
            );
        }
        assert!(matches!(
            parse("Bearer"),
            Err(AuthnError::EmptyCredential { scheme: "bearer" })
        ));
        assert!(matches!(
            parse("Bearer "),
            Err(AuthnError::EmptyCredential { scheme: "bearer" })
        ));
    }

    #[test]
    fn basic_as_pywinrm_sends_it() {
        // requests' HTTPBasicAuth: "Basic " + b64("user:pass"); "alice:p:w" → password "p:w".
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:p:w")
        );
        assert_eq!(
            parse(&v).unwrap(),
            ClientCredential::Basic {
                user: "alice".to_owned(),
                password: Secret::new("p:w".to_owned())
            }
        );
        // Unpadded base64 is accepted too.
        let unpadded = format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode("bob:x")
        );
        assert!(
            matches!(parse(&unpadded).unwrap(), ClientCredential::Basic { user, .. } if user == "bob")
        );
    }

    #[test]
    fn basic_errors_are_typed() {
        assert!(matches!(parse("Basic !!!"), Err(AuthnError::BasicBase64)));
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice")
        );
        assert!(matches!(parse(&no_colon), Err(AuthnError::BasicNoColon)));
        let not_utf8 = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x'])
        );
        assert!(matches!(parse(&not_utf8), Err(AuthnError::BasicUtf8)));
        assert!(matches!(
            parse("Basic"),
            Err(AuthnError::EmptyCredential { scheme: "basic" })
        ));
    }

    #[test]
    fn non_ascii_header_is_rejected() {
        let v = HeaderValue::from_bytes(b"Bearer \xe9t\xe9").unwrap();
        assert!(matches!(
            parse_authorization(&v),
            Err(AuthnError::HeaderNotText)
        ));
    }

    #[test]
    fn wsman_cert_profile() {
        assert_eq!(
            parse(WSMAN_MUTUAL_CERT_PROFILE).unwrap(),
            ClientCredential::CertProfile
        );
    }

    #[test]
    fn other_schemes_never_echo_credentials() {
        // The raw NTLMSSP type-1 message pywinrm sends under Negotiate (PROTOCOL.md §1).
        assert_eq!(
            parse("Negotiate TlRMTVNTUAABAAAAN4II4gAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            ClientCredential::Other("Negotiate".to_owned())
        );
        assert_eq!(
            parse("ntlm TlRMTVNTUAABAAAA").unwrap(),
            ClientCredential::Other("NTLM".to_owned())
        );
        assert_eq!(
            parse("X-Custom abc").unwrap(),
            ClientCredential::Other("X-Custom".to_owned())
        );
        // A bare token without scheme must not be reported as the "scheme".
        assert_eq!(
            parse("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig").unwrap(),
            ClientCredential::Other("unknown".to_owned())
        );
        assert_eq!(
            parse("hunter2").unwrap(),
            ClientCredential::Other("unknown".to_owned())
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
        );
        let dbg = format!("{:?}", parse(&v).unwrap());
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let dbg = format!("{:?}", parse("Bearer tok.en.value").unwrap());
        assert!(!dbg.contains("tok.en"), "{dbg}");
    }
}
