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
    match &c.vault {
        VaultConfig::File { path, key } => {
            assert_eq!(path, &dir.path().join("vault.bin"));
            assert_eq!(key, &VaultKey::File(dir.path().join("vault.key")));
        }
        other => panic!("expected the local file, got {other:?}"),
    }
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

#[test]
fn listener_limits_and_crl_have_defaults_and_are_checked() {
    let dir = fixture_dir();
    let cfg = load(VALID, dir.path()).unwrap();
    assert_eq!(cfg.limits.header_timeout, Duration::from_secs(10));
    assert_eq!(cfg.limits.idle_timeout, Duration::from_secs(120));
    assert!(cfg.listener.crl.is_none());
    std::fs::write(dir.path().join("crl.pem"), "x").unwrap();
    let with_crl = VALID.replace(
        "client_ca = \"ca.pem\"",
        "client_ca = \"ca.pem\"\ncrl = \"crl.pem\"",
    );
    let text = format!("{with_crl}\n[limits]\nidle_timeout_secs = 5\nheader_timeout_secs = 3\n");
    let cfg = load(&text, dir.path()).unwrap();
    assert_eq!(cfg.listener.crl, Some(dir.path().join("crl.pem")));
    assert_eq!(cfg.limits.idle_timeout, Duration::from_secs(5));
    assert_eq!(cfg.limits.header_timeout, Duration::from_secs(3));
    // A CRL needs a client CA to apply to.
    let no_ca = with_crl.replace("client_ca = \"ca.pem\"\n", "");
    assert_eq!(invalid_key(&no_ca), "listener.crl");
    assert_eq!(
        invalid_key(&format!("{VALID}\n[limits]\nidle_timeout_secs = 0\n")),
        "limits.idle_timeout_secs"
    );
    let admin = format!("{VALID}\n[admin]\ntoken_file = \"jwt.key\"\nmax_connections = 0\n");
    assert_eq!(invalid_key(&admin), "admin.max_connections");
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
fn ntlm_fallback_is_off_by_default_and_only_for_negotiate() {
    let dir = fixture_dir();
    let kdc = "kdc = \"tcp://127.0.0.1:88\"\n";
    let cfg = load(&kerberos_host(kdc), dir.path()).unwrap();
    let k = cfg.inventory.get("web1").unwrap().kerberos.clone().unwrap();
    assert!(!k.ntlm_fallback);
    let cfg = load(
        &kerberos_host(&format!("{kdc}ntlm_fallback = true")),
        dir.path(),
    )
    .unwrap();
    let k = cfg.inventory.get("web1").unwrap().kerberos.clone().unwrap();
    assert!(k.ntlm_fallback);
    let kerberos_only = VALID.replace(
        "auth = \"ntlm\"",
        &format!("auth = \"kerberos\"\n{kdc}ntlm_fallback = true"),
    );
    assert_eq!(invalid_key(&kerberos_only), "hosts[0].ntlm_fallback");
    let ntlm = VALID.replace("auth = \"ntlm\"", "auth = \"ntlm\"\nntlm_fallback = false");
    assert_eq!(invalid_key(&ntlm), "hosts[0].ntlm_fallback");
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
fn audit_rotation_and_signing_key() {
    let dir = fixture_dir();
    let with = |extra: &str| VALID.replace("dir = \"audit\"", &format!("dir = \"audit\"\n{extra}"));
    let c = load(VALID, dir.path()).unwrap();
    assert_eq!(
        (
            c.audit_rotate_daily,
            c.audit_max_file_bytes,
            c.audit_signing_key
        ),
        (false, None, None),
        "default: never rotate, unsigned checkpoints"
    );
    let c = load(&with("rotate = \"daily\""), dir.path()).unwrap();
    assert_eq!((c.audit_rotate_daily, c.audit_max_file_bytes), (true, None));
    let c = load(&with("rotate = \"size\""), dir.path()).unwrap();
    assert_eq!(
        (c.audit_rotate_daily, c.audit_max_file_bytes),
        (false, Some(100 << 20)),
        "size rotation defaults to 100 MiB"
    );
    let c = load(
        &with("rotate = \"daily+size\"\nmax_file_mb = 8\nsigning_key = \"audit-signing\""),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        (c.audit_rotate_daily, c.audit_max_file_bytes),
        (true, Some(8 << 20))
    );
    assert_eq!(c.audit_signing_key.as_deref(), Some("audit-signing"));

    assert_eq!(invalid_key(&with("rotate = \"hourly\"")), "audit.rotate");
    assert_eq!(invalid_key(&with("max_file_mb = 8")), "audit.max_file_mb");
    assert_eq!(
        invalid_key(&with("rotate = \"size\"\nmax_file_mb = 0")),
        "audit.max_file_mb"
    );
    assert_eq!(
        invalid_key(&with("signing_key = \"../key\"")),
        "audit.signing_key"
    );
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
fn audit_fails_closed_unless_told_otherwise() {
    let dir = fixture_dir();
    assert!(!load(VALID, dir.path()).unwrap().audit_fail_open);
    let with = |v: &str| {
        VALID.replace(
            "dir = \"audit\"",
            &format!("dir = \"audit\"\non_failure = \"{v}\""),
        )
    };
    assert!(!load(&with("refuse"), dir.path()).unwrap().audit_fail_open);
    assert!(load(&with("continue"), dir.path()).unwrap().audit_fail_open);
    assert_eq!(invalid_key(&with("ignore")), "audit.on_failure");
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
    // And with the [audit] rotation and signing keys enabled.
    let with_audit = text
        .replace("# rotate = ", "rotate = ")
        .replace("# max_file_mb = ", "max_file_mb = ")
        .replace("# signing_key = ", "signing_key = ");
    assert!(with_audit.contains("\nsigning_key = "));
    let parsed: Result<file::FileConfig, _> = toml::from_str(&with_audit);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
}

/// VALID with `extra` added to `[audit]` (may open `[audit.syslog]`).
fn with_audit(extra: &str) -> String {
    VALID.replace("dir = \"audit\"\n", &format!("dir = \"audit\"\n{extra}\n"))
}

#[test]
fn audit_export_is_off_unless_configured() {
    let dir = fixture_dir();
    let c = load(VALID, dir.path()).unwrap();
    assert_eq!(c.audit_export, AuditExportConfig::default());
    let c = load(&with_audit("stdout = true"), dir.path()).unwrap();
    assert!(c.audit_export.stdout);
    assert_eq!(c.audit_export.syslog, None);
}

#[test]
fn audit_syslog_defaults_and_tls() {
    let dir = fixture_dir();
    let c = load(
        &with_audit("[audit.syslog]\naddress = \"siem.example.com:514\""),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        c.audit_export.syslog,
        Some(SyslogConfig {
            address: "siem.example.com:514".into(),
            tls: None,
            facility: 10,
            app_name: "hopgate".into(),
        })
    );
    let text = with_audit(
        "stdout = false\n[audit.syslog]\naddress = \"[::1]:6514\"\ntls = true\nca_file = \"ca.pem\"\nfacility = \"LOCAL3\"\napp_name = \"gw-east\"",
    );
    let s = load(&text, dir.path())
        .unwrap()
        .audit_export
        .syslog
        .unwrap();
    assert_eq!(
        s.tls,
        Some(SyslogTlsConfig {
            ca_file: dir.path().join("ca.pem"),
            server_name: "::1".into(),
        })
    );
    assert_eq!((s.facility, s.app_name.as_str()), (19, "gw-east"));
    let text = with_audit(
        "[audit.syslog]\naddress = \"10.1.2.3:6514\"\ntls = true\nca_file = \"ca.pem\"\nserver_name = \"siem.example.com\"",
    );
    let s = load(&text, dir.path())
        .unwrap()
        .audit_export
        .syslog
        .unwrap();
    assert_eq!(s.tls.unwrap().server_name, "siem.example.com");
}

#[test]
fn audit_syslog_errors_name_their_key() {
    let syslog = |body: &str| with_audit(&format!("[audit.syslog]\n{body}"));
    for address in [
        "siem.example.com",
        "siem.example.com:0",
        "siem.example.com:x",
        "siem.example.com:70000",
        ":514",
        "a b:514",
        "::1:514",
        "[::1]",
        "[not-v6]:514",
        "tcp://siem:514",
    ] {
        assert_eq!(
            invalid_key(&syslog(&format!("address = \"{address}\""))),
            "audit.syslog.address",
            "{address}"
        );
    }
    let a = "address = \"127.0.0.1:6514\"\n";
    let cases = [
        ("tls = true", "audit.syslog.ca_file"),
        (
            "tls = true\nca_file = \"missing.pem\"",
            "audit.syslog.ca_file",
        ),
        ("ca_file = \"ca.pem\"", "audit.syslog.ca_file"),
        ("server_name = \"siem\"", "audit.syslog.server_name"),
        (
            "tls = true\nca_file = \"ca.pem\"\nserver_name = \"bad name!\"",
            "audit.syslog.server_name",
        ),
        ("facility = \"local8\"", "audit.syslog.facility"),
        ("app_name = \"\"", "audit.syslog.app_name"),
        ("app_name = \"two words\"", "audit.syslog.app_name"),
        ("app_name = \"h\u{e9}\"", "audit.syslog.app_name"),
    ];
    for (body, key) in cases {
        assert_eq!(invalid_key(&syslog(&format!("{a}{body}"))), key, "{body}");
    }
    let long = format!("{a}app_name = \"{}\"", "x".repeat(49));
    assert_eq!(invalid_key(&syslog(&long)), "audit.syslog.app_name");
    let dir = fixture_dir();
    assert!(matches!(
        load(&syslog(&format!("{a}port = 514")), dir.path()),
        Err(ConfigError::Parse { .. })
    ));
    assert!(matches!(
        load(&with_audit("stdout = \"yes\""), dir.path()),
        Err(ConfigError::Parse { .. })
    ));
}

/// The example's commented-out export keys, enabled, are real keys with valid values.
#[test]
fn example_config_audit_export_keys_parse() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/hopgate.example.toml"))
            .unwrap();
    let keys = [
        "stdout",
        "[audit.syslog]",
        "address",
        "tls",
        "ca_file",
        "server_name",
        "facility",
        "app_name",
    ];
    // Only inside `[audit]` (up to the admin section): other sections use the same names.
    let mut in_audit = false;
    let enabled: String = text
        .lines()
        .map(|l| {
            if l == "[audit]" {
                in_audit = true;
            } else if l.starts_with("# Optional admin API") {
                in_audit = false;
            }
            match l.strip_prefix("# ") {
                Some(rest) if in_audit && keys.iter().any(|k| rest.starts_with(k)) => rest,
                _ => l,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed: file::FileConfig = toml::from_str(&enabled).unwrap();
    assert_eq!(parsed.audit.stdout, Some(true));
    let s = parsed.audit.syslog.unwrap();
    assert_eq!(s.address, "siem.example.com:6514");
    assert!(s.tls);
    // The values also pass validation (with the files they name present).
    let dir = fixture_dir();
    std::fs::write(dir.path().join("siem-ca.pem"), "x").unwrap();
    let syslog_block = enabled
        .lines()
        .skip_while(|l| *l != "[audit.syslog]")
        .take_while(|l| !l.is_empty() && !l.starts_with("# [admin]"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = load(&with_audit(&syslog_block), dir.path()).unwrap();
    let s = c.audit_export.syslog.unwrap();
    assert_eq!((s.facility, s.app_name.as_str()), (10, "hopgate"));
    assert_eq!(s.tls.unwrap().server_name, "siem.example.com");
}

/// `[vault]` replaced by `section` (a KV v2 server, usually).
fn with_vault(section: &str) -> String {
    VALID.replace(
        "[vault]\npath = \"vault.bin\"\nkey_file = \"vault.key\"",
        &format!("[vault]\n{section}"),
    )
}

#[test]
fn kv2_vault_with_token_file_and_defaults() {
    let dir = fixture_dir();
    std::fs::write(dir.path().join("vault-token"), "hvs.x").unwrap();
    let text = with_vault(
        "kind = \"kv2\"\naddress = \"https://vault.example.com:8200\"\nca_file = \"ca.pem\"\n\
         prefix = \"/hopgate/gw/\"\ntoken_file = \"vault-token\"\nnamespace = \"team-a\"",
    );
    let c = load(&text, dir.path()).unwrap();
    let VaultConfig::Kv2(kv2) = &c.vault else {
        panic!("expected kv2, got {:?}", c.vault)
    };
    assert_eq!(kv2.address.to_string(), "https://vault.example.com:8200");
    assert_eq!(kv2.mount, "secret");
    assert_eq!(kv2.prefix, "hopgate/gw");
    assert_eq!(kv2.ca_file, Some(dir.path().join("ca.pem")));
    assert_eq!(kv2.namespace.as_deref(), Some("team-a"));
    assert_eq!(kv2.cache_ttl, Duration::from_secs(30));
    assert_eq!(kv2.timeout, Duration::from_secs(10));
    assert_eq!(
        kv2.auth,
        crate::vault::kv2::Kv2Auth::Token(crate::vault::kv2::SecretSource::File(
            dir.path().join("vault-token")
        ))
    );
}

#[test]
fn kv2_vault_with_approle() {
    let dir = fixture_dir();
    std::fs::write(dir.path().join("role_id"), "r").unwrap();
    let text = with_vault(
        "kind = \"kv2\"\naddress = \"http://127.0.0.1:8200\"\ncache_ttl_secs = 0\n\
         [vault.approle]\nrole_id_file = \"role_id\"\nsecret_id_env = \"HOPGATE_SECRET_ID\"",
    );
    let c = load(&text, dir.path()).unwrap();
    let VaultConfig::Kv2(kv2) = &c.vault else {
        panic!("expected kv2")
    };
    assert_eq!(kv2.cache_ttl, Duration::ZERO, "0 disables the cache");
    assert_eq!(
        kv2.auth,
        crate::vault::kv2::Kv2Auth::AppRole {
            mount: "approle".into(),
            role_id: crate::vault::kv2::SecretSource::File(dir.path().join("role_id")),
            secret_id: crate::vault::kv2::SecretSource::Env("HOPGATE_SECRET_ID".into()),
        }
    );
}

#[test]
fn kv2_vault_errors_name_the_key() {
    let kv2 = |rest: &str| with_vault(&format!("kind = \"kv2\"\n{rest}"));
    let https = "address = \"https://vault.example.com\"\nca_file = \"ca.pem\"\n";
    let cases = [
        (with_vault("kind = \"s3\"\npath = \"v\"\nkey_env = \"K\""), "vault.kind"),
        (kv2("token_env = \"T\""), "vault.address"),
        (kv2("address = \"http://10.1.2.3:8200\"\ntoken_env = \"T\""), "vault.address"),
        (kv2("address = \"https://vault.example.com\"\ntoken_env = \"T\""), "vault.ca_file"),
        (kv2("address = \"http://127.0.0.1\"\nca_file = \"ca.pem\"\ntoken_env = \"T\""), "vault.ca_file"),
        (kv2("address = \"https://v\"\nca_file = \"nope.pem\"\ntoken_env = \"T\""), "vault.ca_file"),
        (kv2(https), "vault"),
        (kv2(&format!("{https}token_env = \"T\"\ntoken_file = \"ca.pem\"")), "vault"),
        (kv2(&format!("{https}token_env = \"A-B\"")), "vault.token_env"),
        (kv2(&format!("{https}token_file = \"missing\"")), "vault.token_file"),
        (kv2(&format!("{https}token_env = \"T\"\nmount = \"../sys\"")), "vault.mount"),
        (kv2(&format!("{https}token_env = \"T\"\nprefix = \"a//b\"")), "vault.prefix"),
        (kv2(&format!("{https}token_env = \"T\"\ntimeout_secs = 0")), "vault.timeout_secs"),
        (kv2(&format!("{https}token_env = \"T\"\npath = \"vault.bin\"")), "vault.path"),
        (kv2(&format!("{https}token_env = \"T\"\nkey_env = \"K\"")), "vault.key_env"),
        (
            kv2(&format!("{https}[vault.approle]\nrole_id_env = \"R\"")),
            "vault.approle",
        ),
        (
            kv2(&format!(
                "{https}[vault.approle]\nrole_id_env = \"R\"\nsecret_id_env = \"S\"\nmount = \"a/../b\""
            )),
            "vault.approle.mount",
        ),
        (with_vault("path = \"v\"\nkey_env = \"K\"\naddress = \"http://127.0.0.1\""), "vault.address"),
        (with_vault("key_env = \"K\""), "vault.path"),
    ];
    for (text, key) in cases {
        assert_eq!(invalid_key(&text), key, "{text}");
    }
}

#[test]
fn credssp_is_accepted_over_https_only() {
    let dir = fixture_dir();
    let https = VALID.replace(
        "scheme = \"http\"\nauth = \"ntlm\"",
        "scheme = \"https\"\nauth = \"credssp\"\ninsecure_skip_verify = true",
    );
    let cfg = load(&https, dir.path()).unwrap();
    let h = cfg.inventory.get("web1").unwrap();
    assert_eq!(h.auth, HostAuth::CredSsp);
    assert_eq!(h.port, 5986);
    assert!(h.kerberos.is_none());

    // Over http the delegated password would only be as safe as CredSSP's own tunnel.
    let http = VALID.replace("auth = \"ntlm\"", "auth = \"credssp\"");
    match load(&http, dir.path()) {
        Err(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "hosts[0].auth");
            assert!(reason.contains("https"), "{reason}");
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
    // Kerberos settings do not apply to it.
    let with_kdc = https.replace(
        "auth = \"credssp\"",
        "auth = \"credssp\"\nkdc = \"tcp://dc1.example.com:88\"",
    );
    assert_eq!(invalid_key(&with_kdc), "hosts[0].kdc");
    // The list of methods in the error names it.
    match load(
        &VALID.replace("auth = \"ntlm\"", "auth = \"digest\""),
        dir.path(),
    ) {
        Err(ConfigError::Invalid { reason, .. }) => assert!(reason.contains("credssp"), "{reason}"),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

/// Issue #14: the envelope attribute caps and the token lifetime cap are configurable, with
/// defaults (64 attributes, 4096 bytes, 12 h), and zero is refused.
#[test]
fn issue_14_caps_default_and_override() {
    let dir = fixture_dir();
    let c = load(VALID, dir.path()).unwrap();
    assert_eq!(c.limits.max_xml_attributes, 64);
    assert_eq!(c.limits.max_xml_attribute_bytes, 4096);
    let jwt = c.authn.jwt.as_ref().unwrap();
    assert_eq!(
        jwt.max_token_lifetime,
        std::time::Duration::from_secs(12 * 3600)
    );

    let text = format!(
        "{}\n[limits]\nmax_xml_attributes = 16\nmax_xml_attribute_bytes = 512\n",
        VALID.replace(
            "audience = \"hopgate\"",
            "audience = \"hopgate\"\nmax_token_lifetime_secs = 600"
        )
    );
    let c = load(&text, dir.path()).unwrap();
    assert_eq!(c.limits.max_xml_attributes, 16);
    assert_eq!(c.limits.max_xml_attribute_bytes, 512);
    let jwt = c.authn.jwt.as_ref().unwrap();
    assert_eq!(jwt.max_token_lifetime, std::time::Duration::from_secs(600));

    let text = format!("{VALID}\n[limits]\nmax_xml_attributes = 0\n");
    assert_eq!(invalid_key(&text), "limits.max_xml_attributes");
    let text = VALID.replace(
        "audience = \"hopgate\"",
        "audience = \"hopgate\"\nmax_token_lifetime_secs = 0",
    );
    assert_eq!(invalid_key(&text), "authn.jwt.max_token_lifetime_secs");
}

#[test]
fn a_host_may_set_its_own_shell_idle_timeout_and_the_text_is_hashed() {
    let dir = fixture_dir();
    let cfg = load(VALID, dir.path()).unwrap();
    let web1 = cfg.inventory.get("web1").unwrap();
    assert_eq!(web1.idle_timeout, None);
    assert_eq!(cfg.shell_idle(web1), cfg.limits.shell_idle);
    assert_eq!(cfg.source_sha256.len(), 64);

    let text = format!("{VALID}idle_timeout_secs = 90\n");
    let cfg2 = load(&text, dir.path()).unwrap();
    let web1 = cfg2.inventory.get("web1").unwrap();
    assert_eq!(cfg2.shell_idle(web1), Duration::from_secs(90));
    assert_ne!(cfg2.source_sha256, cfg.source_sha256);

    assert_eq!(
        invalid_key(&format!("{VALID}idle_timeout_secs = 0\n")),
        "hosts[0].idle_timeout_secs"
    );
}

#[test]
fn per_source_and_per_person_limits_have_defaults_and_are_checked() {
    let dir = fixture_dir();
    let cfg = load(VALID, dir.path()).unwrap();
    let l = &cfg.limits;
    assert_eq!(l.max_connections_per_source, 64);
    assert_eq!(l.max_handshakes_per_source, 8);
    assert_eq!(l.first_byte_timeout, Duration::from_secs(3));
    assert_eq!(l.unauthenticated_per_source_per_sec, 20);
    assert_eq!(l.max_shells_per_user, 10);
    assert_eq!(l.max_shells_per_credential, 25);
    assert_eq!(l.audit_wait, Duration::from_secs(5));
    assert_eq!(l.max_held_bytes_per_user, 32 * 1024 * 1024);
    assert_eq!(cfg.audit_failures_interval, Duration::from_secs(10));
    let text = format!(
        "{VALID}\n[limits]\nmax_shells_per_user = 3\nmax_shells_per_credential = 4\n\
         first_byte_timeout_secs = 1\nunauthenticated_per_source_per_sec = 5\n"
    );
    let cfg = load(&text, dir.path()).unwrap();
    assert_eq!(cfg.limits.max_shells_per_user, 3);
    assert_eq!(cfg.limits.max_shells_per_credential, 4);
    assert_eq!(cfg.limits.first_byte_timeout, Duration::from_secs(1));
    assert_eq!(cfg.limits.unauthenticated_per_source_per_sec, 5);
    for key in [
        "max_connections_per_source",
        "max_handshakes_per_source",
        "first_byte_timeout_secs",
        "unauthenticated_per_source_per_sec",
        "max_shells_per_user",
        "max_shells_per_credential",
        "audit_wait_secs",
        "max_held_bytes_per_user",
    ] {
        let text = format!("{VALID}\n[limits]\n{key} = 0\n");
        assert_eq!(invalid_key(&text), format!("limits.{key}"));
    }
}
