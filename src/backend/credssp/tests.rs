//! The CredSSP client against an in-process peer built from independent parts: a rustls
//! server connection (the tunnel) and sspi's `CredSspServer` (TSRequests, NTLM acceptor,
//! pubKeyAuth check, TSCredentials), for TLS 1.2 and 1.3; the body framing; the HTTP header
//! helpers. The e2e tests (tests/e2e/credssp.rs) do the same against pyspnego.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: panics are the failure report"
)]

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};
use sspi::credssp::{CredSspServer, CredentialsProxy, ServerMode, ServerState};

use super::framing::RECORD_HEADER_LEN;
use super::*;
use crate::backend::conn::{auth_header, reply_token, CREDSSP};

const USER: &str = "HOST\\svc-gw";
const PASSWORD: &str = "Right-Passw0rd";

/// The server's accounts: one identity, whatever name is asked for.
#[derive(Debug)]
struct Accounts(AuthIdentity);

impl CredentialsProxy for Accounts {
    type AuthenticationData = AuthIdentity;

    fn auth_data_by_user(&mut self, _username: &Username) -> std::io::Result<AuthIdentity> {
        Ok(self.0.clone())
    }

    fn auth_data(&mut self) -> std::io::Result<Vec<AuthIdentity>> {
        Ok(vec![self.0.clone()])
    }
}

/// A CredSSP host: rustls tunnel + sspi server, answering one HTTP leg at a time.
struct TestHost {
    tls: ServerConnection,
    server: CredSspServer<Accounts>,
    delegated: Option<AuthIdentity>,
    /// Application-data records seen after the credentials (sealed bodies).
    legs: usize,
}

/// The SubjectPublicKey of a certificate, as the host computes pubKeyAuth over it.
fn public_key_of(cert_der: &[u8]) -> Vec<u8> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    parsed.public_key().subject_public_key.data.to_vec()
}

impl TestHost {
    fn new(version: &'static SupportedProtocolVersion) -> Self {
        Self::with_bound_key(version, None)
    }

    /// A host whose CredSSP layer checks pubKeyAuth against `bound_key` instead of its own
    /// tunnel's key: what the real host sees when a man in the middle terminated the tunnel
    /// with its own key and relays the inner messages.
    fn with_bound_key(
        version: &'static SupportedProtocolVersion,
        bound_key: Option<Vec<u8>>,
    ) -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["credssp-test".to_string()]).unwrap();
        let cert_der = key.cert.der().clone();
        let public_key = bound_key.unwrap_or_else(|| public_key_of(&cert_der));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert_der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
            )
            .unwrap();
        let identity = AuthIdentity {
            username: Username::parse(USER).unwrap(),
            password: String::from(PASSWORD).into(),
        };
        let server = CredSspServer::new(
            public_key,
            Accounts(identity),
            ServerMode::Ntlm(NtlmConfig::default()),
        )
        .unwrap();
        Self {
            tls: ServerConnection::new(Arc::new(config)).unwrap(),
            server,
            delegated: None,
            legs: 0,
        }
    }

    fn outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).unwrap();
        }
        out
    }

    fn feed(&mut self, mut input: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        while !input.is_empty() {
            self.tls.read_tls(&mut input).unwrap();
            self.tls.process_new_packets().unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match self.tls.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        plain
    }

    fn seal(&mut self, data: &[u8]) -> Vec<u8> {
        self.tls.writer().write_all(data).unwrap();
        self.outgoing()
    }

    /// Answers one `Authorization: CredSSP` token; the reply token may be empty.
    fn leg(&mut self, token: &[u8]) -> Vec<u8> {
        self.legs += 1;
        let plain = self.feed(token);
        if plain.is_empty() {
            // Handshake records (and TLS 1.3 session tickets).
            return self.outgoing();
        }
        let request = TsRequest::from_buffer(&plain).unwrap();
        let result = self.server.process(request).resolve_to_result();
        let reply = match result {
            Ok(ServerState::ReplyNeeded(reply)) => reply,
            Ok(ServerState::Finished(identity)) => {
                self.delegated = Some(identity);
                return self.outgoing();
            }
            Err(error) => *error.ts_request.expect("an error tsrequest"),
        };
        let mut encoded = Vec::new();
        reply.encode_ts_request(&mut encoded).unwrap();
        self.seal(&encoded)
    }
}

