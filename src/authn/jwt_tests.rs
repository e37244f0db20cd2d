//! Tests for `jwt` and `mint`: every rejection reason, three algorithms, key handling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use super::error::AuthnError;
use super::jwt::{JwtAlgorithm, JwtSettings, JwtValidator};
use super::mint::{write_hs256_secret_file, TokenMinter};
use super::test_keys::{encode, es256, hs_key, now, rs256, HS_OTHER_SECRET, HS_SECRET};

fn settings(alg: JwtAlgorithm) -> JwtSettings {
    let mut s = JwtSettings::new(alg, "unused".into());
    s.issuer = Some("https://idp.hopgate.test".to_owned());
    s.audience = Some("hopgate".to_owned());
    s
}

fn hs_validator() -> JwtValidator {
    JwtValidator::from_key_material(&settings(JwtAlgorithm::Hs256), HS_SECRET).unwrap()
}

/// Claims that pass every check of `settings()`; tests change one thing at a time.
fn good_claims() -> serde_json::Value {
    let t = now();
    json!({
        "sub": "alice@hopgate.test",
        "groups": ["ops", "dba"],
        "dst": "web1",
        "iss": "https://idp.hopgate.test",
        "aud": "hopgate",
        "iat": t,
        "nbf": t,
        "exp": t + 300,
    })
}

fn hs_token(claims: &serde_json::Value) -> String {
    encode(Algorithm::HS256, &hs_key(HS_SECRET), claims)
}

fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut c = good_claims();
    c[key] = value;
    c
}

fn without(key: &str) -> serde_json::Value {
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove(key);
    c
}

#[test]
fn hs256_valid_token_yields_claims() {
    let claims = good_claims();
    let got = hs_validator().validate(&hs_token(&claims)).unwrap();
    assert_eq!(got.user, "alice@hopgate.test");
    assert_eq!(got.groups, vec!["ops".to_owned(), "dba".to_owned()]);
    assert_eq!(got.target.as_deref(), Some("web1"));
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(got.expires_at, UNIX_EPOCH + Duration::from_secs(exp));
}

#[test]
fn expired_token_is_rejected_beyond_leeway_only() {
    let v = hs_validator(); // leeway 30 s
    let expired = with("exp", json!(now() - 120));
    assert!(matches!(
        v.validate(&hs_token(&expired)),
        Err(AuthnError::Expired)
    ));
    let within_leeway = with("exp", json!(now() - 5));
    assert!(v.validate(&hs_token(&within_leeway)).is_ok());
}

#[test]
fn not_yet_valid_token_is_rejected_beyond_leeway_only() {
    let v = hs_validator();
    let future = with("nbf", json!(now() + 600));
    assert!(matches!(
        v.validate(&hs_token(&future)),
        Err(AuthnError::NotYetValid)
    ));
    let within_leeway = with("nbf", json!(now() + 5));
    assert!(v.validate(&hs_token(&within_leeway)).is_ok());
}

#[test]
fn audience_is_checked() {
    let v = hs_validator();
    let wrong = with("aud", json!("other-service"));
    assert!(matches!(
        v.validate(&hs_token(&wrong)),
        Err(AuthnError::WrongAudience)
    ));
    let in_array = with("aud", json!(["other-service", "hopgate"]));
    assert!(v.validate(&hs_token(&in_array)).is_ok());
    let missing = without("aud");
    assert!(matches!(
        v.validate(&hs_token(&missing)),
        Err(AuthnError::MissingClaim(c)) if c == "aud"
    ));
}

#[test]
fn audience_unchecked_when_not_configured() {
    let mut s = settings(JwtAlgorithm::Hs256);
    s.audience = None;
    let v = JwtValidator::from_key_material(&s, HS_SECRET).unwrap();
    assert!(v
        .validate(&hs_token(&with("aud", json!("anything"))))
        .is_ok());
    assert!(v.validate(&hs_token(&without("aud"))).is_ok());
}

#[test]
fn issuer_is_checked() {
    let v = hs_validator();
    let wrong = with("iss", json!("https://evil.test"));
    assert!(matches!(
        v.validate(&hs_token(&wrong)),
        Err(AuthnError::WrongIssuer)
    ));
    assert!(matches!(
        v.validate(&hs_token(&without("iss"))),
        Err(AuthnError::MissingClaim(c)) if c == "iss"
    ));
}

