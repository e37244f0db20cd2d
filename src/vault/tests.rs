//! Tests for the local vault file, references and CLI helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use super::cli::{cmd_get, cmd_list, cmd_rm, cmd_set, PasswordSource};
use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    settings: VaultSettings,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("vault.key");
    generate_key_file(&key_file).unwrap();
    let settings = VaultSettings {
        path: dir.path().join("vault.bin"),
        key_file: Some(key_file),
        key_env: None,
    };
    Fixture { dir, settings }
}

fn cred(user: &str, password: &str) -> Credential {
    Credential::new(user, Secret::new(password.to_owned()))
}

fn other_key_settings(f: &Fixture) -> VaultSettings {
    let other = f.dir.path().join("other.key");
    if !other.exists() {
        generate_key_file(&other).unwrap();
    }
    VaultSettings {
        key_file: Some(other),
        ..f.settings.clone()
    }
}

/// Every file in the directory, for "nothing else was left behind" checks.
fn dir_listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_through_the_file() {
    let f = fixture();
    let v = LocalVault::open_or_create(&f.settings).unwrap();
    assert!(
        !f.settings.path.exists(),
        "nothing is written before the first set"
    );
    assert!(!v
        .set(
            "admin-alice@hopgate.test",
            cred("CORP\\alice-adm", "p@ss:wörd")
        )
        .unwrap());
    assert!(!v
        .set("web1-local", cred("Administrator", "hunter2"))
        .unwrap());
    assert!(
        v.set("web1-local", cred("Administrator", "hunter3"))
            .unwrap(),
        "replaced"
    );

    let reopened = LocalVault::open(&f.settings).unwrap();
    assert_eq!(
        reopened.list(),
        vec!["admin-alice@hopgate.test", "web1-local"]
    );
    let c = reopened.get("admin-alice@hopgate.test").unwrap();
    assert_eq!(c.user, "CORP\\alice-adm");
    assert_eq!(c.secret.expose(), "p@ss:wörd");
    assert_eq!(
        reopened.get("web1-local").unwrap().secret.expose(),
        "hunter3"
    );
    assert!(matches!(
        reopened.get("nope"),
        Err(VaultError::NotFound { .. })
    ));

    assert!(reopened.remove("web1-local").unwrap());
    assert!(!reopened.remove("web1-local").unwrap());
    assert_eq!(
        LocalVault::open(&f.settings).unwrap().list(),
        vec!["admin-alice@hopgate.test"]
    );

    // The password is not in the file in clear, and the file is private.
    let bytes = std::fs::read(&f.settings.path).unwrap();
    assert!(!bytes.windows(7).any(|w| w == b"hunter3"));
    assert!(!bytes.windows(5).any(|w| w == b"alice"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f.settings.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn wrong_key_is_clear_and_leaves_the_file_unchanged() {
    let f = fixture();
    LocalVault::open_or_create(&f.settings)
        .unwrap()
        .set("a", cred("u", "p"))
        .unwrap();
    let before = std::fs::read(&f.settings.path).unwrap();
    let wrong = other_key_settings(&f);

    let e = LocalVault::open(&wrong).unwrap_err();
    assert!(matches!(e, VaultError::WrongKey { .. }), "{e:?}");
    assert!(e.to_string().contains("different key"), "{e}");
    // open_or_create and cmd_set with the wrong key must not replace the file either.
    assert!(matches!(
        LocalVault::open_or_create(&wrong),
        Err(VaultError::WrongKey { .. })
    ));
    let mut input = Cursor::new(b"pw\n".to_vec());
    assert!(matches!(
        cmd_set(&wrong, "b", "u", PasswordSource::Reader(&mut input)),
        Err(VaultError::WrongKey { .. })
    ));
    assert_eq!(
        std::fs::read(&f.settings.path).unwrap(),
        before,
        "byte for byte"
    );
}

#[test]
fn a_vault_opened_before_the_file_was_replaced_never_overwrites_it() {
    // Process A opens the vault; the file is then rewritten with another key. A's next set
    // must fail with WrongKey instead of clobbering the file with its own key.
    let f = fixture();
    let a = LocalVault::open_or_create(&f.settings).unwrap();
    a.set("x", cred("u", "p")).unwrap();
    std::fs::remove_file(&f.settings.path).unwrap();
    let wrong = other_key_settings(&f);
    LocalVault::open_or_create(&wrong)
        .unwrap()
        .set("y", cred("u", "p"))
        .unwrap();
    let before = std::fs::read(&f.settings.path).unwrap();
    assert!(matches!(
        a.set("z", cred("u", "p")),
        Err(VaultError::WrongKey { .. })
    ));
    assert_eq!(std::fs::read(&f.settings.path).unwrap(), before);
}

#[test]
fn tampered_file_fails_authentication() {
    let f = fixture();
    LocalVault::open_or_create(&f.settings)
        .unwrap()
        .set("a", cred("u", "p"))
        .unwrap();
    let mut bytes = std::fs::read(&f.settings.path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80; // inside the GCM tag
    std::fs::write(&f.settings.path, &bytes).unwrap();
    assert!(matches!(
        LocalVault::open(&f.settings),
        Err(VaultError::Tampered { .. })
    ));
    bytes[last] ^= 0x80;
    bytes[50] ^= 0x01; // inside the ciphertext
    std::fs::write(&f.settings.path, &bytes).unwrap();
    assert!(matches!(
        LocalVault::open(&f.settings),
        Err(VaultError::Tampered { .. })
    ));
}

#[test]
fn truncated_file_is_reported() {
    let f = fixture();
    LocalVault::open_or_create(&f.settings)
        .unwrap()
        .set("a", cred("u", "p"))
        .unwrap();
    let bytes = std::fs::read(&f.settings.path).unwrap();
    for len in [0, 5, 20, format::HEADER_LEN, format::MIN_LEN - 1] {
        std::fs::write(&f.settings.path, &bytes[..len]).unwrap();
        let e = LocalVault::open(&f.settings).unwrap_err();
        assert!(
            matches!(e, VaultError::Truncated { .. }),
            "len {len}: {e:?}"
        );
    }
    std::fs::write(&f.settings.path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(
        LocalVault::open(&f.settings),
        Err(VaultError::Tampered { .. })
    ));
}

#[test]
fn failed_write_leaves_no_partial_file() {
    let f = fixture();
    let v = LocalVault::open_or_create(&f.settings).unwrap();
    v.set("a", cred("u", "p")).unwrap();
    // Replace the vault file by a non-empty directory: reading fails → nothing written.
    std::fs::remove_file(&f.settings.path).unwrap();
    std::fs::create_dir(&f.settings.path).unwrap();
    std::fs::write(f.settings.path.join("keep"), b"x").unwrap();
    let listing = dir_listing(f.dir.path());
    assert!(v.set("b", cred("u", "p")).is_err());
    assert_eq!(
        dir_listing(f.dir.path()),
        listing,
        "no temp file left behind"
    );
    // The in-memory view is unchanged by the failed write.
    assert_eq!(v.list(), vec!["a"]);
}

#[test]
fn rename_failure_removes_the_temp_file() {
    // write_atomic directly: the target is a non-empty directory, so rename fails after the
    // temp file was fully written; it must be cleaned up.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("vault.bin");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let before = dir_listing(dir.path());
    let e = fsutil::write_atomic(&target, b"data").unwrap_err();
    assert!(matches!(e, VaultError::Io { op: "replace", .. }), "{e:?}");
    assert_eq!(dir_listing(dir.path()), before);
}

#[test]
fn missing_file_and_settings_errors() {
    let f = fixture();
    assert!(matches!(
        LocalVault::open(&f.settings),
        Err(VaultError::Missing { .. })
    ));
    let neither = VaultSettings {
        key_file: None,
        ..f.settings.clone()
    };
    assert!(matches!(
        LocalVault::open(&neither),
        Err(VaultError::KeySource { .. })
    ));
    let both = VaultSettings {
        key_env: Some("HOPGATE_VAULT_KEY".to_owned()),
        ..f.settings.clone()
    };
    assert!(matches!(
        both.key_source(),
        Err(VaultError::KeySource { .. })
    ));
    let env = VaultSettings {
        key_file: None,
        key_env: Some("HOPGATE_TEST_SURELY_UNSET_VAR_1234".to_owned()),
        ..f.settings.clone()
    };
    assert!(matches!(
        LocalVault::open(&env),
        Err(VaultError::KeySource { .. })
    ));
}

#[test]
fn foreign_file_is_not_a_vault_and_is_kept() {
    let f = fixture();
    std::fs::write(&f.settings.path, b"[vault]\nnot = \"encrypted\"\n").unwrap();
    assert!(matches!(
        LocalVault::open_or_create(&f.settings),
        Err(VaultError::NotAVault { .. })
    ));
    assert_eq!(
        std::fs::read(&f.settings.path).unwrap(),
        b"[vault]\nnot = \"encrypted\"\n"
    );
}

#[test]
fn two_handles_do_not_lose_each_others_writes() {
    let f = fixture();
    let a = LocalVault::open_or_create(&f.settings).unwrap();
    let b = LocalVault::open_or_create(&f.settings).unwrap();
    a.set("from-a", cred("u", "p")).unwrap();
    b.set("from-b", cred("u", "p")).unwrap();
    assert_eq!(
        LocalVault::open(&f.settings).unwrap().list(),
        vec!["from-a", "from-b"]
    );
    a.reload().unwrap();
    assert_eq!(a.list(), vec!["from-a", "from-b"]);
}

#[test]
fn concurrent_writers_are_serialised_by_the_lock() {
    // Eight handles (separate open file descriptions, so flock conflicts between them as it
    // would between processes) each add one entry at the same time; none may be lost.
    let f = fixture();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let settings = f.settings.clone();
            std::thread::spawn(move || {
                let v = LocalVault::open_or_create(&settings).unwrap();
                v.set(&format!("entry-{i}"), cred("u", "p")).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let names = LocalVault::open(&f.settings).unwrap().list();
    assert_eq!(
        names,
        (0..8).map(|i| format!("entry-{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn names_and_references() {
    assert!(validate_name("admin-alice@corp.example").is_ok());
    for bad in ["", "a b", "a/b", "../x", "x\n", "ä", &"x".repeat(129)] {
        assert!(
            matches!(validate_name(bad), Err(VaultError::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(
        resolve_ref("admin-{user}", "alice@corp.example").unwrap(),
        "admin-alice@corp.example"
    );
    assert_eq!(resolve_ref("{user}-{user}", "bob").unwrap(), "bob-bob");
    assert_eq!(
        resolve_ref("shared-admin", "anyone at all").unwrap(),
        "shared-admin"
    );
    for principal in ["", "alice smith", "a/b", "CORP\\alice", "x}", "{user}"] {
        assert!(
            matches!(
                resolve_ref("admin-{user}", principal),
                Err(VaultError::PrincipalNotUsable { .. })
            ),
            "{principal:?}"
        );
    }
    for reference in ["admin-{usr}", "admin-{user", "admin-}", "{}"] {
        assert!(
            matches!(
                resolve_ref(reference, "bob"),
                Err(VaultError::InvalidReference { .. })
            ),
            "{reference:?}"
        );
    }
    assert!(validate_ref("admin-{user}").is_ok());
    assert!(validate_ref("bad name").is_err());
    assert!(resolve_ref(&format!("{}-{{user}}", "x".repeat(120)), "alice-long-name").is_err());
}

#[test]
fn cli_helpers() {
    let f = fixture();
    let mut input = Cursor::new(b"s3cret pass\r\nignored second line\n".to_vec());
    let out = cmd_set(
        &f.settings,
        "web1",
        "Administrator",
        PasswordSource::Reader(&mut input),
    )
    .unwrap();
    assert_eq!(
        (out.name.as_str(), out.user.as_str(), out.replaced),
        ("web1", "Administrator", false)
    );
    let v = LocalVault::open(&f.settings).unwrap();
    assert_eq!(v.get("web1").unwrap().secret.expose(), "s3cret pass");

    assert_eq!(cmd_get(&f.settings, "web1").unwrap(), "Administrator");
    assert_eq!(cmd_list(&f.settings).unwrap(), vec!["web1"]);
    let mut empty = Cursor::new(b"\n".to_vec());
    assert!(matches!(
        cmd_set(&f.settings, "web2", "u", PasswordSource::Reader(&mut empty)),
        Err(VaultError::InvalidCredential { .. })
    ));
    let mut unused = Cursor::new(b"pw\n".to_vec());
    assert!(matches!(
        cmd_set(
            &f.settings,
            "bad name",
            "u",
            PasswordSource::Reader(&mut unused)
        ),
        Err(VaultError::InvalidName { .. })
    ));
    assert_eq!(unused.position(), 0, "no password read for an invalid name");
    cmd_rm(&f.settings, "web1").unwrap();
    assert!(matches!(
        cmd_rm(&f.settings, "web1"),
        Err(VaultError::NotFound { .. })
    ));
    assert!(cmd_list(&f.settings).unwrap().is_empty());
}

#[test]
fn debug_output_redacts() {
    let c = cred("alice", "topsecret");
    let dbg = format!("{c:?}");
    assert!(dbg.contains("alice") && !dbg.contains("topsecret"), "{dbg}");
    let f = fixture();
    let v = LocalVault::open_or_create(&f.settings).unwrap();
    v.set("a", c).unwrap();
    assert!(!format!("{v:?}").contains("topsecret"));
}
