#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::audit::AuditTask;
use crate::policy::PolicySource;
use crate::session::{LocalRegistry, ShellIdentity, ShellKind};

const TOKEN: &str = "admin-token-0123456789abcdef";

fn engine() -> Engine {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/policies/e2e.toml"
    ))
    .unwrap();
    Engine::from_sources(&[PolicySource {
        path: "e2e.toml".into(),
        text,
    }])
    .unwrap()
}

struct Fixture {
    admin: Admin,
    dir: tempfile::TempDir,
    writer: tokio::task::JoinHandle<()>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (audit, task) = AuditTask::open(dir.path()).await.unwrap();
    let writer = tokio::spawn(task.run());
    let sessions: Arc<dyn SessionRegistry> =
        Arc::new(LocalRegistry::new(Duration::from_secs(60), 100));
    sessions.insert(ShellIdentity {
        shell_id: "SHELL-1".into(),
        session_id: "sess-1".into(),
        owner: "alice@corp.test".into(),
        host: "web1".into(),
        kind: ShellKind::Cmd,
        backend_user: "CORP\\svc".into(),
        created_ms: crate::session::now_ms(),
        last_activity_ms: crate::session::now_ms(),
        idle_ms: 0,
        busy_until_ms: 0,
    });
    let admin = Admin {
        sessions,
        audit,
        policy: Arc::new(arc_swap::ArcSwap::from_pointee(engine())),
        token: AdminToken::new(TOKEN.as_bytes()),
        closer: None,
        metrics: Default::default(),
        exporters: None,
    };
    Fixture { admin, dir, writer }
}

fn bearer(t: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("Bearer {t}")).unwrap()
}

async fn body(r: Response<Full<Bytes>>) -> (StatusCode, String) {
    let status = r.status();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(b.to_vec()).unwrap())
}

#[tokio::test]
async fn probes_are_open_and_everything_else_needs_the_token() {
    let f = fixture().await;
    let a = &f.admin;
    assert_eq!(
        body(a.respond(&Method::GET, "/healthz", None).await)
            .await
            .0,
        StatusCode::OK
    );
    let (s, b) = body(a.respond(&Method::GET, "/readyz", None).await).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b.contains("audit: ok") && b.contains("policies: loaded"),
        "{b}"
    );

    for (m, p) in [
        (Method::GET, "/metrics"),
        (Method::GET, "/api/v1/sessions"),
        (Method::DELETE, "/api/v1/sessions/sess-1"),
    ] {
        for auth in [
            None,
            Some(bearer("wrong-token-0123456789abcdef")),
            Some(bearer(&TOKEN[..TOKEN.len() - 1])),
            Some(http::HeaderValue::from_str(&format!("Basic {TOKEN}")).unwrap()),
        ] {
            let r = a.respond(&m, p, auth.as_ref()).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {p} {auth:?}");
        }
    }
    // Nothing was terminated by the refused DELETEs.
    assert_eq!(a.sessions.list().len(), 1);
    assert_eq!(
        a.respond(&Method::GET, "/nope", Some(&bearer(TOKEN)))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.respond(&Method::POST, "/metrics", Some(&bearer(TOKEN)))
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    f.writer.abort();
}

#[tokio::test]
async fn sessions_are_listed_and_terminated_with_an_audit_record() {
    let f = fixture().await;
    let a = &f.admin;
    let (s, b) = body(
        a.respond(&Method::GET, "/api/v1/sessions", Some(&bearer(TOKEN)))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let list = v["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["session_id"], "sess-1");
    assert_eq!(list[0]["principal"], "alice@corp.test");
    assert_eq!(list[0]["host"], "web1");
    assert_eq!(list[0]["kind"], "cmd");

    let (s, b) = body(
        a.respond(
            &Method::DELETE,
            "/api/v1/sessions/sess-1",
            Some(&bearer(TOKEN)),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The shell is gone: the proxy's ownership check now answers Unknown.
    assert!(matches!(
        a.sessions.check("SHELL-1", "alice@corp.test", "web1"),
        crate::session::Access::Unknown
    ));
    let (s, _) = body(
        a.respond(
            &Method::DELETE,
            "/api/v1/sessions/sess-1",
            Some(&bearer(TOKEN)),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    a.audit.flush().await;
    let text = std::fs::read_to_string(f.dir.path().join(crate::audit::sink::AUDIT_FILE)).unwrap();
    assert_eq!(crate::audit::chain::verify_text(&text), Ok(2));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "admin.terminate");
    assert_eq!(lines[0]["session_id"], "sess-1");
    assert_eq!(lines[1]["event"], "session.end");
    assert_eq!(lines[1]["reason"], "terminated by an administrator");
    f.writer.abort();
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let f = fixture().await;
    let a = &f.admin;
    for kind in [
        EventKind::CommandDenied {
            principal: "p".into(),
            host: "h".into(),
            shell_id: "s".into(),
            command: vec!["x".into()],
            decoded: Vec::new(),
            reason: "r".into(),
        },
        EventKind::AuditGap { dropped: 0 },
    ] {
        a.audit.emit(Event {
            session_id: None,
            kind,
        });
    }
    let (s, b) = body(
        a.respond(&Method::GET, "/metrics", Some(&bearer(TOKEN)))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for line in [
        "hopgate_active_sessions 1",
        "hopgate_audit_healthy 1",
        "hopgate_audit_dropped_total 0",
        "hopgate_decisions_total{decision=\"allow\"} 0",
        "hopgate_decisions_total{decision=\"deny\"} 1",
        "hopgate_audit_events_total{event=\"audit.gap\"} 1",
        "# TYPE hopgate_decisions_total counter",
    ] {
        assert!(b.lines().any(|l| l == line), "missing `{line}` in\n{b}");
    }
    // Every sample line is `name{labels} value` with a numeric value.
    for l in b.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
    f.writer.abort();
}

#[tokio::test]
async fn readyz_fails_when_the_audit_log_is_gone() {
    let f = fixture().await;
    assert_eq!(
        body(f.admin.respond(&Method::GET, "/readyz", None).await)
            .await
            .0,
        StatusCode::OK
    );
    f.admin.audit.emit(Event {
        session_id: None,
        kind: EventKind::AuditGap { dropped: 0 },
    });
    f.admin.audit.flush().await;
    std::fs::remove_file(f.dir.path().join(crate::audit::sink::AUDIT_FILE)).unwrap();
    let start = Instant::now();
    while f.admin.audit.healthy() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = body(f.admin.respond(&Method::GET, "/readyz", None).await).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(b.contains("audit: unavailable"), "{b}");
    f.writer.abort();
}

#[tokio::test]
async fn serves_over_a_loopback_socket() {
    let f = fixture().await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = Listener::new("admin", tcp, crate::listener::ListenerLimits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, f.admin.clone(), async move {
        let _ = stopped.await;
    }));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET /api/v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"session_id\":\"sess-1\""), "{out}");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    f.writer.abort();
}

#[test]
fn token_file_is_read_trimmed_and_must_be_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    std::fs::write(&p, format!("{TOKEN}\n")).unwrap();
    let t = AdminToken::from_file(&p).unwrap();
    assert!(t.accepts(Some(&bearer(TOKEN))));
    assert!(!format!("{t:?}").contains(TOKEN));
    std::fs::write(&p, "short\n").unwrap();
    assert!(matches!(
        AdminToken::from_file(&p),
        Err(AdminError::TokenTooShort { .. })
    ));
    assert!(matches!(
        AdminToken::from_file(&dir.path().join("missing")),
        Err(AdminError::TokenFile { .. })
    ));
}
