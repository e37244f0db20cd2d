//! The KV v2 credential store against a local fake of the Vault / OpenBao API, the gateway
//! reading its host password from it, and (when `VAULT_ADDR` and `VAULT_TOKEN` are set) a
//! real server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod fake;

use std::path::Path;
use std::time::Duration;

use hopgate::vault::kv2::{Kv2Address, Kv2Auth, Kv2Settings, SecretSource};
use hopgate::vault::{resolve_ref, Credential, Kv2Store, Secret, Store, VaultError};
use serde_json::json;

use self::fake::FakeKv2;
use crate::support::gwdir::{GatewayDir, VaultSpec};
use crate::support::{python, Standin, BACKEND_DOMAIN, BACKEND_PASSWORD, BACKEND_USER};

const TOKEN: &str = "hvs.fake-root-token";

fn settings(fake: &FakeKv2, auth: Kv2Auth, cache_ttl: Duration) -> Kv2Settings {
    Kv2Settings {
        address: Kv2Address::parse(&fake.address()).unwrap(),
        mount: "secret".into(),
        prefix: "hopgate".into(),
        auth,
        ca_file: None,
        namespace: Some("team-a".into()),
        cache_ttl,
        timeout: Duration::from_secs(5),
    }
}

fn token_file(dir: &Path, token: &str) -> Kv2Auth {
    let path = dir.join("vault-token");
    std::fs::write(&path, format!("{token}\n")).unwrap();
    Kv2Auth::Token(SecretSource::File(path))
}

fn approle(dir: &Path, role: &str, secret: &str) -> Kv2Auth {
    std::fs::write(dir.join("role_id"), role).unwrap();
    std::fs::write(dir.join("secret_id"), secret).unwrap();
    Kv2Auth::AppRole {
        mount: "approle".into(),
        role_id: SecretSource::File(dir.join("role_id")),
        secret_id: SecretSource::File(dir.join("secret_id")),
    }
}

/// A fake holding `web1` (with a keytab field) and per-user entries.
async fn seeded() -> FakeKv2 {
    let fake = FakeKv2::start(TOKEN).await;
    fake.put(
        "hopgate/web1",
        json!({"username": "CORP\\svc-web", "password": "pw-web1", "keytab": "BQIAAAA=", "rotated": 3}),
    );
    fake.put(
        "hopgate/admin-alice@corp.example",
        json!({"username": "CORP\\alice-adm", "password": "pw-alice"}),
    );
    fake.put("hopgate/no-password", json!({"username": "x"}));
    fake.put(
        "hopgate/sub/deeper",
        json!({"username": "y", "password": "z"}),
    );
    fake
}

#[tokio::test]
async fn reads_credentials_fields_and_lists_names() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::ZERO,
    ))
    .unwrap();

    let c = store.get("web1").await.unwrap();
    assert_eq!(c.user, "CORP\\svc-web");
    assert_eq!(c.secret.expose(), "pw-web1");
    assert_eq!(
        store.get_field("web1", "keytab").await.unwrap().expose(),
        "BQIAAAA=",
        "extra string fields (a keytab) are readable"
    );
    assert!(matches!(
        store.get_field("web1", "rotated").await,
        Err(VaultError::MissingField { field, .. }) if field == "rotated"
    ));
    assert_eq!(
        store.list().await.unwrap(),
        vec!["admin-alice@corp.example", "no-password", "web1"],
        "sorted, sub-folders left out"
    );
    // Every request carried the namespace.
    assert!(fake.with(|s| s
        .requests
        .iter()
        .all(|(_, _, ns)| ns.as_deref() == Some("team-a"))));
    assert!(fake.count("secret/data/hopgate/web1") >= 1);
    let shown = format!("{store:?} {:?}", store.get("web1").await.unwrap());
    assert!(
        !shown.contains(TOKEN) && !shown.contains("pw-web1"),
        "{shown}"
    );
}

#[tokio::test]
async fn per_user_reference_resolves_to_the_users_secret() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::ZERO,
    ))
    .unwrap();
    let entry = resolve_ref("admin-{user}", "alice@corp.example").unwrap();
    let c = store.get(&entry).await.unwrap();
    assert_eq!(c.user, "CORP\\alice-adm");
    assert_eq!(c.secret.expose(), "pw-alice");
    assert_eq!(
        fake.count("secret/data/hopgate/admin-alice@corp.example"),
        1
    );

    let bob = resolve_ref("admin-{user}", "bob").unwrap();
    let err = store.get(&bob).await.unwrap_err();
    assert!(
        matches!(&err, VaultError::NotFound { name } if name == "admin-bob"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "no vault entry named admin-bob");
    // A principal cannot climb out of the prefix.
    assert!(resolve_ref("{user}", "..").is_ok_and(|n| n == ".."));
    assert!(matches!(
        store.get("..").await,
        Err(VaultError::InvalidName { .. })
    ));
}

