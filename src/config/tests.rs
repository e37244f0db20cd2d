#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use super::*;

/// A directory holding the files a valid config points at.
fn fixture_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key", "ca.pem", "jwt.key"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    dir
}

const VALID: &str = r#"
[listener]
address = "127.0.0.1:5986"
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"

[authn.jwt]
algorithm = "HS256"
key_file = "jwt.key"
audience = "hopgate"

[target]
default_host = "web1"

[vault]
path = "vault.bin"
key_file = "vault.key"

[audit]
dir = "audit"

[[hosts]]
name = "web1"
address = "10.0.0.5"
scheme = "http"
auth = "ntlm"
credential = "admin-{user}"
"#;

fn load(text: &str, dir: &Path) -> Result<Config, ConfigError> {
    Config::from_toml(text, dir)
}

fn invalid_key(text: &str) -> String {
    let dir = fixture_dir();
    match load(text, dir.path()) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn valid_config_resolves_paths_and_defaults() {
    let dir = fixture_dir();
    let c = load(VALID, dir.path()).unwrap();
    assert_eq!(c.listener.cert, dir.path().join("server.pem"));
    assert!(
        c.authn.client_certificates,
        "client CA set → certs on by default"
    );
    let jwt = c.authn.jwt.as_ref().unwrap();
    assert_eq!(jwt.algorithm, JwtAlgorithm::Hs256);
    assert_eq!(jwt.target_claim, "dst");
    assert_eq!(jwt.leeway_secs, 30);
    let h = c.inventory.get("web1").unwrap();
    assert_eq!(h.port, 5985, "http default port");
    assert_eq!(h.auth, HostAuth::Ntlm);
    assert!(
        c.inventory.get("10.0.0.5").is_none(),
        "lookup is by name only"
    );
    assert_eq!(c.vault.key, VaultKey::File(dir.path().join("vault.key")));
    assert_eq!(c.policy_dir, dir.path().join("policies"));
    assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let dir = fixture_dir();
    let text = VALID.replace("[audit]\n", "[audit]\ncolour = \"red\"\n");
    match load(&text, dir.path()) {
        Err(ConfigError::Parse { message, .. }) => assert!(message.contains("colour"), "{message}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn bad_listener_address() {
    assert_eq!(
        invalid_key(&VALID.replace("127.0.0.1:5986", "localhost")),
        "listener.address"
    );
}

#[test]
fn missing_cert_file_names_the_key() {
    assert_eq!(
        invalid_key(&VALID.replace("cert = \"server.pem\"", "cert = \"nope.pem\"")),
        "listener.cert"
    );
}

#[test]
fn basic_over_http_is_refused() {
    assert_eq!(
        invalid_key(&VALID.replace("auth = \"ntlm\"", "auth = \"basic\"")),
        "hosts[0].auth"
    );
}

#[test]
fn unknown_backend_auth_is_refused() {
    assert_eq!(
        invalid_key(&VALID.replace("auth = \"ntlm\"", "auth = \"digest\"")),
        "hosts[0].auth"
    );
}

#[test]
fn duplicate_host_names_are_refused() {
    let text = format!(
        "{VALID}\n[[hosts]]\nname = \"web1\"\naddress = \"h\"\nscheme = \"http\"\nauth = \"ntlm\"\ncredential = \"c\"\n"
    );
    assert_eq!(invalid_key(&text), "hosts[1].name");
}

#[test]
fn host_address_with_a_url_is_refused() {
    assert_eq!(
        invalid_key(&VALID.replace("\"10.0.0.5\"", "\"http://10.0.0.5/\"")),
        "hosts[0].address"
    );
}

#[test]
fn default_host_must_be_in_inventory() {
    assert_eq!(
        invalid_key(&VALID.replace("default_host = \"web1\"", "default_host = \"db9\"")),
        "target.default_host"
    );
}

#[test]
fn vault_needs_exactly_one_key_source() {
    let both = VALID.replace(
        "key_file = \"vault.key\"",
        "key_file = \"vault.key\"\nkey_env = \"HOPGATE_VAULT_KEY\"",
    );
    assert_eq!(invalid_key(&both), "vault");
}

#[test]
fn credential_ref_allows_only_user_placeholder() {
    assert_eq!(
        invalid_key(&VALID.replace("admin-{user}", "admin-{host}")),
        "hosts[0].credential"
    );
}

#[test]
fn insecure_and_ca_file_conflict() {
    let text = VALID.replace(
        "scheme = \"http\"",
        "scheme = \"https\"\nca_file = \"ca.pem\"\ninsecure_skip_verify = true",
    );
    assert_eq!(invalid_key(&text), "hosts[0].insecure_skip_verify");
}

#[test]
fn some_client_authentication_must_be_enabled() {
    let text = VALID.replace("client_ca = \"ca.pem\"\n", "").replace(
        "[authn.jwt]\nalgorithm = \"HS256\"\nkey_file = \"jwt.key\"\naudience = \"hopgate\"\n",
        "",
    );
    assert_eq!(invalid_key(&text), "authn");
}

#[test]
fn unsupported_jwt_algorithm() {
    assert_eq!(
        invalid_key(&VALID.replace("\"HS256\"", "\"none\"")),
        "authn.jwt.algorithm"
    );
}

#[test]
fn zero_limits_are_refused() {
    let text = format!("{VALID}\n[limits]\nmax_body_bytes = 0\n");
    assert_eq!(invalid_key(&text), "limits.max_body_bytes");
}

fn kerberos_host(extra: &str) -> String {
    VALID.replace("auth = \"ntlm\"", &format!("auth = \"negotiate\"\n{extra}"))
}

#[test]
fn kerberos_host_settings_are_validated_and_normalised() {
    let dir = fixture_dir();
    let text = kerberos_host(
        "kdc = \"tcp://dc1.example.com\"\nrealm = \"example.com\"\nspn = \"HTTP/web1.example.com\"",
    );
    let cfg = load(&text, dir.path()).unwrap();
    let h = cfg.inventory.get("web1").unwrap();
    assert_eq!(h.auth, HostAuth::Negotiate);
    let k = h.kerberos.as_ref().unwrap();
    assert_eq!(k.kdc, "tcp://dc1.example.com:88", "default port 88");
    assert_eq!(
        k.realm.as_deref(),
        Some("EXAMPLE.COM"),
        "realms are upper case"
    );
    assert_eq!(k.spn.as_deref(), Some("HTTP/web1.example.com"));

    let text = VALID.replace(
        "auth = \"ntlm\"",
        "auth = \"kerberos\"\nkdc = \"tcp://[::1]:60089\"",
    );
    let cfg = load(&text, dir.path()).unwrap();
    let h = cfg.inventory.get("web1").unwrap();
    assert_eq!(h.auth, HostAuth::Kerberos);
    let k = h.kerberos.as_ref().unwrap();
    assert_eq!(k.kdc, "tcp://[::1]:60089");
    assert_eq!((k.realm.as_ref(), k.spn.as_ref()), (None, None));
}

#[test]
fn kerberos_needs_a_tcp_kdc() {
    assert_eq!(invalid_key(&kerberos_host("")), "hosts[0].kdc");
    for bad in [
        "udp://dc1:88",
        "https://kdcproxy.example.com/KdcProxy",
        "dc1:88",
        "tcp://",
        "tcp://dc1:0",
        "tcp://dc1:99999",
        "tcp://dc1:88/path",
        "tcp://user@dc1",
        "tcp://[zz]:88",
    ] {
        assert_eq!(
            invalid_key(&kerberos_host(&format!("kdc = \"{bad}\""))),
            "hosts[0].kdc",
            "{bad}"
        );
    }
}

#[test]
fn kerberos_spn_and_realm_are_checked() {
    let kdc = "kdc = \"tcp://127.0.0.1:88\"\n";
    for bad in ["web1", "/web1", "HTTP/", "HTTP/a/b", "HTTP/we b"] {
        assert_eq!(
            invalid_key(&kerberos_host(&format!("{kdc}spn = \"{bad}\""))),
            "hosts[0].spn",
            "{bad}"
        );
    }
    assert_eq!(
        invalid_key(&kerberos_host(&format!("{kdc}realm = \"EX AMPLE\""))),
        "hosts[0].realm"
    );
}

#[test]
fn kerberos_settings_on_an_ntlm_host_are_refused() {
    for extra in [
        "kdc = \"tcp://127.0.0.1:88\"",
        "realm = \"EXAMPLE.COM\"",
        "spn = \"HTTP/web1\"",
    ] {
        let text = VALID.replace("auth = \"ntlm\"", &format!("auth = \"ntlm\"\n{extra}"));
        let key = invalid_key(&text);
        assert!(key.starts_with("hosts[0]."), "{extra}: {key}");
    }
    let cfg = load(VALID, fixture_dir().path()).unwrap();
    assert!(cfg.inventory.get("web1").unwrap().kerberos.is_none());
}

fn delegate_host(extra: &str) -> String {
    VALID.replace(
        "auth = \"ntlm\"\ncredential = \"admin-{user}\"",
        &format!(
            "auth = \"delegate\"\ncredential = \"gw-keytab\"\nkdc = \"tcp://127.0.0.1:88\"\n{extra}"
        ),
    )
}

#[cfg(feature = "delegate")]
#[test]
fn delegate_hosts_need_a_realm_and_a_sound_principal_template() {
    let dir = fixture_dir();
    let cfg = load(&delegate_host("realm = \"gw.test\""), dir.path()).unwrap();
    let h = cfg.inventory.get("web1").unwrap();
    assert_eq!(h.auth, HostAuth::Delegate);
    let k = h.kerberos.as_ref().unwrap();
    assert_eq!(k.realm.as_deref(), Some("GW.TEST"));
    assert_eq!(k.user_principal.as_deref(), Some("{user}"), "default");
    let text = delegate_host("realm = \"GW.TEST\"\nuser_principal = \"{local}@GW.TEST\"");
    let cfg = load(&text, dir.path()).unwrap();
    let k = cfg.inventory.get("web1").unwrap().kerberos.clone().unwrap();
    assert_eq!(k.user_principal.as_deref(), Some("{local}@GW.TEST"));

    assert_eq!(invalid_key(&delegate_host("")), "hosts[0].realm");
    for bad in ["alice@GW.TEST", "{sub}@GW.TEST", "{user}/admin", "{user} x"] {
        let text = delegate_host(&format!("realm = \"GW.TEST\"\nuser_principal = \"{bad}\""));
        assert_eq!(invalid_key(&text), "hosts[0].user_principal", "{bad}");
    }
    // The credential names the gateway's keytab, never a per-person entry.
    let text = delegate_host("realm = \"GW.TEST\"").replace("gw-keytab", "kt-{user}");
    assert_eq!(invalid_key(&text), "hosts[0].credential");
    // user_principal means nothing for the other methods.
    let text = VALID.replace(
        "auth = \"ntlm\"",
        "auth = \"ntlm\"\nuser_principal = \"{user}\"",
    );
    assert_eq!(invalid_key(&text), "hosts[0].user_principal");
}

#[cfg(not(feature = "delegate"))]
#[test]
fn delegate_without_the_feature_says_how_to_get_it() {
    let dir = fixture_dir();
    match load(&delegate_host("realm = \"GW.TEST\""), dir.path()) {
        Err(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "hosts[0].auth");
            assert!(reason.contains("built without"), "{reason}");
            assert!(reason.contains("--features delegate"), "{reason}");
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn audit_fsync_interval() {
    let dir = fixture_dir();
    let c = load(VALID, dir.path()).unwrap();
    assert_eq!(c.audit_fsync_interval, None, "default: sync every batch");
    let text = VALID.replace(
        "dir = \"audit\"",
        "dir = \"audit\"\nfsync_interval_ms = 250",
    );
    let c = load(&text, dir.path()).unwrap();
    assert_eq!(c.audit_fsync_interval, Some(Duration::from_millis(250)));
    let text = VALID.replace("dir = \"audit\"", "dir = \"audit\"\nfsync_interval_ms = 0");
    assert_eq!(invalid_key(&text), "audit.fsync_interval_ms");
}

#[test]
fn admin_section() {
    let dir = fixture_dir();
    std::fs::write(dir.path().join("admin.token"), "x").unwrap();
    assert!(load(VALID, dir.path()).unwrap().admin.is_none());
    let with = |extra: &str| format!("{VALID}\n[admin]\n{extra}\n");
    let c = load(&with("token_file = \"admin.token\""), dir.path()).unwrap();
    let a = c.admin.unwrap();
    assert_eq!(a.listen, "127.0.0.1:9443".parse().unwrap());
    assert_eq!(a.token_file, dir.path().join("admin.token"));
    let c = load(
        &with("listen = \"[::1]:9000\"\ntoken_file = \"admin.token\""),
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.admin.unwrap().listen, "[::1]:9000".parse().unwrap());
    for bad in [
        "listen = \"0.0.0.0:9443\"\ntoken_file = \"admin.token\"",
        "listen = \"10.0.0.1:9443\"\ntoken_file = \"admin.token\"",
        "listen = \"localhost\"\ntoken_file = \"admin.token\"",
    ] {
        assert_eq!(invalid_key(&with(bad)), "admin.listen", "{bad}");
    }
    assert_eq!(
        invalid_key(&with("token_file = \"missing.token\"")),
        "admin.token_file"
    );
}

/// The documented example must stay a valid config shape (every key it shows exists).
#[test]
fn example_config_has_only_known_keys() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/hopgate.example.toml"))
            .unwrap();
    let parsed: Result<file::FileConfig, _> = toml::from_str(&text);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
    // With the commented-out [admin] section enabled it must still parse.
    let with_admin = text
        .replace("# [admin]", "[admin]")
        .replace(
            "# listen = \"127.0.0.1:9443\"",
            "listen = \"127.0.0.1:9443\"",
        )
        .replace(
            "# token_file = \"admin.token\"",
            "token_file = \"admin.token\"",
        );
    let parsed: Result<file::FileConfig, _> = toml::from_str(&with_admin);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
}
