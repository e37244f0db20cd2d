//! CredSSP client for backend connections (MS-CSSP carried in WinRM's
//! `Authorization: CredSSP <base64>` header), through `sspi` 0.23.1's `CredSspClient`.
//!
//! Owns: the TLS tunnel CredSSP runs inside (an in-memory rustls client connection: its
//! records travel base64-encoded in the HTTP headers of the handshake and, afterwards, in
//! encrypted bodies, never directly on a socket), the TSRequest exchange (NTLM inside;
//! `pubKeyAuth` bound to the tunnel's public key; then the TSCredentials that hand the
//! vaulted password to the host so its own onward hops work), and sealing/unsealing of WinRM
//! bodies with the tunnel (`HTTP-CredSSP-session-encrypted`, PROTOCOL.md §7: the `u32` is the
//! TLS trailer length, then the TLS record; at most 16 KiB of SOAP per record, several parts
//! as `multipart/x-multi-encrypted`). It does no socket I/O, no HTTP, and never logs the
//! password, the TSRequests or decrypted bodies.
//!
//! Trust model: the tunnel's certificate is **not** verified against any CA or name. The
//! WinRM CredSSP listener presents a self-signed certificate of its own (pyspnego's acceptor
//! generates one the same way), and the reference clients (pywinrm through requests-credssp,
//! pypsrp, pyspnego) do not verify it either: MS-CSSP 3.1.5 step 1 leaves it unchecked. The
//! protection is `pubKeyAuth`: the inner NTLM authentication, whose session key only the
//! host (through its domain controller) and the password holder can derive, encrypts a hash
//! of the tunnel's public key (CredSSP ≥ 5: SHA-256 over a magic string, a client nonce and
//! the key). A man in the middle that terminates the tunnel with its own key can neither
//! compute the value the host expects nor read the credentials, and the client refuses to
//! send the credentials until the host has returned the matching server-to-client value. The
//! tunnel's TLS handshake signature is still checked, so the key really belongs to the peer.
//! Over https the outer connection's certificate is verified as configured for the host.
//!
//! NTLM only inside: sspi's `CredSspClient` asks its Kerberos package for `USE_SESSION_KEY`,
//! which makes it open with a user-to-user TGT-REQ (the RDP flavour of CredSSP) instead of
//! an AP-REQ; GSSAPI acceptors such as pyspnego's answer that with nothing (checked against
//! the stand-in and a Heimdal KDC: the KDC was never asked for a ticket). Whether Windows'
//! WinRM CredSSP accepts it could not be checked here, so Kerberos inside is not offered.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use sspi::credssp::{ClientMode, ClientState, CredSspClient, CredSspMode, NStatusCode, TsRequest};
use sspi::generator::GeneratorState;
use sspi::ntlm::NtlmConfig;
use sspi::{AuthIdentity, ErrorKind, Username};

use super::crypto::{CryptoError, EncryptionProtocol, BOUNDARY, SOAP_CONTENT_TYPE};
use super::kdc;

/// Largest SOAP chunk per encrypted part (MS-WSMV 2.2.9.1.3; one TLS record each).
pub const CHUNK_LEN: usize = 16 * 1024;

/// TLS record header: content type, version, u16 length (RFC 8446 5.1).
const RECORD_HEADER_LEN: usize = 5;

/// Largest TLS ciphertext record (RFC 8446 5.2: 2^14 + 256).
const MAX_RECORD_LEN: usize = 16 * 1024 + 256;