#[tokio::test]
async fn reads_are_cached_for_the_ttl_and_forget_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::from_secs(2), // hits below stay hits on a busy machine
    ))
    .unwrap();
    let path = "secret/data/hopgate/web1";
    for _ in 0..3 {
        assert_eq!(store.get("web1").await.unwrap().user, "CORP\\svc-web");
    }
    assert_eq!(
        store.get_field("web1", "keytab").await.unwrap().expose(),
        "BQIAAAA="
    );
    assert_eq!(fake.count(path), 1, "one request, then cache hits");

    // A rotated password is seen once the entry expired from the cache.
    fake.put(
        "hopgate/web1",
        json!({"username": "CORP\\svc-web", "password": "pw-rotated"}),
    );
    assert_eq!(store.get("web1").await.unwrap().secret.expose(), "pw-web1");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        store.get("web1").await.unwrap().secret.expose(),
        "pw-rotated"
    );
    assert_eq!(fake.count(path), 2);

    // forget (called when a host rejects the password) makes the next read go out.
    Store::forget(&store, "web1");
    store.get("web1").await.unwrap();
    assert_eq!(fake.count(path), 3);
}

#[tokio::test]
async fn approle_logs_in_and_logs_in_again_before_the_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    fake.with(|s| s.approle = Some(("role-1".into(), "secret-1".into(), 3)));
    let store = Kv2Store::open(&settings(
        &fake,
        approle(dir.path(), "role-1", "secret-1\n"),
        Duration::ZERO,
    ))
    .unwrap();
    // Concurrent first reads wait for one login instead of each logging in.
    let store = std::sync::Arc::new(store);
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        readers.spawn(async move { store.get("web1").await.map(|c| c.user) });
    }
    while let Some(read) = readers.join_next().await {
        assert_eq!(read.unwrap().unwrap(), "CORP\\svc-web");
    }
    assert_eq!(fake.with(|s| s.logins), 1, "one login serves many reads");

    // Two thirds of the 3 s lease: the next read logs in first, so the server never sees
    // an expired token.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    store.get("web1").await.unwrap();
    assert_eq!(fake.with(|s| s.logins), 2);
    assert_eq!(
        fake.with(|s| s.bad_tokens),
        0,
        "no request with an expired token"
    );

    // A token revoked early: the 403 leads to one new login and a successful retry.
    fake.with(|s| s.tokens.retain(|t, _| t == TOKEN));
    assert_eq!(store.get("web1").await.unwrap().user, "CORP\\svc-web");
    assert_eq!(fake.with(|s| s.logins), 3);
    assert_eq!(fake.with(|s| s.bad_tokens), 1);

    // The secret id is read at every login: a rotated file is used.
    fake.with(|s| {
        s.approle = Some(("role-1".into(), "secret-2".into(), 3));
        s.tokens.retain(|t, _| t == TOKEN);
    });
    let err = store.get("web1").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Login { method: "approle", why } if why.contains("invalid role or secret ID")),
        "{err:?}"
    );
    std::fs::write(dir.path().join("secret_id"), "secret-2").unwrap();
    assert_eq!(store.get("web1").await.unwrap().user, "CORP\\svc-web");
}

#[tokio::test]
async fn a_renewable_token_is_renewed_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    fake.with(|s| {
        s.tokens.insert(
            "hvs.short".into(),
            Some(std::time::Instant::now() + Duration::from_secs(3)),
        );
        s.renewable = true;
        s.renew_secs = 3;
    });
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), "hvs.short"),
        Duration::ZERO,
    ))
    .unwrap();
    store.get("web1").await.unwrap();
    assert_eq!(
        fake.count("auth/token/lookup-self"),
        1,
        "lifetime looked up once"
    );
    // Past two thirds of the 3 s lifetime: renewed before the read.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    store.get("web1").await.unwrap();
    assert_eq!(fake.with(|s| s.renewals), 1);
    // Past the original expiry: still valid thanks to the renewal.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    store.get("web1").await.unwrap();
    assert_eq!(
        fake.with(|s| s.bad_tokens),
        0,
        "never sent an expired token"
    );

    // An AppRole token that is renewable is renewed, not replaced by a new login.
    fake.with(|s| s.approle = Some(("r".into(), "s".into(), 3)));
    let store = Kv2Store::open(&settings(
        &fake,
        approle(dir.path(), "r", "s"),
        Duration::ZERO,
    ))
    .unwrap();
    store.get("web1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    store.get("web1").await.unwrap();
    assert_eq!(fake.with(|s| (s.logins, s.renewals)), (1, 2));
}

