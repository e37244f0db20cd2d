//! Tests for the authentication decision (`authenticate`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use http::HeaderValue;
use jsonwebtoken::Algorithm;
use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use serde_json::json;

use super::authenticate::{Authenticator, AuthnFailure};
use super::error::AuthnError;
use super::header::WSMAN_MUTUAL_CERT_PROFILE;
use super::jwt::{JwtAlgorithm, JwtSettings, JwtValidator};
use super::principal::AuthMethod;
use super::test_keys::{encode, hs_key, now, HS_OTHER_SECRET, HS_SECRET};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn authenticator(jwt: bool, certs: bool) -> Authenticator {
    let mut s = JwtSettings::new(JwtAlgorithm::Hs256, "unused".into());
    s.audience = Some("hopgate".to_owned());
    let v = jwt.then(|| JwtValidator::from_key_material(&s, HS_SECRET).unwrap());
    Authenticator::new(v, certs)
}

fn token_for(user: &str, exp_offset: i64, secret: &[u8]) -> String {
    let exp = now().checked_add_signed(exp_offset).unwrap();
    encode(
        Algorithm::HS256,
        &hs_key(secret),
        &json!({"sub": user, "groups": ["ops"], "dst": "web1", "aud": "hopgate", "exp": exp}),
    )
}

fn header(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    header(&format!("Bearer {token}"))
}

fn basic(user: &str, password: &str) -> HeaderValue {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    header(&format!("Basic {b64}"))
}

fn upn_cert(upn: &str) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "Alice");
    params.subject_alt_names = vec![SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        upn.into(),
    ))];
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn nameless_cert() -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn client_cert_with_or_without_profile_header() {
    let a = authenticator(true, true);
    let cert = upn_cert("alice@hopgate.test");
    let profile = header(WSMAN_MUTUAL_CERT_PROFILE);
    for h in [None, Some(&profile)] {
        let p = a.authenticate(Some(&cert), h, IP).unwrap();
        assert_eq!(p.name, "alice@hopgate.test");
        assert_eq!(p.method, AuthMethod::ClientCertificate);
        assert_eq!(p.source_ip, IP);
        assert!(p.groups.is_empty());
        assert_eq!(p.target, None);
    }
}

#[test]
fn client_cert_wins_over_a_token() {
    let a = authenticator(true, true);
    let cert = upn_cert("alice@hopgate.test");
    let tok = bearer(&token_for("bob@hopgate.test", 300, HS_SECRET));
    let p = a.authenticate(Some(&cert), Some(&tok), IP).unwrap();
    assert_eq!(p.name, "alice@hopgate.test");
    assert_eq!(p.method, AuthMethod::ClientCertificate);
}

#[test]
fn unmapped_cert_fails() {
    let a = authenticator(true, true);
    let r = a.authenticate(Some(&nameless_cert()), None, IP);
    assert!(matches!(
        r,
        Err(AuthnFailure::CertificateUnmapped {
            why: AuthnError::CertificateNoName
        })
    ));
}

#[test]
fn cert_ignored_when_cert_auth_is_off() {
    let a = authenticator(true, false);
    let cert = upn_cert("alice@hopgate.test");
    assert!(matches!(
        a.authenticate(Some(&cert), None, IP),
        Err(AuthnFailure::NoCredentials)
    ));
    let profile = header(WSMAN_MUTUAL_CERT_PROFILE);
    assert!(matches!(
        a.authenticate(Some(&cert), Some(&profile), IP),
        Err(AuthnFailure::CertificateMissing)
    ));
    let tok = bearer(&token_for("bob@hopgate.test", 300, HS_SECRET));
    assert_eq!(
        a.authenticate(Some(&cert), Some(&tok), IP).unwrap().name,
        "bob@hopgate.test"
    );
}

#[test]
fn profile_header_without_cert() {
    let a = authenticator(true, true);
    let profile = header(WSMAN_MUTUAL_CERT_PROFILE);
    assert!(matches!(
        a.authenticate(None, Some(&profile), IP),
        Err(AuthnFailure::CertificateMissing)
    ));
}

#[test]
fn bearer_ok() {
    let a = authenticator(true, true);
    let tok = bearer(&token_for("bob@hopgate.test", 300, HS_SECRET));
    let p = a.authenticate(None, Some(&tok), IP).unwrap();
    assert_eq!(p.name, "bob@hopgate.test");
    assert_eq!(p.method, AuthMethod::Bearer);
    assert_eq!(p.groups, vec!["ops".to_owned()]);
    assert_eq!(p.target.as_deref(), Some("web1"));
}

#[test]
fn bearer_expired_and_invalid() {
    let a = authenticator(true, true);
    let expired = bearer(&token_for("bob@hopgate.test", -300, HS_SECRET));
    let r = a.authenticate(None, Some(&expired), IP);
    assert!(matches!(r, Err(AuthnFailure::TokenExpired)));
    assert_eq!(r.unwrap_err().category(), "token_expired");

    let forged = bearer(&token_for("bob@hopgate.test", 300, HS_OTHER_SECRET));
    assert!(matches!(
        a.authenticate(None, Some(&forged), IP),
        Err(AuthnFailure::TokenInvalid {
            why: AuthnError::BadSignature
        })
    ));
}

