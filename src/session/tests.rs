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
        idle_ms: 0,
        busy_until_ms: 0,
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

#[tokio::test]
async fn an_idle_shell_ends_once_with_its_own_timeout_and_a_removed_one_never() {
    let (r, mut ended) = LocalRegistry::with_ends(Duration::from_secs(60), 100);
    let mut short = record("A", "alice", "web1");
    short.idle_ms = 200;
    r.insert(short);
    r.insert(record("B", "alice", "web1")); // the 60 s default
    r.insert({
        let mut c = record("C", "alice", "web1");
        c.idle_ms = 200;
        c
    });
    assert!(
        r.remove("C").is_some(),
        "removed by its client: its caller records the end"
    );

    // Used before its timeout: the timer starts again.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(matches!(r.check("A", "alice", "web1"), Access::Granted(_)));
    tokio::time::sleep(Duration::from_millis(120)).await;
    r.sweep();
    assert!(ended.try_recv().is_err(), "A was used 120 ms ago");

    // Expired by now (an expired shell is never granted); reported by a sweep once
    // moka's timer wheel reaches it (its buckets are about a second wide).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(matches!(r.check("A", "alice", "web1"), Access::Unknown));
    let mut e = None;
    for _ in 0..40 {
        r.sweep();
        if let Ok(got) = ended.try_recv() {
            e = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(e) = e else {
        panic!("the idle shell is not reported within 4 s");
    };
    assert_eq!(e.shell.shell_id, "A");
    assert_eq!(e.cause, EndCause::Idle);
    assert_eq!(e.cause.reason(), "idle");
    r.sweep();
    assert!(
        ended.try_recv().is_err(),
        "one end per shell; B is not idle, C was removed"
    );
    assert!(r.remove("A").is_none(), "nobody else can end it again");
    assert_eq!(r.list().len(), 1);
}

#[test]
fn a_full_registry_reports_the_shell_it_lets_go_as_evicted() {
    let (r, mut ended) = LocalRegistry::with_ends(Duration::from_secs(60), 2);
    for id in ["A", "B", "C", "D"] {
        r.insert(record(id, "alice", "web1"));
        r.sweep();
    }
    let mut evicted = Vec::new();
    while let Ok(e) = ended.try_recv() {
        assert_eq!(e.cause, EndCause::Evicted);
        assert_eq!(e.cause.reason(), "evicted");
        evicted.push(e.shell.shell_id);
    }
    // Whichever moka's admission policy chose: every shell is either held or reported,
    // never both, never neither.
    let mut held: Vec<String> = r.list().into_iter().map(|s| s.shell_id).collect();
    assert_eq!(
        held.len() + evicted.len(),
        4,
        "held {held:?}, evicted {evicted:?}"
    );
    held.extend(evicted);
    held.sort();
    assert_eq!(held, ["A", "B", "C", "D"]);
}

#[tokio::test]
async fn a_shell_waiting_on_its_host_does_not_go_idle_until_the_wait_is_over() {
    let (r, mut ended) = LocalRegistry::with_ends(Duration::from_secs(60), 100);
    let mut s = record("A", "alice", "web1");
    s.idle_ms = 200;
    r.insert(s);
    // A long poll allowed 2 s: 200 ms of idleness is not enough to end it meanwhile.
    assert!(matches!(
        r.check_busy("A", "alice", "web1", Duration::from_secs(2)),
        Access::Granted(_)
    ));
    for _ in 0..17 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        r.sweep();
    }
    assert!(ended.try_recv().is_err());
    // The answer came: from now on 200 ms unused ends it.
    assert!(matches!(r.check("A", "alice", "web1"), Access::Granted(_)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(r.check("A", "alice", "web1"), Access::Unknown));
    let mut got = None;
    for _ in 0..40 {
        r.sweep();
        if let Ok(e) = ended.try_recv() {
            got = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(got.is_some_and(|e| e.cause == EndCause::Idle));
}
