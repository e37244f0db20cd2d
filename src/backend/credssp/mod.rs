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
//! * `tunnel`: the in-memory rustls client connection and its (deliberately lax) verifier.
//! * `framing`: reading CredSSP-encrypted bodies (pure).
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
//! Versions: sspi sends TSRequest version 6 (the CVE-2018-0886 fix: `pubKeyAuth` is the
//! SHA-256 form with a client nonce); pyspnego 0.12.4's acceptor answers with min(client, 6)
//! and takes TLS 1.2 or 1.3 in the tunnel (OpenSSL, minimum 1.2). The tunnel offers both;
//! rustls has only AEAD suites, so the encrypted body's trailer length is 17 bytes with TLS
//! 1.3 and 16 with TLS 1.2 (pyspnego `_tls_trailer_length`, Windows `cbTrailer`).
//!
//! NTLM only inside: sspi's `CredSspClient` asks its Kerberos package for `USE_SESSION_KEY`,
//! which makes it open with a user-to-user TGT-REQ (the RDP flavour of CredSSP) instead of
//! an AP-REQ; GSSAPI acceptors such as pyspnego's answer that with nothing (checked against
//! the stand-in and a Heimdal KDC: the KDC was never asked for a ticket). Whether Windows'
//! WinRM CredSSP accepts it could not be checked here, so Kerberos inside is not offered.

use std::time::Duration;

use sspi::credssp::{ClientMode, ClientState, CredSspClient, CredSspMode, NStatusCode, TsRequest};
use sspi::generator::GeneratorState;
use sspi::ntlm::NtlmConfig;
use sspi::{AuthIdentity, ErrorKind, Username};

use super::crypto::{CryptoError, EncryptionProtocol, BOUNDARY, SOAP_CONTENT_TYPE};
use super::kdc;

mod framing;
mod tunnel;

pub use framing::{encrypted_boundary, split_parts, EncryptedRecords};
use tunnel::Tunnel;

/// Largest SOAP chunk per encrypted part (MS-WSMV 2.2.9.1.3; one TLS record each).
pub const CHUNK_LEN: usize = 16 * 1024;

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
        let Some(boundary) =
            encrypted_boundary(content_type).map_err(|source| CredSspError::Framing { source })?
        else {
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

#[cfg(test)]
mod tests;