/// Why the CredSSP login or a CredSSP-sealed exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum CredSspError {
    /// The user name is neither `user`, `DOMAIN\user` nor `user@domain`.
    #[error("invalid user name format")]
    Username,
    /// Setting up or running the TLS tunnel failed (bad record, handshake refused, ...).
    #[error("credssp tls tunnel failed")]
    Tls {
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// Moving bytes in or out of the in-memory tunnel failed.
    #[error("credssp tls tunnel i/o failed")]
    TunnelIo {
        /// The buffer error rustls reported.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake wants more from the host, but the host sent nothing.
    #[error("credssp tls handshake stalled: the host sent no further handshake data")]
    HandshakeStalled,
    /// The tunnel's certificate has no usable public key to bind the authentication to.
    #[error("credssp tunnel certificate has no usable public key")]
    PublicKey,
    /// The host answered a step of the exchange without a TSRequest.
    #[error("host sent no credssp token at the {stage} stage")]
    NoReply {
        /// Which stage was waiting.
        stage: &'static str,
    },
    /// A TSRequest from the host did not parse.
    #[error("malformed tsrequest from the host")]
    TsRequest {
        /// The decoding error.
        #[source]
        source: std::io::Error,
    },
    /// The host refused the login and said why (an NTSTATUS in the TSRequest's errorCode,
    /// e.g. 0xC000006D logon failure).
    #[error("host refused the credssp login (ntstatus {status:#010x})")]
    Rejected {
        /// The NTSTATUS the host returned.
        status: u32,
    },
    /// The security package failed (NTLM, the pubKeyAuth check, credential encryption).
    #[error("credssp {step} failed")]
    Sspi {
        /// Which step.
        step: &'static str,
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// The package asked for a KDC exchange and it failed.
    #[error("kdc exchange for credssp failed")]
    Kdc {
        /// The transport error.
        #[source]
        source: kdc::KdcError,
    },
    /// A handshake step was attempted after the exchange finished, or sealing before it.
    #[error("credssp {step} called out of order")]
    OutOfOrder {
        /// The operation attempted.
        step: &'static str,
    },
    /// An encrypted body could not be framed or read.
    #[error("credssp encrypted body is malformed")]
    Framing {
        /// The framing error.
        #[source]
        source: CryptoError,
    },
    /// An encrypted part's TLS records carry fewer or more bytes than its `Length=`.
    #[error("credssp part decrypted to {actual} bytes, announced {expected}")]
    LengthMismatch {
        /// `Length=` of the part.
        expected: usize,
        /// Bytes the records held.
        actual: usize,
    },
}

// === impl CredSspError ===

impl CredSspError {
    fn sspi(step: &'static str) -> impl FnOnce(sspi::Error) -> Self {
        move |source| Self::Sspi { step, source }
    }
}

impl From<rustls::Error> for CredSspError {
    fn from(source: rustls::Error) -> Self {
        Self::Tls { source }
    }
}

impl From<std::io::Error> for CredSspError {
    fn from(source: std::io::Error) -> Self {
        Self::TunnelIo { source }
    }
}

/// What one handshake step produced.
#[derive(Debug)]
pub struct Step {
    /// Token to send to the host in `Authorization: CredSSP <base64>`.
    pub token: Vec<u8>,
    /// The token carries the delegated credentials: the host should accept with a 2xx.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing sent yet.
    Start,
    /// TLS handshake records in flight.
    Tls,
    /// TSRequests in flight (NTLM, pubKeyAuth).
    Auth,
    /// Credentials sent; the tunnel seals bodies.
    Established,
}

// === impl Stage ===

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Tls => "tls handshake",
            Self::Auth => "authentication",
            Self::Established => "established",
        }
    }
}

/// A client CredSSP context for one backend connection: handshake first, then sealing. Used
/// in order: TLS sequence numbers advance with every sealed and unsealed record.
pub struct CredSspSession {
    tunnel: Tunnel,
    stage: Stage,
    /// The vaulted identity until the sspi client takes it (secrets zeroize on drop).
    identity: Option<AuthIdentity>,
    spn: String,
    inner: Option<CredSspClient>,
    kdc_timeout: Duration,
}

impl std::fmt::Debug for CredSspSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials or keys.
        f.debug_struct("CredSspSession")
            .field("spn", &self.spn)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

// === impl CredSspSession ===

