//! Unit tests of the pure parts: addresses, paths, JSON shapes, status mapping. The store
//! against a fake server is tested in tests/e2e/vault_kv2.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::settings::{normalize_path, Kv2Address, SecretSource};
use super::wire;
use crate::secret::Secret;
use crate::vault::error::VaultError;

#[test]
fn address_parsing_and_the_loopback_rule() {
    let a = Kv2Address::parse("https://vault.example.com:8201/").unwrap();
    assert_eq!(
        (a.tls, a.host.as_str(), a.port),
        (true, "vault.example.com", 8201)
    );
    assert_eq!(a.to_string(), "https://vault.example.com:8201");
    assert_eq!(
        Kv2Address::parse("https://vault.example.com").unwrap().port,
        8200
    );
    let v6 = Kv2Address::parse("http://[::1]:8200").unwrap();
    assert_eq!(
        (v6.host.as_str(), v6.authority()),
        ("::1", "[::1]:8200".to_owned())
    );
    assert!(Kv2Address::parse("http://127.0.0.1:8200").is_ok());
    assert!(Kv2Address::parse("http://localhost:8200").is_ok());
    let err = Kv2Address::parse("http://10.0.0.5:8200").unwrap_err();
    assert!(err.contains("loopback"), "{err}");
    for bad in [
        "vault.example.com:8200",
        "https://",
        "https://user@vault:8200",
        "https://vault:8200/v1",
        "https://vault:0",
        "https://vault:99999",
        "https://[::1",
        "ftp://vault",
    ] {
        assert!(Kv2Address::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn mount_and_prefix_paths_cannot_climb() {
    assert_eq!(normalize_path("/secret/", false).unwrap(), "secret");
    assert_eq!(normalize_path("teams/gw-01", true).unwrap(), "teams/gw-01");
    assert_eq!(normalize_path("", true).unwrap(), "");
    assert!(normalize_path("", false).is_err());
    for bad in ["a/../b", "a//b", "./a", "a b", "a?b", "a%2f"] {
        assert!(normalize_path(bad, true).is_err(), "{bad}");
    }
}

#[test]
fn secret_source_reads_trimmed_and_reports_missing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "  hvs.abc\n").unwrap();
    assert_eq!(
        SecretSource::File(f).load("vault token").unwrap().expose(),
        "hvs.abc"
    );
    let env = SecretSource::Env("HOPGATE_T".into());
    assert_eq!(
        env.load_with_env("t", |_| Some("x".into()))
            .unwrap()
            .expose(),
        "x"
    );
    let err = env.load_with_env("vault token", |_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vault key unavailable: vault token: environment variable HOPGATE_T is not set"
    );
    assert!(env.load_with_env("t", |_| Some(" \n".into())).is_err());
}

#[test]
fn read_answer_keeps_string_fields_only() {
    let body = br#"{"data":{"data":{"username":"u","password":"p","n":1,"o":{"a":[1,"x"]},"l":["s"],"z":null},
        "metadata":{"version":7,"destroyed":false}}}"#;
    let d = wire::parse_read(body, "secret/data/x").unwrap().unwrap();
    assert_eq!(d.version, Some(7));
    assert_eq!(
        d.fields.keys().map(String::as_str).collect::<Vec<_>>(),
        ["password", "username"]
    );
    assert_eq!(d.fields["password"].expose(), "p");
    // A deleted latest version has `data: null`.
    let deleted = br#"{"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z"}}}"#;
    assert!(wire::parse_read(deleted, "p").unwrap().is_none());
}

#[test]
fn malformed_answers_never_quote_the_body() {
    for body in [
        &br#"{"data":{"data":{"password":"hunter2"#[..],
        br#"{"data":{"data":{"password":"hunter2"}}"#,
        br#"{"data":"hunter2"}"#,
        br#"{"nodata":true}"#,
        b"hunter2",
    ] {
        let err = wire::parse_read(body, "secret/data/x").unwrap_err();
        assert!(matches!(err, VaultError::Malformed { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn list_and_login_answers() {
    let keys = wire::parse_list(br#"{"data":{"keys":["web2","sub/","web1"]}}"#, "p").unwrap();
    assert_eq!(keys, ["web1", "web2"]);
    let login = wire::parse_login(
        br#"{"auth":{"client_token":"hvs.t","lease_duration":3600,"renewable":true}}"#,
        "auth/approle/login",
    )
    .unwrap();
    assert_eq!(login.token.expose(), "hvs.t");
    assert_eq!(login.lease, Duration::from_secs(3600));
    assert!(login.renewable);
    let (ttl, renewable) = wire::parse_lookup(
        br#"{"data":{"ttl":0,"renewable":false,"policies":["root"]}}"#,
        "p",
    )
    .unwrap();
    assert_eq!((ttl, renewable), (Duration::ZERO, false));
    assert!(wire::parse_login(br#"{"auth":null}"#, "p").is_err());
    assert!(wire::parse_login(br#"{"auth":{"client_token":""}}"#, "p").is_err());
}

#[test]
fn statuses_map_to_errors() {
    let sealed = wire::status_error(
        503,
        br#"{"errors":["Vault is sealed"]}"#,
        "p",
        "https://v:8200",
    );
    assert!(matches!(sealed, VaultError::Sealed { .. }));
    assert_eq!(
        sealed.to_string(),
        "vault server https://v:8200 is sealed; it must be unsealed before credentials can be read"
    );
    let standby = wire::status_error(503, br#"{"errors":["standby"]}"#, "p", "a");
    assert!(matches!(standby, VaultError::Server { status: 503, .. }));
    assert!(matches!(
        wire::status_error(403, br#"{"errors":["permission denied"]}"#, "p", "a"),
        VaultError::PermissionDenied { .. }
    ));
    let other = wire::status_error(500, b"<html>", "secret/data/x", "a");
    assert_eq!(
        other.to_string(),
        "vault server answered 500 for secret/data/x: no error text"
    );
}

#[test]
fn write_body_carries_fields_and_cas() {
    let fields = BTreeMap::from([
        ("password".to_owned(), Secret::new("p\"q".into())),
        ("username".to_owned(), Secret::new("u".into())),
    ]);
    let body = wire::write_body(&fields, Some(3)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"data": {"password": "p\"q", "username": "u"}, "options": {"cas": 3}})
    );
    let body = wire::json_object(&fields).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["username"], "u");
}

#[test]
fn refresh_happens_after_two_thirds_of_the_lease() {
    let now = Instant::now();
    assert_eq!(super::auth::refresh_at(now, Duration::ZERO), None);
    assert_eq!(
        super::auth::refresh_at(now, Duration::from_secs(30)),
        Some(now + Duration::from_secs(20))
    );
}
