//! Client-certificate mapping: which person a verified TLS client certificate names.
//!
//! Owns the name-extraction rules only. Chain verification, expiry and revocation are the
//! listener's job (rustls with the configured client CA); this module assumes the leaf it
//! is given has already been verified and must not be used on unverified certificates.
//!
//! Rules, in order (the first field present decides; an unusable value there is an error,
//! never a silent fall-through to a weaker field):
//! 1. SAN otherName UPN (OID 1.3.6.1.4.1.311.20.2.3, a UTF8String inside the explicit
//!    `[0]` tag), which is what Windows certificate mapping uses (PROTOCOL.md §1);
//! 2. SAN rfc822Name (email);
//! 3. the subject's first CN.

use x509_parser::asn1_rs::{Any, FromDer, Tag, TaggedExplicit};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::error::AuthnError;

/// DER content bytes of OID 1.3.6.1.4.1.311.20.2.3 (szOID_NT_PRINCIPAL_NAME, the UPN):
/// `1.3` → 0x2B, `311` → 0x82 0x37, `20` → 0x14.
const UPN_OID_DER: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];

/// Longest principal name accepted from a certificate, in bytes.
const MAX_NAME_LEN: usize = 256;

/// The principal name a verified client certificate (leaf, DER) maps to.
///
/// Returns [`AuthnError::CertificateNoName`] when the certificate has no UPN, email or CN,
/// and [`AuthnError::CertificateBadName`] when the deciding field is unusable.
pub fn principal_name_from_cert(der: &[u8]) -> Result<String, AuthnError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| AuthnError::CertificateParse { why: e.to_string() })?;
    if !rest.is_empty() {
        return Err(AuthnError::CertificateParse {
            why: format!("{} trailing bytes after the certificate", rest.len()),
        });
    }

    let sans = cert
        .subject_alternative_name()
        .map_err(|e| AuthnError::CertificateParse {
            why: format!("subject alternative name: {e}"),
        })?
        .map(|ext| ext.value.general_names.as_slice())
        .unwrap_or_default();

    let mut upns = Vec::new();
    let mut emails = Vec::new();
    for name in sans {
        match name {
            GeneralName::OtherName(oid, value) if oid.as_bytes() == UPN_OID_DER => {
                upns.push(upn_value(value)?);
            }
            GeneralName::RFC822Name(email) => emails.push(*email),
            _ => {}
        }
    }
    if let Some(upn) = single("san upn", &upns)? {
        return Ok(upn.to_owned());
    }
    if let Some(email) = single("san email", &emails)? {
        return Ok(email.to_owned());
    }
    let cn = cert.subject().iter_common_name().next();
    let Some(cn) = cn else {
        return Err(AuthnError::CertificateNoName);
    };
    let cn = cn.as_str().map_err(|_| AuthnError::CertificateBadName {
        field: "subject cn",
        why: "not a text string",
    })?;
    check_name("subject cn", cn)?;
    Ok(cn.to_owned())
}