impl CredSspSession {
    /// Prepares a context for `user` and `password` toward the service principal `spn`
    /// (`HTTP/<host>`). Nothing is sent until [`CredSspSession::step`].
    pub fn new(user: &str, password: &str, spn: &str) -> Result<Self, CredSspError> {
        let username = Username::parse(user).map_err(|_| CredSspError::Username)?;
        Ok(Self {
            tunnel: Tunnel::new()?,
            stage: Stage::Start,
            identity: Some(AuthIdentity {
                username,
                // `sspi::Secret` zeroizes on drop.
                password: String::from(password).into(),
            }),
            spn: spn.to_owned(),
            inner: None,
            kdc_timeout: kdc::DEFAULT_TIMEOUT,
        })
    }

    /// Whether the credentials went out and bodies can be sealed.
    pub fn is_established(&self) -> bool {
        self.stage == Stage::Established
    }

    /// Whether the TSRequest exchange started (a 401 without a token now means the host
    /// refused the login rather than CredSSP itself).
    pub fn is_authenticating(&self) -> bool {
        self.stage == Stage::Auth
    }

    /// Runs one step: `input` is the token from the host's last 401 (`None` on the first
    /// call, or when the host answered without one). Returns the next token to send.
    pub async fn step(&mut self, input: Option<&[u8]>) -> Result<Step, CredSspError> {
        match self.stage {
            Stage::Start => {
                self.stage = Stage::Tls;
                let hello = self.tunnel.take_outgoing()?;
                Ok(Step {
                    token: hello,
                    done: false,
                })
            }
            Stage::Tls => {
                // A TLS 1.3 host may have nothing to say after our Finished; pyspnego's
                // acceptor sends its session tickets there.
                let plain = self.tunnel.feed(input.unwrap_or_default())?;
                let out = self.tunnel.take_outgoing()?;
                if !out.is_empty() {
                    // Handshake records (or our TLS 1.3 Finished) go alone: pyspnego's
                    // acceptor finishes its handshake before it reads application data.
                    return Ok(Step {
                        token: out,
                        done: false,
                    });
                }
                if self.tunnel.is_handshaking() {
                    return Err(CredSspError::HandshakeStalled);
                }
                if !plain.is_empty() {
                    return Err(CredSspError::OutOfOrder {
                        step: "host data before the first tsrequest",
                    });
                }
                self.start_auth().await
            }
            Stage::Auth => {
                let input = input.ok_or(CredSspError::NoReply {
                    stage: self.stage.name(),
                })?;
                let plain = self.tunnel.feed(input)?;
                if plain.is_empty() {
                    return Err(CredSspError::NoReply {
                        stage: self.stage.name(),
                    });
                }
                let request = TsRequest::from_buffer(&plain)
                    .map_err(|source| CredSspError::TsRequest { source })?;
                if let Some(code) = request.error_code {
                    if code != NStatusCode::SUCCESS {
                        return Err(CredSspError::Rejected { status: code.0 });
                    }
                }
                match self.process(request).await? {
                    ClientState::ReplyNeeded(next) => self.send_request(&next, false),
                    ClientState::FinalMessage(last) => {
                        let step = self.send_request(&last, true)?;
                        self.stage = Stage::Established;
                        // The sspi client holds the NTLM keys: nothing needs them now.
                        self.inner = None;
                        Ok(step)
                    }
                }
            }
            Stage::Established => Err(CredSspError::OutOfOrder { step: "handshake" }),
        }
    }

    /// Completes the TLS phase: binds the authentication to the tunnel's public key and
    /// produces the first TSRequest (the NTLM NEGOTIATE message).
    async fn start_auth(&mut self) -> Result<Step, CredSspError> {
        let public_key = self.tunnel.server_public_key()?;
        let identity = self
            .identity
            .take()
            .ok_or(CredSspError::OutOfOrder { step: "start" })?;
        // NTLM inside the tunnel: the host needs no KDC reachable from the gateway, and the
        // delegated TSPasswordCreds are what gives the host its onward hops.
        let client = CredSspClient::new(
            public_key,
            identity.into(),
            CredSspMode::WithCredentials,
            ClientMode::Ntlm(NtlmConfig::new(workstation())),
            self.spn.clone(),
        )
        .map_err(CredSspError::sspi("prepare"))?;
        self.inner = Some(client);
        self.stage = Stage::Auth;
        match self.process(TsRequest::default()).await? {
            ClientState::ReplyNeeded(first) => self.send_request(&first, false),
            ClientState::FinalMessage(_) => Err(CredSspError::OutOfOrder {
                step: "credentials before authentication",
            }),
        }
    }