#[test]
fn exp_is_required() {
    assert!(matches!(
        hs_validator().validate(&hs_token(&without("exp"))),
        Err(AuthnError::MissingClaim(c)) if c == "exp"
    ));
}

#[test]
fn wrong_hmac_key_is_bad_signature() {
    let token = encode(Algorithm::HS256, &hs_key(HS_OTHER_SECRET), &good_claims());
    assert!(matches!(
        hs_validator().validate(&token),
        Err(AuthnError::BadSignature)
    ));
}

#[test]
fn tampered_payload_is_bad_signature() {
    let token = hs_token(&good_claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let forged = hs_token(&with("sub", json!("mallory@hopgate.test")));
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();
    assert!(matches!(
        hs_validator().validate(&parts.join(".")),
        Err(AuthnError::BadSignature)
    ));
}

#[test]
fn algorithm_confusion_hs256_against_rs256_key_fails() {
    // The attack: sign HS256 with the RSA *public* key bytes as the HMAC secret.
    let keys = rs256();
    let v = JwtValidator::from_key_material(&settings(JwtAlgorithm::Rs256), keys.public.as_bytes())
        .unwrap();
    let token = encode(
        Algorithm::HS256,
        &EncodingKey::from_secret(keys.public.as_bytes()),
        &good_claims(),
    );
    assert!(matches!(
        v.validate(&token),
        Err(AuthnError::AlgorithmNotAllowed)
    ));
    // And an RS256 token is refused by an HS256 validator.
    let rs = encode(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(keys.private.as_bytes()).unwrap(),
        &good_claims(),
    );
    assert!(matches!(
        hs_validator().validate(&rs),
        Err(AuthnError::AlgorithmNotAllowed)
    ));
}

#[test]
fn alg_none_and_garbage_are_malformed() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(good_claims().to_string());
    let none_token = format!("{header}.{payload}.");
    assert!(matches!(
        hs_validator().validate(&none_token),
        Err(AuthnError::Malformed { .. })
    ));
    for garbage in ["", "abc", "a.b", "!!.??.**"] {
        assert!(
            matches!(
                hs_validator().validate(garbage),
                Err(AuthnError::Malformed { .. })
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn rs256_round_trip_and_wrong_key() {
    let keys = rs256();
    let s = settings(JwtAlgorithm::Rs256);
    let v = JwtValidator::from_key_material(&s, keys.public.as_bytes()).unwrap();
    let minter = TokenMinter::new(JwtAlgorithm::Rs256, keys.private.as_bytes())
        .unwrap()
        .with_issuer(s.issuer.clone())
        .with_audience(s.audience.clone());
    let token = minter
        .mint(
            "bob@hopgate.test",
            &["ops".to_owned()],
            None,
            Duration::from_secs(60),
        )
        .unwrap();
    let claims = v.validate(&token).unwrap();
    assert_eq!(claims.user, "bob@hopgate.test");
    assert_eq!(claims.groups, vec!["ops".to_owned()]);
    assert_eq!(claims.target, None);

    // A forged signature on the same header and payload does not verify.
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = "c2lnbmF0dXJl";
    assert!(matches!(
        v.validate(&parts.join(".")),
        Err(AuthnError::BadSignature)
    ));
}

#[test]
fn es256_round_trip_and_wrong_key() {
    let keys = es256();
    let other = es256();
    let s = settings(JwtAlgorithm::Es256);
    let v = JwtValidator::from_key_material(&s, keys.public.as_bytes()).unwrap();
    let claims = good_claims();
    let ok = encode(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(keys.private.as_bytes()).unwrap(),
        &claims,
    );
    assert_eq!(v.validate(&ok).unwrap().user, "alice@hopgate.test");
    let wrong = encode(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(other.private.as_bytes()).unwrap(),
        &claims,
    );
    assert!(matches!(v.validate(&wrong), Err(AuthnError::BadSignature)));
}

#[test]
fn claim_names_and_shapes() {
    let mut s = settings(JwtAlgorithm::Hs256);
    s.user_claim = "upn".to_owned();
    s.groups_claim = "roles".to_owned();
    s.target_claim = "host".to_owned();
    let v = JwtValidator::from_key_material(&s, HS_SECRET).unwrap();
    let mut c = good_claims();
    c["upn"] = json!("carol@hopgate.test");
    c["roles"] = json!("admins");
    c["host"] = json!("db1");
    let got = v.validate(&hs_token(&c)).unwrap();
    assert_eq!(got.user, "carol@hopgate.test");
    assert_eq!(got.groups, vec!["admins".to_owned()]);
    assert_eq!(got.target.as_deref(), Some("db1"));

    // `sub` is ignored once user_claim is `upn`.
    c.as_object_mut().unwrap().remove("upn");
    assert!(matches!(
        v.validate(&hs_token(&c)),
        Err(AuthnError::MissingClaim(n)) if n == "upn"
    ));

    let v = hs_validator();
    let bad_groups = with("groups", json!(["ok", 7]));
    assert!(matches!(
        v.validate(&hs_token(&bad_groups)),
        Err(AuthnError::InvalidClaim(n)) if n == "groups"
    ));
    let no_groups = without("groups");
    assert!(v.validate(&hs_token(&no_groups)).unwrap().groups.is_empty());
    let numeric_user = with("sub", json!(42));
    assert!(matches!(
        v.validate(&hs_token(&numeric_user)),
        Err(AuthnError::InvalidClaim(n)) if n == "sub"
    ));
    let control_user = with("sub", json!("alice\nfake audit line"));
    assert!(matches!(
        v.validate(&hs_token(&control_user)),
        Err(AuthnError::InvalidClaim(n)) if n == "sub"
    ));
    let bad_target = with("dst", json!(["a", "b"]));
    assert!(matches!(
        v.validate(&hs_token(&bad_target)),
        Err(AuthnError::InvalidClaim(n)) if n == "dst"
    ));
}

#[test]
fn key_material_is_checked_at_startup() {
    let short = JwtValidator::from_key_material(&settings(JwtAlgorithm::Hs256), b"short\n");
    assert!(matches!(
        short,
        Err(AuthnError::KeyInvalid {
            algorithm: "HS256",
            ..
        })
    ));

    // A private key where the public key belongs.
    let rs = rs256();
    let e = JwtValidator::from_key_material(&settings(JwtAlgorithm::Rs256), rs.private.as_bytes());
    assert!(matches!(
        e,
        Err(AuthnError::KeyInvalid {
            algorithm: "RS256",
            ..
        })
    ));

    // An RSA public key configured for ES256.
    let e = JwtValidator::from_key_material(&settings(JwtAlgorithm::Es256), rs.public.as_bytes());
    assert!(
        matches!(
            e,
            Err(AuthnError::KeyInvalid {
                algorithm: "ES256",
                ..
            })
        ),
        "{e:?}"
    );

    // An EC public key configured for RS256.
    let e =
        JwtValidator::from_key_material(&settings(JwtAlgorithm::Rs256), es256().public.as_bytes());
    assert!(
        matches!(
            e,
            Err(AuthnError::KeyInvalid {
                algorithm: "RS256",
                ..
            })
        ),
        "{e:?}"
    );

    // Minting needs a private key.
    let e = TokenMinter::new(JwtAlgorithm::Es256, es256().public.as_bytes());
    assert!(matches!(
        e,
        Err(AuthnError::KeyInvalid {
            algorithm: "ES256",
            ..
        })
    ));
}

#[test]
fn minter_from_settings_makes_tokens_the_validator_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("jwt.secret");
    write_hs256_secret_file(&secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        write_hs256_secret_file(&secret).is_err(),
        "never overwrites"
    );

    let mut s = settings(JwtAlgorithm::Hs256);
    s.key_file = secret;
    let v = JwtValidator::new(&s).unwrap();
    let minter = TokenMinter::for_settings(&s, None).unwrap();
    let token = minter
        .mint(
            "dave@hopgate.test",
            &[],
            Some("web2"),
            Duration::from_secs(120),
        )
        .unwrap();
    let got = v.validate(&token).unwrap();
    assert_eq!(got.user, "dave@hopgate.test");
    assert_eq!(got.target.as_deref(), Some("web2"));
    assert!(got.groups.is_empty());

    // A token minted with ttl 0 is already past exp but within the 30 s leeway.
    let zero = minter
        .mint("dave@hopgate.test", &[], None, Duration::ZERO)
        .unwrap();
    assert!(v.validate(&zero).is_ok());

    let missing = JwtSettings::new(JwtAlgorithm::Hs256, dir.path().join("nope"));
    assert!(matches!(
        JwtValidator::new(&missing),
        Err(AuthnError::KeyRead { .. })
    ));
    let es = JwtSettings::new(JwtAlgorithm::Es256, dir.path().join("pub.pem"));
    assert!(matches!(
        TokenMinter::for_settings(&es, None),
        Err(AuthnError::KeyInvalid { .. })
    ));
}

#[test]
fn settings_deserialize_with_defaults_and_reject_unknown_fields() {
    let s: JwtSettings = toml::from_str("algorithm = \"ES256\"\nkey_file = \"jwt.pub\"\n").unwrap();
    assert_eq!(s, JwtSettings::new(JwtAlgorithm::Es256, "jwt.pub".into()));
    assert_eq!(s.leeway_secs, 30);
    assert_eq!(
        (
            s.user_claim.as_str(),
            s.groups_claim.as_str(),
            s.target_claim.as_str()
        ),
        ("sub", "groups", "dst")
    );
    assert!(
        toml::from_str::<JwtSettings>("algorithm = \"HS256\"\nkey_file = \"k\"\nleway = 5\n")
            .is_err()
    );
    assert!(toml::from_str::<JwtSettings>("algorithm = \"none\"\nkey_file = \"k\"\n").is_err());
}

#[test]
fn debug_never_shows_the_hmac_secret() {
    let dbg = format!("{:?}", hs_validator());
    assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
    let m = TokenMinter::new(JwtAlgorithm::Hs256, HS_SECRET).unwrap();
    assert!(!format!("{m:?}").contains("0123456789abcdef"));
}

/// Issue #14: a token with `exp` millions of years ahead was accepted. The lifetime is
/// capped (12 h by default), measured as `exp - iat` and as `exp - now`.
#[test]
fn token_lifetime_is_capped() {
    let t = now();
    let v = hs_validator();
    // Exactly 12 h from iat: fine.
    assert!(v
        .validate(&hs_token(&with("exp", json!(t + 12 * 3600))))
        .is_ok());
    let too_long = |claims: &serde_json::Value| {
        matches!(
            v.validate(&hs_token(claims)),
            Err(AuthnError::LifetimeTooLong { max_secs: 43_200 })
        )
    };
    assert!(too_long(&with("exp", json!(t + 12 * 3600 + 1))));
    // Millions of years ahead, with or without iat.
    assert!(too_long(&with(
        "exp",
        json!(t + 60 * 31_557_600_000_000u64)
    )));
    let mut no_iat = without("iat");
    no_iat["exp"] = json!(t + 13 * 3600);
    assert!(too_long(&no_iat));
    no_iat["exp"] = json!(t + 3600);
    assert!(v.validate(&hs_token(&no_iat)).is_ok());
    // A late iat does not help: exp is also measured from now.
    let mut late = with("exp", json!(t + 100 * 86_400));
    late["iat"] = json!(t + 100 * 86_400 - 60);
    assert!(too_long(&late));
    // The message names the limit, never the token.
    assert_eq!(
        AuthnError::LifetimeTooLong { max_secs: 43_200 }.to_string(),
        "token lifetime exceeds the maximum of 43200 s"
    );
    // A configured cap applies.
    let mut s = settings(JwtAlgorithm::Hs256);
    s.max_lifetime_secs = 600;
    let short = JwtValidator::from_key_material(&s, HS_SECRET).unwrap();
    assert!(short.validate(&hs_token(&good_claims())).is_ok());
    assert!(matches!(
        short.validate(&hs_token(&with("exp", json!(t + 601)))),
        Err(AuthnError::LifetimeTooLong { max_secs: 600 })
    ));
}