/// Decodes the otherName value: `[0] EXPLICIT UTF8String`.
fn upn_value(value: &[u8]) -> Result<&str, AuthnError> {
    let bad = |why| AuthnError::CertificateBadName {
        field: "san upn",
        why,
    };
    let (rest, tagged) = TaggedExplicit::<Any, x509_parser::asn1_rs::Error, 0>::from_der(value)
        .map_err(|_| bad("not an explicit [0] value"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the value"));
    }
    let inner = tagged.into_inner();
    if inner.tag() != Tag::Utf8String {
        return Err(bad("not a utf8string"));
    }
    std::str::from_utf8(inner.data).map_err(|_| bad("not valid utf-8"))
}

/// The one value of a field, after checking it; several *different* values are ambiguous.
fn single<'a>(field: &'static str, values: &[&'a str]) -> Result<Option<&'a str>, AuthnError> {
    let Some(first) = values.first() else {
        return Ok(None);
    };
    if values.iter().any(|v| v != first) {
        return Err(AuthnError::CertificateBadName {
            field,
            why: "several different values",
        });
    }
    check_name(field, first)?;
    Ok(Some(first))
}

/// A principal name is non-empty, bounded, has no control characters and no surrounding
/// whitespace (so it cannot forge audit lines or differ invisibly from a policy entry).
fn check_name(field: &'static str, name: &str) -> Result<(), AuthnError> {
    let why = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 256 bytes"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else if name.trim() != name {
        "has surrounding whitespace"
    } else {
        return Ok(());
    };
    Err(AuthnError::CertificateBadName { field, why })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

    fn cert(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn upn(s: &str) -> SanType {
        SanType::OtherName((UPN_OID.to_vec(), s.into()))
    }

    fn email(s: &str) -> SanType {
        SanType::Rfc822Name(s.try_into().unwrap())
    }

    #[test]
    fn upn_wins_over_email_and_cn() {
        let der = cert(
            Some("Alice Smith"),
            vec![
                SanType::DnsName("alice.example".try_into().unwrap()),
                email("alice@mail.example"),
                upn("alice@corp.example"),
            ],
        );
        assert_eq!(
            principal_name_from_cert(&der).unwrap(),
            "alice@corp.example"
        );
    }

    #[test]
    fn email_when_no_upn() {
        let der = cert(Some("Bob"), vec![email("bob@mail.example")]);
        assert_eq!(principal_name_from_cert(&der).unwrap(), "bob@mail.example");
    }

    #[test]
    fn cn_when_no_san() {
        let der = cert(Some("carol"), vec![]);
        assert_eq!(principal_name_from_cert(&der).unwrap(), "carol");
    }

    #[test]
    fn cn_when_san_has_only_dns() {
        let der = cert(
            Some("dave"),
            vec![SanType::DnsName("x.example".try_into().unwrap())],
        );
        assert_eq!(principal_name_from_cert(&der).unwrap(), "dave");
    }

    #[test]
    fn other_othername_oid_is_ignored() {
        // A non-UPN otherName (here 1.2.3.4) must not be taken for the UPN.
        let der = cert(
            Some("erin"),
            vec![SanType::OtherName((
                vec![1, 2, 3, 4],
                "mallory@corp.example".into(),
            ))],
        );
        assert_eq!(principal_name_from_cert(&der).unwrap(), "erin");
    }

    #[test]
    fn no_name_is_an_error() {
        let der = cert(
            None,
            vec![SanType::DnsName("x.example".try_into().unwrap())],
        );
        assert!(matches!(
            principal_name_from_cert(&der),
            Err(AuthnError::CertificateNoName)
        ));
    }

    #[test]
    fn conflicting_upns_are_rejected() {
        let der = cert(None, vec![upn("a@corp.example"), upn("b@corp.example")]);
        assert!(matches!(
            principal_name_from_cert(&der),
            Err(AuthnError::CertificateBadName {
                field: "san upn",
                ..
            })
        ));
    }

    #[test]
    fn control_characters_are_rejected_not_skipped() {
        let der = cert(Some("fallback"), vec![upn("alice\n@corp.example")]);
        assert!(matches!(
            principal_name_from_cert(&der),
            Err(AuthnError::CertificateBadName {
                field: "san upn",
                ..
            })
        ));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_parse_errors() {
        assert!(matches!(
            principal_name_from_cert(b"not a certificate"),
            Err(AuthnError::CertificateParse { .. })
        ));
        let mut der = cert(Some("carol"), vec![]);
        der.push(0);
        assert!(matches!(
            principal_name_from_cert(&der),
            Err(AuthnError::CertificateParse { .. })
        ));
    }

    /// Made by OpenSSL 3.0 (an encoder independent of rcgen), `openssl x509 -text` shows
    /// `othername: UPN::alice@corp.example, email:alice@mail.example`:
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500
    ///  -subj "/CN=Alice Smith/O=Example" -addext "subjectAltName=otherName:
    ///  1.3.6.1.4.1.311.20.2.3;UTF8:alice@corp.example,email:alice@mail.example"
    ///  -addext "extendedKeyUsage=clientAuth"`
    const OPENSSL_UPN_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIICATCCAaegAwIBAgIUd5p4QfbHdgdiHeQsGkbVeFlLzTwwCgYIKoZIzj0EAwIw\nKDEUMBIGA1UEAwwLQWxpY2UgU21pdGgxEDAOBgNVBAoMB0V4YW1wbGUwIBcNMjYx\nMTIzMDQwMTUwWhgPMjEyNjEwMzAwNDAxNTBaMCgxFDASBgNVBAMMC0FsaWNlIFNt\naXRoMRAwDgYDVQQKDAdFeGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\noi1QbW/aeG2CApfnYQMBzo86T/ca/qVX1tdYNAxu/DxSMFoDvDG7RwWLt3rUyz2v\nqVN/qjLwaTpguwZFUwNUt6OBrDCBqTAdBgNVHQ4EFgQUFD72Xmy2KUAAHPKV4xur\nwz1Whq4wHwYDVR0jBBgwFoAUFD72Xmy2KUAAHPKV4xurwz1Whq4wDwYDVR0TAQH/\nBAUwAwEB/zBBBgNVHREEOjA4oCIGCisGAQQBgjcUAgOgFAwSYWxpY2VAY29ycC5l\neGFtcGxlgRJhbGljZUBtYWlsLmV4YW1wbGUwEwYDVR0lBAwwCgYIKwYBBQUHAwIw\nCgYIKoZIzj0EAwIDSAAwRQIhAL5136dCuPdVwvJ1IM73ig2YR5OVi+5Lz0PuvoIK\n9R3EAiA2ter5jm1LJYS6O3cvylgSX7Qd4lASK3DN5eh80jLXUA==\n-----END CERTIFICATE-----";

    #[test]
    fn openssl_made_upn_certificate() {
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(OPENSSL_UPN_CERT.as_bytes()).unwrap();
        assert_eq!(
            principal_name_from_cert(&der).unwrap(),
            "alice@corp.example"
        );
    }

    #[test]
    fn upn_oid_constant_matches_dotted_form() {
        let oid = x509_parser::oid_registry::Oid::from(&UPN_OID[..]).unwrap();
        assert_eq!(oid.as_bytes(), UPN_OID_DER);
        assert_eq!(oid.to_id_string(), "1.3.6.1.4.1.311.20.2.3");
    }
}
