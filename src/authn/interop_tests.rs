//! Interop with real clients: the `Authorization` header pywinrm sends for Basic, and
//! pypsrp's certificate login over TLS (OpenSSL on the client side, rustls with the dev CA
//! on ours), each fed into the authentication decision. Loopback only.
//!
//! Needs `python3` with pywinrm and pypsrp installed (CI installs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http::HeaderValue;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::authenticate::Authenticator;
use super::header::{parse_authorization, ClientCredential};
use super::jwt::{JwtAlgorithm, JwtSettings, JwtValidator};
use super::mint::TokenMinter;
use super::principal::AuthMethod;
use super::test_keys::HS_SECRET;
use crate::devcerts::{generate, DevCertOptions};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What the one-shot server saw: the request head and, over TLS, the client's leaf cert.
struct Seen {
    head: String,
    peer_cert: Option<Vec<u8>>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<HeaderValue> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name)
                .then(|| HeaderValue::from_str(v.trim()).unwrap())
        })
    }
}

/// Reads one request head (up to the blank line) and closes, so the client errors out.
fn read_head(stream: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn accept_one(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Runs a Python snippet (which is expected to fail once the server hangs up), then
/// unblocks the server's accept in case Python never connected.
fn run_python(script: &str, addr: SocketAddr, server: JoinHandle<Seen>) -> Seen {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 must be installed for the interop tests");
    let _ = TcpStream::connect(addr);
    let seen = server.join().unwrap();
    assert!(
        !seen.head.is_empty(),
        "the python client sent nothing; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen
}

#[test]
fn pywinrm_basic_with_a_token_as_password() {
    let settings = {
        let mut s = JwtSettings::new(JwtAlgorithm::Hs256, "unused".into());
        s.audience = Some("hopgate".to_owned());
        s
    };
    let token = TokenMinter::new(JwtAlgorithm::Hs256, HS_SECRET)
        .unwrap()
        .with_audience(settings.audience.clone())
        .mint(
            "alice@hopgate.test",
            &["ops".to_owned()],
            Some("web1"),
            Duration::from_secs(60),
        )
        .unwrap();

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut s = accept_one(&listener);
        Seen {
            head: read_head(&mut s),
            peer_cert: None,
        }
    });
    let script = format!(
        "import winrm\n\
         s = winrm.Session('http://127.0.0.1:{port}/wsman', auth=('alice@hopgate.test', '{token}'), transport='basic')\n\
         try:\n    s.run_cmd('ipconfig')\nexcept Exception:\n    pass\n",
        port = addr.port()
    );
    let seen = run_python(&script, addr, server);
    assert!(seen.head.contains("Python WinRM client"), "{}", seen.head);
    let auth = seen.header("authorization").expect("pywinrm sent Basic");
    assert!(matches!(
        parse_authorization(&auth).unwrap(),
        ClientCredential::Basic { .. }
    ));

    let a = Authenticator::new(
        Some(JwtValidator::from_key_material(&settings, HS_SECRET).unwrap()),
        false,
    );
    let p = a.authenticate(None, Some(&auth), LOOPBACK).unwrap();
    assert_eq!(p.name, "alice@hopgate.test");
    assert_eq!(p.method, AuthMethod::BasicToken);
    assert_eq!(p.groups, vec!["ops".to_owned()]);
    assert_eq!(p.target.as_deref(), Some("web1"));
}

#[test]
fn pypsrp_certificate_login_over_tls_with_dev_certs() {
    let dir = tempfile::tempdir().unwrap();
    let certs = generate(dir.path(), DevCertOptions::default()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&certs.ca_cert).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_file(&certs.server_cert).unwrap()],
            PrivateKeyDer::from_pem_file(&certs.server_key).unwrap(),
        )
        .unwrap();

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let tcp = accept_one(&listener);
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let head = read_head(&mut tls);
        let peer_cert = tls
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        Seen { head, peer_cert }
    });
    let script = format!(
        "from pypsrp.client import Client\n\
         c = Client('127.0.0.1', port={port}, ssl=True, auth='certificate', \
         certificate_pem='{cert}', certificate_key_pem='{key}', cert_validation='{ca}')\n\
         try:\n    c.execute_cmd('whoami')\nexcept Exception:\n    pass\n",
        port = addr.port(),
        cert = certs.client_cert.display(),
        key = certs.client_key.display(),
        ca = certs.ca_cert.display(),
    );
    let seen = run_python(&script, addr, server);
    assert!(seen.head.contains("Python PSRP Client"), "{}", seen.head);
    let der = seen
        .peer_cert
        .clone()
        .expect("OpenSSL presented the dev client certificate");
    let auth = seen
        .header("authorization")
        .expect("pypsrp sends the secprofile header");
    assert_eq!(
        parse_authorization(&auth).unwrap(),
        ClientCredential::CertProfile
    );

    let p = Authenticator::new(None, true)
        .authenticate(Some(&der), Some(&auth), LOOPBACK)
        .unwrap();
    assert_eq!(p.name, "alice@hopgate.test");
    assert_eq!(p.method, AuthMethod::ClientCertificate);
}