#[test]
fn basic_with_token_as_password() {
    let a = authenticator(true, true);
    let tok = token_for("carol@hopgate.test", 300, HS_SECRET);
    let p = a
        .authenticate(None, Some(&basic("carol@hopgate.test", &tok)), IP)
        .unwrap();
    assert_eq!(p.name, "carol@hopgate.test");
    assert_eq!(p.method, AuthMethod::BasicToken);
}

#[test]
fn basic_user_mismatch() {
    let a = authenticator(true, true);
    let tok = token_for("carol@hopgate.test", 300, HS_SECRET);
    for user in [
        "mallory@hopgate.test",
        "Carol@hopgate.test",
        "carol@hopgate.tes",
        "",
    ] {
        let r = a.authenticate(None, Some(&basic(user, &tok)), IP);
        assert!(
            matches!(&r, Err(AuthnFailure::UserMismatch { token_user }) if token_user == "carol@hopgate.test"),
            "{user:?}: {r:?}"
        );
    }
}

#[test]
fn basic_with_a_plain_password_is_token_invalid() {
    let a = authenticator(true, true);
    let r = a.authenticate(None, Some(&basic("carol", "Passw0rd!")), IP);
    assert!(matches!(
        r,
        Err(AuthnFailure::TokenInvalid {
            why: AuthnError::Malformed { .. }
        })
    ));
    // The failure text must not contain the password.
    let text = format!("{} {:?}", r.as_ref().unwrap_err(), r);
    assert!(!text.contains("Passw0rd"), "{text}");
}

#[test]
fn tokens_refused_when_jwt_is_off() {
    let a = authenticator(false, true);
    let tok = token_for("bob@hopgate.test", 300, HS_SECRET);
    assert!(matches!(
        a.authenticate(None, Some(&bearer(&tok)), IP),
        Err(AuthnFailure::UnsupportedScheme { scheme }) if scheme == "Bearer"
    ));
    assert!(matches!(
        a.authenticate(None, Some(&basic("bob@hopgate.test", &tok)), IP),
        Err(AuthnFailure::UnsupportedScheme { scheme }) if scheme == "Basic"
    ));
}

#[test]
fn other_failures() {
    let a = authenticator(true, true);
    assert!(matches!(
        a.authenticate(None, None, IP),
        Err(AuthnFailure::NoCredentials)
    ));
    let negotiate = header("Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==");
    let r = a.authenticate(None, Some(&negotiate), IP);
    assert!(matches!(&r, Err(AuthnFailure::UnsupportedScheme { scheme }) if scheme == "Negotiate"));
    assert_eq!(r.unwrap_err().category(), "unsupported_scheme");
    assert!(matches!(
        a.authenticate(None, Some(&header("Basic %%%")), IP),
        Err(AuthnFailure::MalformedHeader {
            why: AuthnError::BasicBase64
        })
    ));
}

/// Issue #14: a repeated `Authorization` header was accepted, first one winning. Now it
/// is refused whichever order the good and bad credentials come in, before any token is
/// looked at.
#[test]
fn repeated_authorization_header_is_refused() {
    let a = authenticator(true, false);
    let good = bearer(&token_for("alice@hopgate.test", 300, HS_SECRET));
    let mut one = http::HeaderMap::new();
    one.append(http::header::AUTHORIZATION, good.clone());
    assert_eq!(
        a.authenticate_headers(None, &one, IP).unwrap().name,
        "alice@hopgate.test"
    );
    for pair in [
        [good.clone(), bearer("not.a.token")],
        [bearer("not.a.token"), good.clone()],
        [good.clone(), good.clone()],
    ] {
        let mut headers = http::HeaderMap::new();
        for v in pair {
            headers.append(http::header::AUTHORIZATION, v);
        }
        let r = a.authenticate_headers(None, &headers, IP);
        assert!(matches!(r, Err(AuthnFailure::RepeatedHeader)), "{r:?}");
        let failure = r.unwrap_err();
        assert_eq!(failure.category(), "repeated_authorization_header");
        assert_eq!(failure.to_string(), "repeated authorization header");
    }
}

/// Issue #14: failed Basic sign-ins now name the claimed user (never the password).
#[test]
fn claimed_basic_user_is_the_user_part_only() {
    use super::header::claimed_basic_user;
    assert_eq!(
        claimed_basic_user(&basic("mallory@corp", "P4ss!:with:colons")).as_deref(),
        Some("mallory@corp")
    );
    assert_eq!(claimed_basic_user(&bearer("a.b.c")), None);
    assert_eq!(claimed_basic_user(&header("Basic %%%")), None);
    assert_eq!(
        claimed_basic_user(&basic("a\u{1b}[31mb\nc", "x")).as_deref(),
        Some("a[31mbc")
    );
    let long = "é".repeat(300);
    let got = claimed_basic_user(&basic(&long, "x")).unwrap();
    assert!(got.len() <= 256 && long.starts_with(&got), "{}", got.len());
}

/// Issue #14: a lifetime failure has its own category for the audit record.
#[test]
fn overlong_token_is_its_own_failure() {
    let a = authenticator(true, false);
    let forever = token_for("alice@hopgate.test", 10 * 365 * 86_400, HS_SECRET);
    let r = a.authenticate(None, Some(&bearer(&forever)), IP);
    assert!(
        matches!(
            &r,
            Err(AuthnFailure::TokenLifetime {
                why: AuthnError::LifetimeTooLong { max_secs: 43_200 }
            })
        ),
        "{r:?}"
    );
    assert_eq!(r.unwrap_err().category(), "token_lifetime_too_long");
}