/// Runs the whole exchange like `Conn::credssp_handshake` does (an empty reply is a 401
/// without a token).
async fn login(host: &mut TestHost, password: &str) -> Result<CredSspSession, CredSspError> {
    let mut client = CredSspSession::new(USER, password, "HTTP/credssp-test")?;
    let mut input: Option<Vec<u8>> = None;
    for _ in 0..10 {
        let step = client.step(input.as_deref()).await?;
        assert!(!step.token.is_empty(), "every leg carries a token");
        let reply = host.leg(&step.token);
        if step.done {
            assert!(client.is_established());
            return Ok(client);
        }
        input = (!reply.is_empty()).then_some(reply);
    }
    panic!("handshake did not finish");
}

#[tokio::test]
async fn logs_in_and_delegates_the_password_over_tls_1_2_and_1_3() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut host = TestHost::new(version);
        let client = login(&mut host, PASSWORD).await.unwrap();
        let delegated = host.delegated.as_ref().expect("credentials delegated");
        match delegated.username.parts() {
            sspi::UsernameParts::DownLevelLogonName(parts) => {
                assert_eq!(parts.account_name(), "svc-gw");
                assert_eq!(parts.netbios_domain(), Some("HOST"));
            }
            other => panic!("delegated {other:?}"),
        }
        assert_eq!(delegated.password.as_ref(), PASSWORD);
        assert_eq!(
            host.tls.protocol_version(),
            Some(version.version),
            "negotiated the version the host offers"
        );
        // TLS (ClientHello, then the client's flight), NTLM negotiate, authenticate with
        // pubKeyAuth, credentials.
        assert!(host.legs >= 5, "{} legs", host.legs);
        assert_eq!(
            client.tunnel.trailer_len(),
            if version.version == rustls::ProtocolVersion::TLSv1_3 {
                17
            } else {
                16
            }
        );
    }
}