#[tokio::test]
async fn server_errors_are_clear_vault_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::ZERO,
    ))
    .unwrap();

    fake.with(|s| s.denied.insert("hopgate/web1".into()));
    let err = store.get("web1").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::PermissionDenied { path } if path == "secret/data/hopgate/web1"),
        "{err:?}"
    );
    assert!(err.to_string().contains("permission denied"), "{err}");

    let err = store.get("missing").await.unwrap_err();
    assert!(matches!(err, VaultError::NotFound { .. }), "{err:?}");

    let err = store.get("no-password").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::MissingField { field, .. } if field == "password"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "vault secret no-password has no string field `password`"
    );

    fake.with(|s| s.garbage.insert("hopgate/admin-alice@corp.example".into()));
    let err = store.get("admin-alice@corp.example").await.unwrap_err();
    assert!(matches!(err, VaultError::Malformed { .. }), "{err:?}");
    assert!(
        !err.to_string().contains("username"),
        "errors never quote the body: {err}"
    );

    fake.with(|s| s.sealed = true);
    let err = store.get("web1").await.unwrap_err();
    assert!(matches!(err, VaultError::Sealed { .. }), "{err:?}");
    assert!(err.to_string().contains("is sealed"), "{err}");
    let err = store.list().await.unwrap_err();
    assert!(matches!(err, VaultError::Sealed { .. }), "{err:?}");

    // A wrong token is a 403 even after re-reading the token file.
    fake.with(|s| s.sealed = false);
    let wrong = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), "hvs.wrong"),
        Duration::ZERO,
    ))
    .unwrap();
    assert!(matches!(
        wrong.get("web1").await,
        Err(VaultError::PermissionDenied { .. })
    ));
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = Kv2Settings {
        address: Kv2Address::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        mount: "secret".into(),
        prefix: String::new(),
        auth: token_file(dir.path(), TOKEN),
        ca_file: None,
        namespace: None,
        cache_ttl: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
    };
    let store = Kv2Store::open(&s).unwrap();
    let err = store.get("web1").await.unwrap_err();
    assert!(matches!(err, VaultError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "vault server http://127.0.0.1:{port} is unreachable: connect"
        )),
        "{text}"
    );

    // A server that accepts but never answers: the timeout ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    s.address = Kv2Address::parse(&format!("http://{}", silent.local_addr().unwrap())).unwrap();
    s.timeout = Duration::from_millis(300);
    let store = Kv2Store::open(&s).unwrap();
    let err = store.get("web1").await.unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    drop(silent);
}

#[tokio::test]
async fn set_writes_a_new_version_keeping_other_fields_and_rm_removes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = seeded().await;
    let store = Kv2Store::open(&settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::from_secs(30),
    ))
    .unwrap();
    assert_eq!(store.get("web1").await.unwrap().secret.expose(), "pw-web1");
    let replaced = store
        .set(
            "web1",
            Credential::new("CORP\\svc-web", Secret::new("pw-new".into())),
        )
        .await
        .unwrap();
    assert!(replaced);
    assert_eq!(
        store.get("web1").await.unwrap().secret.expose(),
        "pw-new",
        "the write dropped the cached copy"
    );
    let (fields, version) = fake.with(|s| s.secrets["hopgate/web1"].clone());
    assert_eq!(version, 2);
    assert_eq!(fields["keytab"], "BQIAAAA=", "other fields kept");

    assert!(!store
        .set("fresh", Credential::new("u", Secret::new("p".into())))
        .await
        .unwrap());
    assert!(store.remove("fresh").await.unwrap());
    assert!(!store.remove("fresh").await.unwrap());
    assert!(matches!(
        store.get("fresh").await,
        Err(VaultError::NotFound { .. })
    ));
}

