#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::backoff::AcceptBackoff;
use super::*;
use crate::config::{ListenerConfig, MinTls};
use crate::devcerts::{DevCa, IssuedCert};
use crate::tls::CertificateProblem;

fn limits() -> ListenerLimits {
    ListenerLimits {
        max_connections: 8,
        handshake_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        drain_timeout: Duration::from_secs(2),
        max_connections_per_source: 8,
        max_handshakes_per_source: 8,
        first_byte_timeout: Duration::from_secs(5),
    }
}

/// Serves "hello <peer has cert>" on `listener` until the returned sender is used.
fn spawn(
    listener: Listener,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(listener.serve(
        |info: ConnInfo| {
            move |req: Request<Incoming>| {
                let cert = info.client_cert.is_some();
                async move {
                    if req.uri().path() == "/slow" {
                        tokio::time::sleep(Duration::from_millis(600)).await;
                    }
                    Response::new(Full::new(Bytes::from(format!("hello cert={cert}"))))
                }
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop, task)
}

async fn plain(limits: ListenerLimits) -> (Listener, Arc<ListenerMetrics>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = Arc::new(ListenerMetrics::default());
    (
        Listener::new("test", tcp, limits).with_metrics(metrics.clone()),
        metrics,
    )
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one response (headers and the short body) from a keep-alive connection.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = vec![0u8; 4096];
    let mut out = String::new();
    while !out.contains("hello cert=") || !(out.ends_with("true") || out.ends_with("false")) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "closed early: {out}");
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}

/// Whether the peer closes the connection within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn plain_http_is_served_and_an_idle_connection_is_closed() {
    let (listener, metrics) = plain(ListenerLimits {
        header_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(700),
        ..limits()
    })
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    // Waiting for the next request longer than the header deadline is not a slow header.
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "idle close"
    );
    assert_eq!(metrics.idle_closed.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.header_timeouts.load(Ordering::Relaxed), 0);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_request_in_flight_is_not_idleness() {
    let (listener, metrics) = plain(ListenerLimits {
        idle_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    assert_eq!(metrics.idle_closed.load(Ordering::Relaxed), 0);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off() {
    let (listener, metrics) = plain(ListenerLimits {
        header_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    assert_eq!(metrics.header_timeouts.load(Ordering::Relaxed), 1);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn past_the_cap_new_clients_wait_until_a_slot_frees() {
    let (listener, metrics) = plain(ListenerLimits {
        max_connections: 1,
        ..limits()
    })
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(GET).await.unwrap();
    read_response(&mut first).await;
    // The kernel completes the TCP handshake, but nobody serves the second client.
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(GET).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf))
            .await
            .is_err(),
        "served past the cap"
    );
    assert!(metrics.at_capacity.load(Ordering::Relaxed) >= 1);
    drop(first);
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (listener, _) = plain(limits()).await;
    let (addr, stop, task) = spawn(listener);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop.send(());
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn resource_errors_back_off_up_to_a_ceiling_and_per_connection_errors_do_not() {
    let mut b = AcceptBackoff::new("test");
    let emfile = std::io::Error::from_raw_os_error(24);
    let pauses: Vec<Duration> = (0..10).map(|_| b.pause_for(&emfile)).collect();
    assert_eq!(pauses[0], Duration::from_millis(10));
    assert_eq!(pauses[1], Duration::from_millis(20));
    assert_eq!(
        *pauses.last().unwrap(),
        Duration::from_secs(1),
        "{pauses:?}"
    );
    let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
    assert_eq!(b.pause_for(&aborted), Duration::ZERO);
    b.after_success();
    assert_eq!(
        b.pause_for(&emfile),
        Duration::from_millis(10),
        "reset after a success"
    );
}

// --- TLS: handshake limits, reload, revocation ---

struct Pki {
    dir: tempfile::TempDir,
    ca: DevCa,
    alice: IssuedCert,
    bob: IssuedCert,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).unwrap();
        let server = ca.server(&["localhost".into()]).unwrap();
        server
            .write(
                &dir.path().join("server.pem"),
                &dir.path().join("server.key"),
            )
            .unwrap();
        std::fs::write(dir.path().join("crl.pem"), ca.crl(&[]).unwrap()).unwrap();
        let alice = ca.client("alice@hopgate.test").unwrap();
        let bob = ca.client("bob@hopgate.test").unwrap();
        Pki {
            dir,
            ca,
            alice,
            bob,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn listener_config(&self) -> ListenerConfig {
        ListenerConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: Some(self.path("ca.pem")),
            crl: Some(self.path("crl.pem")),
            min_tls: MinTls::Tls12,
            http_address: None,
        }
    }

    fn client(&self, who: Option<&IssuedCert>) -> tokio_rustls::TlsConnector {
        let roots = crate::tls::load_roots(&self.path("ca.pem")).unwrap();
        let identity = who.map(|c| {
            let chain = rustls_pki_types::CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key =
                rustls_pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
            (chain, key)
        });
        tokio_rustls::TlsConnector::from(crate::tls::client_config(roots, identity).unwrap())
    }
}

use rustls_pki_types::pem::PemObject as _;

type Failures = Arc<Mutex<Vec<HandshakeFailure>>>;

async fn tls_listener(
    tls: Arc<ServerTls>,
    limits: ListenerLimits,
) -> (Listener, Failures, Arc<ListenerMetrics>) {
    let (listener, metrics) = plain(limits).await;
    let failures: Failures = Arc::default();
    let f = failures.clone();
    let listener = listener
        .with_tls(tls)
        .on_handshake_error(Arc::new(move |_, failure| f.lock().unwrap().push(failure)));
    (listener, failures, metrics)
}

/// Connects, sends one GET and returns the response text and the server certificate seen.
async fn tls_get(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> Result<(String, Vec<u8>), String> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut s = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let seen = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    s.write_all(GET).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    // TLS 1.3: a refused client certificate shows up as an alert on the first read.
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("closed".into());
    }
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), seen))
}