#[tokio::test]
async fn wrong_password_is_the_hosts_ntstatus_and_no_credentials_leave() {
    let mut host = TestHost::new(&rustls::version::TLS13);
    let err = login(&mut host, "Wrong-Passw0rd").await.unwrap_err();
    match err {
        CredSspError::Rejected { status } => {
            assert_eq!(
                status & 0xC000_0000,
                0xC000_0000,
                "an NTSTATUS error: {status:#x}"
            )
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(host.delegated.is_none());
}

#[tokio::test]
async fn a_tunnel_terminated_with_another_key_never_gets_the_credentials() {
    let other = rcgen::generate_simple_self_signed(vec!["real-host".to_string()]).unwrap();
    let mut host = TestHost::with_bound_key(
        &rustls::version::TLS13,
        Some(public_key_of(other.cert.der())),
    );
    let err = login(&mut host, PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, CredSspError::Rejected { .. }),
        "the host refuses the binding: {err:?}"
    );
    assert!(host.delegated.is_none(), "no credentials left the client");
}

#[tokio::test]
async fn a_host_that_stops_answering_the_tls_handshake_is_reported() {
    let mut client = CredSspSession::new(USER, PASSWORD, "HTTP/h").unwrap();
    let hello = client.step(None).await.unwrap();
    assert_eq!(hello.token.first(), Some(&22), "a TLS handshake record");
    let err = client.step(None).await.unwrap_err();
    assert!(matches!(err, CredSspError::HandshakeStalled), "{err:?}");
}

#[tokio::test]
async fn garbage_from_the_host_is_a_tls_error() {
    let mut client = CredSspSession::new(USER, PASSWORD, "HTTP/h").unwrap();
    client.step(None).await.unwrap();
    let err = client
        .step(Some(b"HTTP/1.1 401 Unauthorized\r\n"))
        .await
        .unwrap_err();
    assert!(matches!(err, CredSspError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn sealing_before_login_is_refused() {
    let mut client = CredSspSession::new(USER, PASSWORD, "HTTP/h").unwrap();
    assert!(matches!(
        client.encode_body(b"<s:Envelope/>"),
        Err(CredSspError::OutOfOrder { .. })
    ));
}

#[test]
fn invalid_user_name_is_refused_before_any_traffic() {
    assert!(matches!(
        CredSspSession::new("a\\b\\c@d", PASSWORD, "HTTP/h"),
        Err(CredSspError::Username)
    ));
}

/// Reads a CredSSP-encrypted body the way pyspnego's `unwrap_winrm` does: the u32 is only
/// the trailer length; header + data are one TLS record fed to the tunnel whole.
fn host_unseal(host: &mut TestHost, body: &[u8], content_type: &str) -> Vec<u8> {
    let boundary = encrypted_boundary(content_type).unwrap().unwrap();
    let mut out = Vec::new();
    for part in split_parts(body, &boundary).unwrap() {
        let plain = host.feed(part.records);
        assert_eq!(plain.len(), part.original_length);
        out.extend(plain);
    }
    out
}

/// What the stand-in's `wrap_body` produces: one part per 16 KiB, u32 = trailer length.
fn host_seal(host: &mut TestHost, plaintext: &[u8], trailer: usize) -> (Vec<u8>, String) {
    let chunks: Vec<&[u8]> = plaintext.chunks(CHUNK_LEN).collect();
    let kind = if chunks.len() > 1 {
        "multipart/x-multi-encrypted"
    } else {
        "multipart/encrypted"
    };
    let mut body = Vec::new();
    for chunk in chunks {
        let record = host.seal(chunk);
        body.extend_from_slice(
            format!(
                "--Encrypted Boundary\r\n\tContent-Type: application/HTTP-CredSSP-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={}\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n",
                chunk.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(&u32::try_from(trailer).unwrap().to_le_bytes());
        body.extend_from_slice(&record);
    }
    body.extend_from_slice(b"--Encrypted Boundary--\r\n");
    (
        body,
        format!(
            "{kind};protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\""
        ),
    )
}

#[tokio::test]
async fn bodies_round_trip_in_one_part_and_in_16_kib_parts() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut host = TestHost::new(version);
        let mut client = login(&mut host, PASSWORD).await.unwrap();
        let small = b"<s:Envelope>small</s:Envelope>".to_vec();
        let large: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for plaintext in [small, large] {
            let (wire, content_type) = client.encode_body(&plaintext).unwrap();
            let parts = plaintext.len().div_ceil(CHUNK_LEN);
            if parts > 1 {
                assert!(content_type.starts_with("multipart/x-multi-encrypted;"));
            } else {
                assert!(content_type.starts_with("multipart/encrypted;"));
            }
            assert!(
                content_type.contains("protocol=\"application/HTTP-CredSSP-session-encrypted\"")
            );
            let boundary = encrypted_boundary(&content_type).unwrap().unwrap();
            let split = split_parts(&wire, &boundary).unwrap();
            assert_eq!(split.len(), parts);
            for part in &split {
                // One TLS application-data record per part.
                assert_eq!(part.records[0], 23);
                let len = usize::from(u16::from_be_bytes([part.records[3], part.records[4]]));
                assert_eq!(part.records.len(), RECORD_HEADER_LEN + len);
            }
            assert_eq!(host_unseal(&mut host, &wire, &content_type), plaintext);

            let reply: Vec<u8> = plaintext.iter().rev().copied().collect();
            let (wire, content_type) = host_seal(&mut host, &reply, client.tunnel.trailer_len());
            let plain = client.decode_body(&wire, &content_type).unwrap().unwrap();
            assert_eq!(plain, reply);
        }
        // A record replayed out of order breaks the tunnel's sequence numbers.
        let (wire, content_type) = host_seal(&mut host, b"once", 16);
        client.decode_body(&wire, &content_type).unwrap();
        assert!(client.decode_body(&wire, &content_type).is_err());
    }
}

#[tokio::test]
async fn a_part_whose_length_does_not_match_is_refused() {
    let mut host = TestHost::new(&rustls::version::TLS13);
    let mut client = login(&mut host, PASSWORD).await.unwrap();
    let (wire, content_type) = host_seal(&mut host, b"<s:Envelope/>", 17);
    // Change only the header digits; the binary record stays as it is.
    let at = wire.windows(9).position(|w| w == b"Length=13").unwrap();
    let mut tampered = wire.clone();
    tampered[at + 8] = b'2';
    assert!(matches!(
        client.decode_body(&tampered, &content_type),
        Err(CredSspError::LengthMismatch {
            expected: 12,
            actual: 13
        })
    ));
}

#[test]
fn content_types() {
    assert_eq!(encrypted_boundary(SOAP_CONTENT_TYPE).unwrap(), None);
    assert_eq!(
        encrypted_boundary(
            "multipart/encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\""
        )
        .unwrap()
        .as_deref(),
        Some("Encrypted Boundary")
    );
    assert!(encrypted_boundary(
        "Multipart/X-Multi-Encrypted; protocol=\"application/HTTP-CredSSP-session-encrypted\"; boundary=B"
    )
    .unwrap()
    .is_some());
    // The wrong protocol on a CredSSP session is a downgrade or a confused host.
    assert!(encrypted_boundary(
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\""
    )
    .is_err());
    assert!(encrypted_boundary("multipart/mixed;boundary=x").is_err());
    assert!(encrypted_boundary(
        "multipart/encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\""
    )
    .is_err());
}

/// A two-part body with fake (but well-formed) records.
fn sample_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (len, fill) in [(40usize, 0xAAu8), (7, 0xBB)] {
        body.extend_from_slice(
            format!(
                "--Encrypted Boundary\r\n\tContent-Type: application/HTTP-CredSSP-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={}\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n",
                len
            )
            .as_bytes(),
        );
        body.extend_from_slice(&16u32.to_le_bytes());
        let record_len = u16::try_from(len + 16).unwrap();
        body.extend_from_slice(&[23, 3, 3]);
        body.extend_from_slice(&record_len.to_be_bytes());
        // Ciphertext may contain anything, including the boundary text itself.
        let mut payload = vec![fill; len + 16];
        payload[..20].copy_from_slice(b"--Encrypted Boundary");
        body.extend_from_slice(&payload);
    }
    body.extend_from_slice(b"--Encrypted Boundary--\r\n");
    body
}

#[test]
fn split_finds_parts_by_record_length_not_by_searching() {
    let body = sample_body();
    let parts = split_parts(&body, BOUNDARY).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].original_length, 40);
    assert_eq!(parts[0].records.len(), 5 + 56);
    assert_eq!(parts[1].original_length, 7);
    assert_eq!(parts[1].records.len(), 5 + 23);
}

#[test]
fn every_truncation_of_a_body_fails_cleanly() {
    let body = sample_body();
    for cut in 0..body.len() - 2 {
        assert!(split_parts(&body[..cut], BOUNDARY).is_err(), "cut at {cut}");
    }
    assert!(split_parts(&body[..body.len() - 2], BOUNDARY).is_ok());
}

#[test]
fn malformed_bodies_are_refused() {
    let body = sample_body();
    // Trailing garbage after the closing boundary.
    let mut extra = body.clone();
    extra.extend_from_slice(b"junk");
    assert!(split_parts(&extra, BOUNDARY).is_err());
    // The wrong protocol in the part header (`HTTP-Kerbero-session-encrypted`).
    let mut wrong = body.clone();
    let at = wrong.windows(7).position(|w| w == b"CredSSP").unwrap();
    wrong[at..at + 7].copy_from_slice(b"Kerbero");
    assert!(split_parts(&wrong, BOUNDARY).is_err());
    // A trailer length beyond the records.
    let mut long_trailer = body.clone();
    let at = long_trailer
        .windows(26)
        .position(|w| w == b"application/octet-stream\r\n")
        .unwrap()
        + 26;
    long_trailer[at..at + 4].copy_from_slice(&100_000u32.to_le_bytes());
    assert!(split_parts(&long_trailer, BOUNDARY).is_err());
    // A record length over the TLS maximum.
    let mut huge = body.clone();
    huge[at + 7..at + 9].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert!(split_parts(&huge, BOUNDARY).is_err());
    // No part at all.
    assert!(split_parts(b"--Encrypted Boundary--\r\n", BOUNDARY).is_err());
    // Missing OriginalContent length.
    let mut no_len = body.clone();
    let at = no_len.windows(6).position(|w| w == b"Length").unwrap();
    no_len[at..at + 6].copy_from_slice(b"Lenxth");
    assert!(split_parts(&no_len, BOUNDARY).is_err());
}

#[test]
fn authorization_header_is_scheme_and_base64_and_sensitive() {
    let value = auth_header(CREDSSP, &[0x16, 0x03, 0x01, 0xff]);
    assert_eq!(value.to_str().unwrap(), "CredSSP FgMB/w==");
    assert!(value.is_sensitive());
}

#[test]
fn challenge_token_is_found_among_other_schemes() {
    let mut headers = http::HeaderMap::new();
    headers.append(http::header::WWW_AUTHENTICATE, "Negotiate".parse().unwrap());
    headers.append(
        http::header::WWW_AUTHENTICATE,
        "Basic realm=\"WSMAN\"".parse().unwrap(),
    );
    assert_eq!(
        reply_token(&headers, CREDSSP),
        None,
        "a bare offer has no token"
    );
    headers.append(
        http::header::WWW_AUTHENTICATE,
        "credssp FgMB/w==".parse().unwrap(),
    );
    assert_eq!(
        reply_token(&headers, CREDSSP),
        Some(vec![0x16, 0x03, 0x01, 0xff])
    );
    let mut joined = http::HeaderMap::new();
    joined.append(
        http::header::WWW_AUTHENTICATE,
        "Negotiate abcd, CredSSP FgMB/w==".parse().unwrap(),
    );
    assert_eq!(
        reply_token(&joined, CREDSSP),
        Some(vec![0x16, 0x03, 0x01, 0xff])
    );
    let mut bad = http::HeaderMap::new();
    bad.append(
        http::header::WWW_AUTHENTICATE,
        "CredSSP !!!".parse().unwrap(),
    );
    assert_eq!(reply_token(&bad, CREDSSP), None);
}