    /// Runs the sspi client on one TSRequest, serving any KDC request it yields.
    async fn process(&mut self, request: TsRequest) -> Result<ClientState, CredSspError> {
        let timeout = self.kdc_timeout;
        let client = self
            .inner
            .as_mut()
            .ok_or(CredSspError::OutOfOrder { step: "process" })?;
        let mut kdc_failure = None;
        let outcome = {
            let mut generator = client.process(request);
            let mut state = generator.start();
            loop {
                match state {
                    GeneratorState::Suspended(req) => {
                        let reply = match kdc::send(&req, timeout).await {
                            Ok(reply) => Ok(reply),
                            Err(e) => {
                                let err = sspi::Error::new(
                                    ErrorKind::NoAuthenticatingAuthority,
                                    e.to_string(),
                                );
                                kdc_failure = Some(e);
                                Err(err)
                            }
                        };
                        state = generator.resume(reply);
                    }
                    GeneratorState::Completed(result) => break result,
                }
            }
        };
        match (outcome, kdc_failure) {
            (Ok(state), _) => Ok(state),
            (Err(_), Some(source)) => Err(CredSspError::Kdc { source }),
            (Err(source), None) => Err(CredSspError::Sspi {
                step: "authentication",
                source,
            }),
        }
    }

    /// Encodes a TSRequest and encrypts it with the tunnel.
    fn send_request(&mut self, request: &TsRequest, done: bool) -> Result<Step, CredSspError> {
        let mut encoded = zeroize::Zeroizing::new(Vec::new());
        request
            .encode_ts_request(&mut *encoded)
            .map_err(|source| CredSspError::TsRequest { source })?;
        let token = self.tunnel.encrypt(&encoded)?;
        Ok(Step { token, done })
    }

    /// Seals one SOAP body for the wire: returns the body and its HTTP `Content-Type`.
    /// Bodies over [`CHUNK_LEN`] go as several parts (`multipart/x-multi-encrypted`).
    pub fn encode_body(&mut self, plaintext: &[u8]) -> Result<(Vec<u8>, String), CredSspError> {
        if self.stage != Stage::Established {
            return Err(CredSspError::OutOfOrder { step: "seal" });
        }
        let mut chunks: Vec<&[u8]> = plaintext.chunks(CHUNK_LEN).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let media = if chunks.len() > 1 {
            "multipart/x-multi-encrypted"
        } else {
            "multipart/encrypted"
        };
        let protocol = EncryptionProtocol::CredSsp;
        let mut body = Vec::with_capacity(plaintext.len() + chunks.len() * 256);
        for chunk in chunks {
            let record = self.tunnel.encrypt(chunk)?;
            let trailer = self.tunnel.trailer_len().min(record.len());
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\n\tContent-Type: {protocol}\r\n\tOriginalContent: type={SOAP_CONTENT_TYPE};Length={}\r\n--{BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n",
                    chunk.len()
                )
                .as_bytes(),
            );
            // INVARIANT: trailer ≤ 17 bytes, so the cast cannot saturate.
            body.extend_from_slice(&u32::try_from(trailer).unwrap_or(u32::MAX).to_le_bytes());
            body.extend_from_slice(&record);
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let content_type = format!("{media};protocol=\"{protocol}\";boundary=\"{BOUNDARY}\"");
        Ok((body, content_type))
    }

