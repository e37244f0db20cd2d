//! The exporter against real sockets: a tokio TCP (and rustls TLS) listener in the test
//! plays the collector, goes away and comes back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;

use super::*;
use crate::config::{SyslogConfig, SyslogTlsConfig};

fn tuning(capacity: usize) -> ExportTuning {
    ExportTuning {
        capacity,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        io_timeout: Duration::from_secs(5),
    }
}

fn syslog_to(addr: SocketAddr, tls: Option<SyslogTlsConfig>) -> AuditExportConfig {
    AuditExportConfig {
        stdout: false,
        syslog: Some(SyslogConfig {
            address: addr.to_string(),
            tls,
            facility: 16,
            app_name: "hopgate".into(),
        }),
    }
}

fn line(seq: u64) -> String {
    format!(
        r#"{{"event":"command.allowed","session_id":"s1","seq":{seq},"ts":"2026-11-23T06:41:44.123Z","prev":"p{seq}","hash":"h{seq}"}}"#
    )
}

/// Reads one octet-counted frame; `None` at a clean end of stream.
async fn frame(r: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut len = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if r.read(&mut b).await.unwrap() == 0 {
            assert!(len.is_empty(), "stream ended inside a frame length");
            return None;
        }
        if b[0] == b' ' {
            break;
        }
        assert!(b[0].is_ascii_digit(), "frame length digit, got {:?}", b[0]);
        len.push(b[0]);
    }
    let n: usize = std::str::from_utf8(&len).unwrap().parse().unwrap();
    let mut msg = vec![0u8; n];
    r.read_exact(&mut msg).await.unwrap();
    Some(String::from_utf8(msg).unwrap())
}

/// The audit line carried as MSG.
fn msg_of(m: &str) -> &str {
    m.split_once('\u{feff}').unwrap().1
}

async fn frames(r: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(10), frame(r))
            .await
            .expect("frame within 10 s")
            .expect("a frame, not the end of the stream");
        out.push(msg_of(&m).to_owned());
    }
    out
}

fn syslog_stats(x: &Exporters) -> ExportStats {
    x.stats()
        .into_iter()
        .find(|s| s.destination == "syslog")
        .unwrap()
}

#[tokio::test]
async fn lines_arrive_framed_in_order_as_rfc5424() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let x = Exporters::start(
        &syslog_to(listener.local_addr().unwrap(), None),
        tuning(100),
    )
    .await
    .unwrap()
    .unwrap();
    for i in 0..5 {
        x.offer(&line(i));
    }
    let (mut s, _) = listener.accept().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), frame(&mut s))
        .await
        .unwrap()
        .unwrap();
    // local0 (16) * 8 + informational (6)
    assert!(
        first.starts_with("<134>1 2026-11-23T06:41:44.123Z "),
        "{first}"
    );
    assert!(
        first.contains(" hopgate ")
            && first.contains(
                " command.allowed [hopgate@32473 session_id=\"s1\" seq=\"0\" hash=\"h0\"] "
            ),
        "{first}"
    );
    assert_eq!(msg_of(&first), line(0));
    assert_eq!(
        frames(&mut s, 4).await,
        (1..5).map(line).collect::<Vec<_>>()
    );
    assert!(x.drain(Duration::from_secs(5)).await);
    let st = syslog_stats(&x);
    assert_eq!(
        (st.sent, st.dropped, st.queued, st.connected),
        (5, 0, 0, true)
    );
    let m = x.prometheus();
    for sample in [
        "hopgate_audit_export_sent_total{destination=\"syslog\"} 5",
        "hopgate_audit_export_dropped_total{destination=\"syslog\"} 0",
        "hopgate_audit_export_queued{destination=\"syslog\"} 0",
        "hopgate_audit_export_connected{destination=\"syslog\"} 1",
        "# TYPE hopgate_audit_export_sent_total counter",
        "# TYPE hopgate_audit_export_queued gauge",
    ] {
        assert!(m.lines().any(|l| l == sample), "{sample} in\n{m}");
    }
}