#[test]
fn vault_cli_get_and_list_work_against_kv2() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(seeded());
    let dir = tempfile::tempdir().unwrap();
    let s = hopgate::vault::StoreSettings::Kv2(settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::from_secs(30),
    ));
    assert_eq!(
        hopgate::vault::cli::cmd_get(&s, "web1").unwrap(),
        "CORP\\svc-web"
    );
    assert_eq!(
        hopgate::vault::cli::cmd_list(&s).unwrap(),
        vec!["admin-alice@corp.example", "no-password", "web1"]
    );
    let mut input = std::io::Cursor::new(b"cli-pass\n".to_vec());
    let out = hopgate::vault::cli::cmd_set(
        &s,
        "cli-entry",
        "CORP\\cli",
        hopgate::vault::cli::PasswordSource::Reader(&mut input),
    )
    .unwrap();
    assert!(!out.replaced);
    assert_eq!(
        fake.with(|st| st.secrets["hopgate/cli-entry"].0.clone()),
        json!({"username": "CORP\\cli", "password": "cli-pass"})
    );
    hopgate::vault::cli::cmd_rm(&s, "cli-entry").unwrap();
    assert!(matches!(
        hopgate::vault::cli::cmd_rm(&s, "cli-entry"),
        Err(VaultError::NotFound { .. })
    ));
    drop(fake);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// The gateway's host password comes from the KV v2 server: pypsrp runs a command through
/// it, the host sees the vaulted account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pypsrp_through_gateway_with_password_from_kv2() {
    let fake = FakeKv2::start(TOKEN).await;
    fake.put(
        "hopgate/standin-admin",
        json!({"username": format!("{BACKEND_DOMAIN}\\{BACKEND_USER}"), "password": BACKEND_PASSWORD}),
    );
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::start_ntlm(dir.path(), "KV2-HOST").await;
    std::fs::write(dir.path().join("vault-token"), format!("{TOKEN}\n")).unwrap();
    let gw = GatewayDir {
        vault: VaultSpec::Toml(format!(
            r#"kind = "kv2"
address = "{address}"
mount = "secret"
prefix = "hopgate"
token_file = "vault-token"
cache_ttl_secs = 30"#,
            address = fake.address(),
        )),
        hosts: format!(
            r#"
[[hosts]]
name = "standin"
address = "127.0.0.1"
port = {port}
scheme = "http"
auth = "ntlm"
credential = "standin-admin"

[[hosts]]
name = "other"
address = "127.0.0.1"
port = {port}
scheme = "http"
auth = "ntlm"
credential = "other-admin"
"#,
            port = standin.port,
        ),
        ..Default::default()
    }
    .policy_for_hosts(&["standin", "other"])
    .launch(dir, standin)
    .await;

    for cmd in ["hostname", "ipconfig /all"] {
        let mut a = gw.pypsrp_cert_args("wsman/standin");
        a.extend(["--cmd".to_string(), cmd.into()]);
        let run = python("tests/clients/pypsrp_client.py", &a).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.json["exit_code"], 0, "{run:?}");
    }
    assert!(gw.standin.wait_for_command("ipconfig /all").await);
    let reqs = gw.standin.requests();
    let hit = reqs
        .iter()
        .find(|r| {
            r["command_line"]
                .as_str()
                .is_some_and(|c| c.contains("ipconfig"))
        })
        .unwrap();
    assert!(
        hit["user"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("svc-gw"),
        "{hit}"
    );
    assert_eq!(
        fake.count("secret/data/hopgate/standin-admin"),
        1,
        "the gateway read the password once (client reuse and the store cache)"
    );

    // The server is sealed: a host whose credential is not cached yet fails with a clear
    // fault and an audit record saying why; after unsealing it works without a restart.
    fake.put(
        "hopgate/other-admin",
        json!({"username": format!("{BACKEND_DOMAIN}\\{BACKEND_USER}"), "password": BACKEND_PASSWORD}),
    );
    fake.with(|s| s.sealed = true);
    let mut a = gw.pypsrp_cert_args("wsman/other");
    a.extend(["--cmd".to_string(), "hostname".into()]);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("could not log in to the host"),
        "{run:?}"
    );
    assert!(
        gw.audit_has(|e| e["event"] == "backend.auth"
            && e["host"] == "other"
            && e["outcome"] == "failure"
            && e["reason"] == "vault sealed")
            .await,
        "{:#?}",
        gw.audit()
    );
    fake.with(|s| s.sealed = false);
    let run = python("tests/clients/pypsrp_client.py", &a).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout().trim(), "KV2-HOST");
    gw.stop().await;
}