    /// Unseals a response body. Returns `Ok(None)` when `content_type` does not announce an
    /// encrypted body at all (the caller decides whether plaintext is acceptable).
    pub fn decode_body(
        &mut self,
        raw: &[u8],
        content_type: &str,
    ) -> Result<Option<Vec<u8>>, CredSspError> {
        let Some(boundary) = encrypted_boundary(content_type)? else {
            return Ok(None);
        };
        if self.stage != Stage::Established {
            return Err(CredSspError::OutOfOrder { step: "unseal" });
        }
        let parts =
            split_parts(raw, &boundary).map_err(|source| CredSspError::Framing { source })?;
        let mut plain = Vec::new();
        for part in parts {
            let chunk = self.tunnel.feed(part.records)?;
            if chunk.len() != part.original_length {
                return Err(CredSspError::LengthMismatch {
                    expected: part.original_length,
                    actual: chunk.len(),
                });
            }
            plain.extend_from_slice(&chunk);
        }
        Ok(Some(plain))
    }
}

/// The workstation name NTLM sends (informational).
fn workstation() -> String {
    "HOPGATE".to_owned()
}

/// The boundary of a CredSSP-encrypted body, `None` for a non-multipart content type.
fn encrypted_boundary(content_type: &str) -> Result<Option<String>, CredSspError> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.to_ascii_lowercase().starts_with("multipart/") {
        return Ok(None);
    }
    let unsupported = || CredSspError::Framing {
        source: CryptoError::ContentType {
            content_type: content_type.to_owned(),
        },
    };
    if !media.eq_ignore_ascii_case("multipart/encrypted")
        && !media.eq_ignore_ascii_case("multipart/x-multi-encrypted")
    {
        return Err(unsupported());
    }
    let mut protocol = None;
    let mut boundary = None;
    for param in params {
        let Some((name, raw)) = param.split_once('=') else {
            continue;
        };
        let val = raw.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "protocol" => protocol = EncryptionProtocol::from_name(val),
            "boundary" => boundary = Some(val.to_owned()),
            _ => {}
        }
    }
    match (protocol, boundary) {
        (Some(EncryptionProtocol::CredSsp), Some(b)) if !b.is_empty() => Ok(Some(b)),
        _ => Err(unsupported()),
    }
}

/// One part of a CredSSP-encrypted body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedRecords<'a> {
    /// `Length=`: the SOAP bytes the records carry.
    pub original_length: usize,
    /// The part's TLS records (the trailer-length split is only a framing convention: the
    /// records are fed to the tunnel whole).
    pub records: &'a [u8],
}

/// Splits a `multipart/encrypted` or `multipart/x-multi-encrypted` CredSSP body into its
/// parts. The end of each part's binary payload is found from the TLS record lengths, never
/// by searching the ciphertext for the boundary.
pub fn split_parts<'a>(
    body: &'a [u8],
    boundary: &str,
) -> Result<Vec<EncryptedRecords<'a>>, CryptoError> {
    let mut parts = Vec::new();
    let mut pos = 0;
    loop {
        let (last, next) = boundary_line(body, pos, boundary)
            .ok_or(CryptoError::MissingBoundary { offset: pos })?;
        if last {
            if parts.is_empty() {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "no encrypted part",
                });
            }
            let rest = body.get(next..).unwrap_or_default();
            if !rest.iter().all(u8::is_ascii_whitespace) {
                return Err(CryptoError::BadPartHeader {
                    offset: next,
                    reason: "data after the closing boundary",
                });
            }
            return Ok(parts);
        }
        pos = next;
        let (original_length, next) = part_headers(body, pos, boundary)?;
        pos = next;
        let (trailer_len, start) = octet_stream_header(body, pos)?;
        pos = start;
        while let Some(content_type) = body.get(pos) {
            // TLS content types are 20..=24; a boundary line starts with '-'.
            if !(20..=24).contains(content_type) {
                break;
            }
            let header = body
                .get(pos..pos + RECORD_HEADER_LEN)
                .ok_or(CryptoError::Truncated {
                    offset: pos,
                    needed: (pos + RECORD_HEADER_LEN).saturating_sub(body.len()),
                })?;
            let len = match header {
                [_, _, _, hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => 0,
            };
            if len > MAX_RECORD_LEN {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "tls record longer than 2^14 + 256",
                });
            }
            let end = pos + RECORD_HEADER_LEN + len;
            if end > body.len() {
                return Err(CryptoError::Truncated {
                    offset: pos,
                    needed: end - body.len(),
                });
            }
            pos = end;
        }
        let records = body.get(start..pos).unwrap_or_default();
        if records.is_empty() {
            return Err(CryptoError::BadPartHeader {
                offset: start,
                reason: "part holds no tls record",
            });
        }
        if trailer_len > records.len() {
            return Err(CryptoError::HeaderTooLong {
                offset: start.saturating_sub(4),
                len: trailer_len,
            });
        }
        parts.push(EncryptedRecords {
            original_length,
            records,
        });
        // Tolerate a line break between the records and the next boundary.
        if body.get(pos..pos + 2) == Some(b"\r\n".as_slice()) {
            pos += 2;
        }
    }
}