#[tokio::test]
async fn a_collector_that_goes_away_gets_the_queued_lines_when_it_is_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let x = Exporters::start(&syslog_to(addr, None), tuning(100))
        .await
        .unwrap()
        .unwrap();
    x.offer(&line(0));
    let (mut s, _) = listener.accept().await.unwrap();
    assert_eq!(frames(&mut s, 1).await, [line(0)]);

    // The collector restarts: the connection closes and nobody listens for a while.
    drop(s);
    drop(listener);
    let start = tokio::time::Instant::now();
    while syslog_stats(&x).connected {
        assert!(start.elapsed() < Duration::from_secs(5), "EOF noticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 1..20 {
        x.offer(&line(i));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = syslog_stats(&x);
    assert!(!st.connected);
    assert_eq!((st.sent, st.queued, st.dropped), (1, 19, 0));

    let listener = TcpListener::bind(addr).await.unwrap();
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("the exporter reconnects within its backoff")
        .unwrap();
    assert_eq!(
        frames(&mut s, 19).await,
        (1..20).map(line).collect::<Vec<_>>()
    );
    assert!(x.drain(Duration::from_secs(5)).await);
    assert_eq!(syslog_stats(&x).sent, 20);
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_without_waiting() {
    // Nobody listens on this port yet.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let x = Exporters::start(&syslog_to(addr, None), tuning(4))
        .await
        .unwrap()
        .unwrap();
    // The task has not run yet (single-threaded runtime, no await since it was spawned):
    // offer must return at once, keeping 4 and dropping the rest.
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let begin = std::time::Instant::now();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10 {
            x.offer(&line(i));
        }
    });
    assert!(
        begin.elapsed() < Duration::from_secs(2),
        "offer never waits"
    );
    let st = syslog_stats(&x);
    assert_eq!((st.queued, st.dropped, st.sent), (4, 6, 0));
    // One warning for the episode, naming the destination, never the content.
    let text = logs.text();
    assert_eq!(text.matches("Audit export queue full").count(), 1, "{text}");
    assert!(text.contains("destination=\"syslog\""), "{text}");
    assert!(
        !text.contains("command.allowed") && !text.contains("p4"),
        "{text}"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        frames(&mut s, 4).await,
        (0..4).map(line).collect::<Vec<_>>()
    );
    assert!(x.drain(Duration::from_secs(5)).await);
    // Room again: later lines flow.
    x.offer(&line(10));
    assert_eq!(frames(&mut s, 1).await, [line(10)]);
    assert!(x.drain(Duration::from_secs(5)).await);
    let st = syslog_stats(&x);
    assert_eq!((st.queued, st.dropped, st.sent), (0, 6, 5));
}

#[tokio::test]
async fn a_stalled_collector_is_abandoned_after_the_write_timeout_and_the_batch_resent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let t = ExportTuning {
        io_timeout: Duration::from_millis(500),
        ..tuning(1000)
    };
    let x = Exporters::start(&syslog_to(listener.local_addr().unwrap(), None), t)
        .await
        .unwrap()
        .unwrap();
    // Big lines (like capped output events) fill the socket buffers of a collector that
    // accepts but never reads.
    let big = |i: u64| {
        line(i).replace(
            "\"prev\"",
            &format!("\"pad\":\"{}\",\"prev\"", "x".repeat(60_000)),
        )
    };
    for i in 0..300 {
        x.offer(&big(i));
    }
    let (stalled, _) = listener.accept().await.unwrap();
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the exporter gives up on the stalled connection and reconnects")
        .unwrap();
    // The new connection starts at a frame boundary with a resent line; from there on
    // every line arrives in order.
    let first: Value = serde_json::from_str(&frames(&mut s, 1).await[0]).unwrap();
    let from = first["seq"].as_u64().unwrap();
    let rest = frames(&mut s, usize::try_from(299 - from).unwrap()).await;
    assert_eq!(rest, (from + 1..300).map(big).collect::<Vec<_>>());
    assert!(x.drain(Duration::from_secs(10)).await);
    assert_eq!(syslog_stats(&x).dropped, 0);
    drop(stalled);
}

