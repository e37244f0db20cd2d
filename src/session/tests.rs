#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

fn record(id: &str, owner: &str, host: &str) -> ShellRecord {
    ShellRecord {
        shell_id: id.into(),
        session_id: format!("s-{id}"),
        owner: owner.into(),
        host: host.into(),
        kind: ShellKind::Cmd,
        backend_user: "svc".into(),
        created: Instant::now(),
        psrp: None,
        cmd: None,
        activity: Default::default(),
    }
}

#[test]
fn owner_on_its_host_is_granted() {
    let r = LocalRegistry::new(Duration::from_secs(60), 100);
    r.insert(record("A", "alice", "web1"));
    assert!(matches!(r.check("A", "alice", "web1"), Access::Granted(s) if s.session_id == "s-A"));
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
}