/// Matches `--<boundary>\r\n` (returns false) or `--<boundary>--` (returns true) at `pos`,
/// tolerating blanks after `--`; returns the position after the line.
fn boundary_line(body: &[u8], pos: usize, boundary: &str) -> Option<(bool, usize)> {
    let rest = body.get(pos..)?.strip_prefix(b"--")?;
    let blanks = rest
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let rest = rest.get(blanks..)?.strip_prefix(boundary.as_bytes())?;
    let used = 2 + blanks + boundary.len();
    if rest.starts_with(b"\r\n") {
        Some((false, pos + used + 2))
    } else if rest.starts_with(b"--") {
        Some((true, pos + used + 2))
    } else {
        None
    }
}

/// Reads one CRLF-terminated line at `pos`: (line, position after it).
fn line_at(body: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = body.get(pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((rest.get(..end)?, pos + end + 2))
}

/// The first part's header lines up to the next boundary line: checks the protocol and
/// returns `Length=` and the position after that boundary line.
fn part_headers(
    body: &[u8],
    mut pos: usize,
    boundary: &str,
) -> Result<(usize, usize), CryptoError> {
    let mut protocol_ok = false;
    let mut length = None;
    loop {
        if let Some((false, next)) = boundary_line(body, pos, boundary) {
            let length = length.ok_or(CryptoError::BadPartHeader {
                offset: pos,
                reason: "missing OriginalContent length",
            })?;
            if !protocol_ok {
                return Err(CryptoError::BadPartHeader {
                    offset: pos,
                    reason: "part is not HTTP-CredSSP-session-encrypted",
                });
            }
            return Ok((length, next));
        }
        let (line, next) =
            line_at(body, pos).ok_or(CryptoError::MissingBoundary { offset: pos })?;
        let text = std::str::from_utf8(line).map_err(|_| CryptoError::BadPartHeader {
            offset: pos,
            reason: "header line is not utf-8",
        })?;
        if let Some((name, value)) = text.trim().split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-type" => {
                    protocol_ok =
                        EncryptionProtocol::from_name(value) == Some(EncryptionProtocol::CredSsp);
                }
                "originalcontent" => {
                    let len = value
                        .split(';')
                        .filter_map(|p| p.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .ok_or(CryptoError::BadPartHeader {
                            offset: pos,
                            reason: "OriginalContent has no numeric Length",
                        })?;
                    length = Some(len);
                }
                _ => {}
            }
        }
        pos = next;
    }
}

/// The `application/octet-stream` line and the u32 trailer length after it: returns the
/// trailer length and the position of the first TLS record.
fn octet_stream_header(body: &[u8], pos: usize) -> Result<(usize, usize), CryptoError> {
    let (line, next) = line_at(body, pos).ok_or(CryptoError::BadPartHeader {
        offset: pos,
        reason: "missing octet-stream part header",
    })?;
    let is_octet = std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.trim().split_once(':'))
        .is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("content-type")
                && v.trim().eq_ignore_ascii_case("application/octet-stream")
        });
    if !is_octet {
        return Err(CryptoError::BadPartHeader {
            offset: pos,
            reason: "second part is not application/octet-stream",
        });
    }
    let len_bytes: [u8; 4] = body
        .get(next..next + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(CryptoError::Truncated {
            offset: next,
            needed: (next + 4).saturating_sub(body.len()),
        })?;
    let trailer_len = usize::try_from(u32::from_le_bytes(len_bytes)).unwrap_or(usize::MAX);
    Ok((trailer_len, next + 4))
}