fn der(pem: &str) -> Vec<u8> {
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_silent_client_is_cut_off_at_the_handshake_timeout() {
    let pki = Pki::new();
    let tls = Arc::new(ServerTls::load(&pki.listener_config()).unwrap());
    let (listener, failures, metrics) = tls_listener(
        tls,
        ListenerLimits {
            handshake_timeout: Duration::from_millis(300),
            ..limits()
        },
    )
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    assert_eq!(metrics.handshake_timeouts.load(Ordering::Relaxed), 1);
    // Plain HTTP on the TLS port is a failure, but not a certificate one.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    assert_eq!(
        failures.lock().unwrap().as_slice(),
        &[HandshakeFailure::NotTls]
    );
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_reload_changes_new_handshakes_only_and_a_crl_refuses_the_revoked_client() {
    let pki = Pki::new();
    let tls = Arc::new(ServerTls::load(&pki.listener_config()).unwrap());
    assert_eq!(tls.summary().crl_revoked, Some(0));
    let (listener, failures, _) = tls_listener(tls.clone(), limits()).await;
    let (addr, stop, task) = spawn(listener);
    let alice = pki.client(Some(&pki.alice));
    let bob = pki.client(Some(&pki.bob));

    // An established connection from before the reload.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut open = alice
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    open.write_all(GET).await.unwrap();
    assert!(read_response(&mut open).await.contains("hello cert=true"));
    let old = open.get_ref().1.peer_certificates().unwrap()[0].to_vec();

    // New server certificate and a CRL revoking bob.
    let new_server = pki.ca.server(&["localhost".into()]).unwrap();
    new_server
        .write(&pki.path("server.pem"), &pki.path("server.key"))
        .unwrap();
    std::fs::write(pki.path("crl.pem"), pki.ca.crl(&[&pki.bob]).unwrap()).unwrap();
    let summary = tls.reload().unwrap();
    assert_eq!(summary.crl_revoked, Some(1));
    assert!(summary.subject.contains("localhost"), "{summary:?}");

    // The open connection still works, on its old certificate.
    open.write_all(GET).await.unwrap();
    assert!(read_response(&mut open).await.contains("hello cert=true"));
    // A new connection sees the new certificate.
    let (text, seen) = tls_get(&alice, addr).await.unwrap();
    assert!(text.contains("hello cert=true"), "{text}");
    assert_eq!(seen, der(&new_server.cert_pem));
    assert_ne!(seen, old);
    // Bob is refused at the handshake, for the right reason.
    assert!(tls_get(&bob, addr).await.is_err());
    assert!(
        failures
            .lock()
            .unwrap()
            .contains(&HandshakeFailure::Certificate(CertificateProblem::Revoked)),
        "{failures:?}"
    );
    // A client without a certificate is still let in (token clients).
    let (text, _) = tls_get(&pki.client(None), addr).await.unwrap();
    assert!(text.contains("hello cert=false"), "{text}");

    let _ = stop.send(());
    task.await.unwrap();
}

#[test]
fn a_bad_file_keeps_the_configuration_in_force() {
    let pki = Pki::new();
    let tls = ServerTls::load(&pki.listener_config()).unwrap();
    let before = tls.config();
    let summary = tls.summary();
    for (file, junk) in [
        ("server.key", "not a key"),
        (
            "crl.pem",
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        ),
    ] {
        let saved = std::fs::read(pki.path(file)).unwrap();
        std::fs::write(pki.path(file), junk).unwrap();
        assert!(tls.reload().is_err(), "{file}");
        assert!(Arc::ptr_eq(&before, &tls.config()), "{file}");
        assert_eq!(tls.summary(), summary);
        std::fs::write(pki.path(file), saved).unwrap();
    }
    // A key that does not match the certificate.
    pki.bob
        .write(&pki.path("other.pem"), &pki.path("server.key"))
        .unwrap();
    assert!(tls.reload().is_err());
    assert!(Arc::ptr_eq(&before, &tls.config()));
}

#[tokio::test]
async fn a_source_past_its_share_is_closed_at_accept_and_silent_sockets_at_the_first_byte_deadline()
{
    let pki = Pki::new();
    let tls = Arc::new(ServerTls::load(&pki.listener_config()).unwrap());
    let (listener, _failures, metrics) = tls_listener(
        tls,
        ListenerLimits {
            max_connections_per_source: 2,
            first_byte_timeout: Duration::from_millis(300),
            handshake_timeout: Duration::from_secs(30),
            ..limits()
        },
    )
    .await;
    let (addr, stop, task) = spawn(listener);
    let start = std::time::Instant::now();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The third from the same address is closed at once, before any TLS work.
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(2)).await);
    assert_eq!(metrics.source_refused.load(Ordering::Relaxed), 1);
    // The two silent ones give their slots back at the first-byte deadline, long before
    // the 30 s handshake timeout.
    for s in &mut held {
        assert!(closed_within(s, Duration::from_secs(3)).await);
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(metrics.first_byte_timeouts.load(Ordering::Relaxed), 2);
    assert_eq!(metrics.handshake_timeouts.load(Ordering::Relaxed), 0);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_silent_plain_http_client_is_cut_off_at_the_first_byte_deadline() {
    let (listener, metrics) = plain(ListenerLimits {
        first_byte_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let (addr, stop, task) = spawn(listener);
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert_eq!(metrics.first_byte_timeouts.load(Ordering::Relaxed), 1);
    // A client that speaks at once is served as before.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    task.await.unwrap();
}