#[tokio::test]
async fn https_trusts_only_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = hopgate::devcerts::generate(dir.path(), Default::default()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = hopgate::devcerts::generate(other_dir.path(), Default::default()).unwrap();
    let fake = FakeKv2::start_tls(TOKEN, &certs.server_cert, &certs.server_key).await;
    fake.put("hopgate/web1", json!({"username": "u", "password": "p"}));
    let mut s = settings(&fake, token_file(dir.path(), TOKEN), Duration::ZERO);
    s.address = Kv2Address::parse(&fake.https_address()).unwrap();

    s.ca_file = Some(certs.ca_cert.clone());
    let store = Kv2Store::open(&s).unwrap();
    assert_eq!(store.get("web1").await.unwrap().secret.expose(), "p");

    s.ca_file = Some(other.ca_cert.clone());
    let err = Kv2Store::open(&s).unwrap().get("web1").await.unwrap_err();
    assert!(
        matches!(&err, VaultError::Unreachable { why, .. } if why.starts_with("tls:")),
        "{err:?}"
    );
    assert_eq!(
        fake.count("secret/data/hopgate/web1"),
        1,
        "no request without trust"
    );

    s.ca_file = None;
    let err = Kv2Store::open(&s).unwrap_err();
    assert!(err.to_string().contains("set vault.ca_file"), "{err}");
}

/// What the real-server test checks, run here against the fake so the checks themselves
/// are known to work.
#[tokio::test]
async fn real_server_checks_pass_against_the_fake() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeKv2::start(TOKEN).await;
    let mut s = settings(
        &fake,
        token_file(dir.path(), TOKEN),
        Duration::from_secs(30),
    );
    s.prefix = format!("hopgate-test-{}", std::process::id());
    exercise_server(s).await;
    assert!(fake.with(|st| st.secrets.is_empty()), "the checks clean up");
}

/// Against a real Vault / OpenBao server when `VAULT_ADDR` and `VAULT_TOKEN` are set
/// (`VAULT_CACERT` for https, `VAULT_NAMESPACE`, `HOPGATE_TEST_KV2_MOUNT` for a KV v2 mount
/// other than `secret`). Writes and removes secrets under `hopgate-test-<pid>/`.
#[tokio::test]
async fn real_server_when_vault_addr_and_token_are_set() {
    let (Ok(addr), Ok(_)) = (std::env::var("VAULT_ADDR"), std::env::var("VAULT_TOKEN")) else {
        eprintln!("skipped: set VAULT_ADDR and VAULT_TOKEN to run against a real server");
        return;
    };
    let settings = Kv2Settings {
        address: Kv2Address::parse(&addr).unwrap(),
        mount: std::env::var("HOPGATE_TEST_KV2_MOUNT").unwrap_or_else(|_| "secret".into()),
        prefix: format!("hopgate-test-{}", std::process::id()),
        auth: Kv2Auth::Token(SecretSource::Env("VAULT_TOKEN".into())),
        ca_file: std::env::var_os("VAULT_CACERT").map(Into::into),
        namespace: std::env::var("VAULT_NAMESPACE").ok(),
        cache_ttl: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
    };
    exercise_server(settings).await;
    eprintln!("real vault server at {addr}: ok");
}

/// Write, read (fields, `{user}` reference), list and remove through the store, then a
/// login that cannot work. The prefix must be empty on the server beforehand.
async fn exercise_server(settings: Kv2Settings) {
    let store = Kv2Store::open(&settings).unwrap();
    assert!(store.list().await.unwrap().is_empty(), "fresh prefix");
    assert!(matches!(
        store.get("web1").await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(!store
        .set(
            "web1",
            Credential::new("CORP\\svc", Secret::new("real-pass-1".into()))
        )
        .await
        .unwrap());
    let mut keytab = std::collections::BTreeMap::new();
    keytab.insert("keytab".to_string(), Secret::new("BQIAAAA=".into()));
    assert!(store.set_fields("web1", keytab).await.unwrap());
    let c = store.get("web1").await.unwrap();
    assert_eq!(
        (c.user.as_str(), c.secret.expose()),
        ("CORP\\svc", "real-pass-1")
    );
    assert_eq!(
        store.get_field("web1", "keytab").await.unwrap().expose(),
        "BQIAAAA="
    );
    store
        .set(
            "admin-alice",
            Credential::new("CORP\\alice", Secret::new("p2".into())),
        )
        .await
        .unwrap();
    let name = resolve_ref("admin-{user}", "alice").unwrap();
    assert_eq!(store.get(&name).await.unwrap().user, "CORP\\alice");
    assert_eq!(store.list().await.unwrap(), vec!["admin-alice", "web1"]);
    assert!(store.remove("web1").await.unwrap());
    assert!(store.remove("admin-alice").await.unwrap());
    assert!(store.list().await.unwrap().is_empty());

    // No token: a clear login error, before any request.
    let mut denied = settings.clone();
    denied.auth = Kv2Auth::Token(SecretSource::Env("HOPGATE_TEST_NO_SUCH_TOKEN_VAR".into()));
    let err = Kv2Store::open(&denied)
        .unwrap()
        .get("web1")
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Login { .. }), "{err:?}");
}