/// The in-memory TLS client connection CredSSP runs inside.
struct Tunnel {
    conn: ClientConnection,
}

// === impl Tunnel ===

impl Tunnel {
    fn new() -> Result<Self, CredSspError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TunnelKeyOnly { provider }))
            .with_no_client_auth();
        // Like the reference clients: no SNI (the name would be the inventory address, which
        // the tunnel certificate never carries) and no session resumption (every CredSSP
        // exchange authenticates afresh).
        config.enable_sni = false;
        config.resumption = rustls::client::Resumption::disabled();
        let name = ServerName::try_from("credssp.invalid").map_err(|_| CredSspError::Tls {
            source: rustls::Error::General("tunnel server name".into()),
        })?;
        let conn = ClientConnection::new(Arc::new(config), name)?;
        Ok(Self { conn })
    }

    fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Feeds TLS records from the host; returns the application data they carried.
    fn feed(&mut self, mut input: &[u8]) -> Result<Vec<u8>, CredSspError> {
        let mut plain = Vec::new();
        while !input.is_empty() {
            let n = self.conn.read_tls(&mut input)?;
            if n == 0 {
                break;
            }
            self.conn.process_new_packets()?;
            // Drain as we go: rustls caps the plaintext it buffers.
            self.drain_plaintext(&mut plain)?;
        }
        Ok(plain)
    }

    fn drain_plaintext(&mut self, out: &mut Vec<u8>) -> Result<(), CredSspError> {
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The TLS records waiting to go to the host.
    fn take_outgoing(&mut self) -> Result<Vec<u8>, CredSspError> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out)? == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Encrypts `plaintext` into TLS application-data records (one per 16 KiB).
    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CredSspError> {
        let mut out = Vec::new();
        let mut rest = plaintext;
        while !rest.is_empty() {
            let n = self.conn.writer().write(rest)?;
            out.extend(self.take_outgoing()?);
            if n == 0 {
                return Err(CredSspError::TunnelIo {
                    source: std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "tls tunnel accepted no plaintext",
                    ),
                });
            }
            rest = rest.get(n..).unwrap_or_default();
        }
        out.extend(self.take_outgoing()?);
        Ok(out)
    }

    /// Bytes after the payload in one record, what Windows' `SecPkgContext_StreamSizes`
    /// `cbTrailer` reports and the encrypted body's `u32` carries: the AEAD tag (16), plus the
    /// inner content type byte in TLS 1.3 (pyspnego `_tls_trailer_length`). rustls offers
    /// AEAD suites only.
    fn trailer_len(&self) -> usize {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => 17,
            _ => 16,
        }
    }

    /// The tunnel certificate's SubjectPublicKey (the BIT STRING contents: for RSA the
    /// PKCS#1 `RSAPublicKey`), what MS-CSSP binds `pubKeyAuth` to.
    fn server_public_key(&self) -> Result<Vec<u8>, CredSspError> {
        let der = self
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or(CredSspError::PublicKey)?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|_| CredSspError::PublicKey)?;
        let key = cert.public_key().subject_public_key.data.to_vec();
        if key.is_empty() {
            return Err(CredSspError::PublicKey);
        }
        Ok(key)
    }
}

/// Accepts any tunnel certificate (see the module doc: `pubKeyAuth` binds the key instead)
/// but still checks the handshake signatures, so the peer holds the key it presented.
#[derive(Debug)]
struct TunnelKeyOnly {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for TunnelKeyOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[path = "credssp_tests.rs"]
mod tests;