/// Log output captured by a test subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A rustls server with a dev certificate for localhost/127.0.0.1; returns its CA file.
fn tls_server(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = crate::devcerts::generate(dir, crate::devcerts::DevCertOptions::default()).unwrap();
    let chain = CertificateDer::pem_file_iter(&certs.server_cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&certs.server_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certs.ca_cert,
    )
}

#[tokio::test]
async fn tls_verifies_the_receiver_and_carries_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca) = tls_server(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = SyslogTlsConfig {
        ca_file: ca,
        server_name: "localhost".into(),
    };
    let x = Exporters::start(
        &syslog_to(listener.local_addr().unwrap(), Some(tls)),
        tuning(100),
    )
    .await
    .unwrap()
    .unwrap();
    x.offer(&line(0));
    x.offer(&line(1));
    let (tcp, _) = listener.accept().await.unwrap();
    let mut s = acceptor.accept(tcp).await.unwrap();
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2),
        "TLS 1.2 servers are accepted"
    );
    assert_eq!(frames(&mut s, 2).await, [line(0), line(1)]);
    assert!(x.drain(Duration::from_secs(5)).await);
    assert!(syslog_stats(&x).connected);
}

#[tokio::test]
async fn a_receiver_with_an_untrusted_certificate_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, _) = tls_server(&dir.path().join("theirs"));
    // Trust a different CA than the one that signed the receiver's certificate.
    let other = crate::devcerts::generate(
        &dir.path().join("ours"),
        crate::devcerts::DevCertOptions::default(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = SyslogTlsConfig {
        ca_file: other.ca_cert,
        server_name: "localhost".into(),
    };
    let x = Exporters::start(
        &syslog_to(listener.local_addr().unwrap(), Some(tls)),
        tuning(100),
    )
    .await
    .unwrap()
    .unwrap();
    x.offer(&line(0));
    for _ in 0..2 {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = match acceptor.accept(tcp).await {
            // The client aborts the handshake when it sees the certificate.
            Err(_) => continue,
            Ok(s) => s,
        };
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        assert!(
            buf.is_empty(),
            "nothing may be sent to an unverified receiver"
        );
    }
    let st = syslog_stats(&x);
    assert_eq!((st.connected, st.sent, st.queued), (false, 0, 1));
}

#[tokio::test]
async fn stdout_gets_json_lines_and_a_closed_stdout_only_counts() {
    let (tx, rx) = mpsc::channel(16);
    let counters = Arc::new(Counters::default());
    let (writer, mut reader) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(stdout::run_to(writer, rx, counters.clone()));
    for i in 0..3 {
        tx.send(Arc::from(line(i).as_str())).await.unwrap();
        counters.accepted.fetch_add(1, Ordering::Relaxed);
    }
    let mut got = vec![0u8; 3 * (line(0).len() + 1)];
    reader.read_exact(&mut got).await.unwrap();
    let want: String = (0..3).map(|i| line(i) + "\n").collect();
    assert_eq!(String::from_utf8(got).unwrap(), want);

    drop(reader);
    tx.send(Arc::from(line(3).as_str())).await.unwrap();
    tx.send(Arc::from(line(4).as_str())).await.unwrap();
    drop(tx);
    task.await.unwrap();
    assert_eq!(counters.sent.load(Ordering::Relaxed), 3);
    assert_eq!(counters.lost.load(Ordering::Relaxed), 2);
    assert!(!counters.connected.load(Ordering::Relaxed));
}

#[tokio::test]
async fn nothing_configured_starts_nothing() {
    let x = Exporters::start(&AuditExportConfig::default(), tuning(1))
        .await
        .unwrap();
    assert!(x.is_none());
}

#[tokio::test]
async fn a_missing_or_empty_ca_file_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for ca_file in [dir.path().join("missing.pem"), empty] {
        let tls = SyslogTlsConfig {
            ca_file,
            server_name: "localhost".into(),
        };
        let r = Exporters::start(
            &syslog_to("127.0.0.1:9".parse().unwrap(), Some(tls)),
            tuning(1),
        )
        .await;
        assert!(matches!(r, Err(ExportError::CaFile { .. })), "{r:?}");
    }
}
