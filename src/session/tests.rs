#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;

fn record(id: &str, owner: &str, host: &str) -> ShellIdentity {
    ShellIdentity {
        shell_id: id.into(),
        session_id: format!("s-{id}"),
        owner: owner.into(),
        host: host.into(),
        kind: ShellKind::Cmd,
        backend_user: "svc".into(),
        created_ms: 1,
        last_activity_ms: 1,
    }
}

#[test]
fn owner_on_its_host_is_granted_and_its_activity_refreshed() {
    let r = LocalRegistry::new(Duration::from_secs(60), 100);
    r.insert(record("A", "alice", "web1"));
    let Access::Granted(s) = r.check("A", "alice", "web1") else {
        panic!("not granted");
    };
    assert_eq!(s.session_id, "s-A");
    assert!(s.last_activity_ms > 1);
    assert_eq!(r.list()[0].last_activity_ms, s.last_activity_ms);
}

#[test]
fn another_principal_is_refused_and_told_nothing_more() {
    let r = LocalRegistry::new(Duration::from_secs(60), 100);
    r.insert(record("A", "alice", "web1"));
    assert!(matches!(r.check("A", "bob", "web1"), Access::NotOwner { owner } if owner == "alice"));
}

#[test]
fn same_shell_through_another_host_is_refused() {
    let r = LocalRegistry::new(Duration::from_secs(60), 100);
    r.insert(record("A", "alice", "web1"));
    assert!(matches!(r.check("A", "alice", "db1"), Access::WrongHost { host } if host == "web1"));
}

#[test]
fn unknown_and_removed_shells() {
    let r = LocalRegistry::new(Duration::from_secs(60), 100);
    assert!(matches!(r.check("nope", "alice", "web1"), Access::Unknown));
    r.insert(record("A", "alice", "web1"));
    assert_eq!(r.remove("A").unwrap().owner, "alice");
    assert!(matches!(r.check("A", "alice", "web1"), Access::Unknown));
    assert!(r.list().is_empty());
}

#[test]
fn identities_are_plain_serialisable_data() {
    // A shared registry stores them as JSON (or similar): the round trip must be exact.
    let mut id = record("A", "alice", "web1");
    id.kind = ShellKind::Psrp {
        configuration: "Microsoft.PowerShell".into(),
    };
    let json = serde_json::to_string(&id).unwrap();
    assert!(
        json.contains(r#""kind":{"kind":"psrp","configuration":"Microsoft.PowerShell"}"#),
        "{json}"
    );
    let back: ShellIdentity = serde_json::from_str(&json).unwrap();
    assert_eq!(back, id);
}
