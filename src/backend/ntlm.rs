//! NTLM client context for backend connections (MS-NLMP, through `sspi` 0.23.1).
//!
//! Owns the three-leg handshake (NEGOTIATE → CHALLENGE → AUTHENTICATE) and the sealing
//! context it yields. One [`NtlmClient`] belongs to one TCP connection and must be used in
//! order: NTLM sequence numbers advance with every sealed and unsealed message.
//! [`seal`] and [`unseal`] work on any established `sspi::Ntlm` context, client or server,
//! so the emulated host shares them. This module does no I/O.

use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, CredentialUse,
    DataRepresentation, EncryptionFlags, Ntlm, SecurityBuffer, SecurityBufferRef, SecurityStatus,
    Sspi, SspiImpl, Username,
};

use super::crypto::{CryptoError, Sealed};

/// NTLM signature size (MS-NLMP 2.2.2.9.1).
pub const SIGNATURE_LEN: usize = 16;

/// Errors of the NTLM handshake.
#[derive(Debug, thiserror::Error)]
pub enum NtlmError {
    /// The user name is neither `user`, `DOMAIN\user` nor `user@domain`.
    #[error("invalid user name format")]
    Username,
    /// The security package failed at this handshake step.
    #[error("ntlm {step} failed")]
    Sspi {
        /// Handshake step (`negotiate`, `authenticate`).
        step: &'static str,
        /// The package error.
        #[source]
        source: sspi::Error,
    },
    /// A handshake method was called out of order.
    #[error("ntlm handshake step {step} called out of order")]
    OutOfOrder {
        /// The step attempted.
        step: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Initial,
    NegotiateSent,
    Established,
}

/// A client NTLM context: handshake first, then sealing for the life of one connection.
pub struct NtlmClient {
    ctx: Ntlm,
    creds: Option<AuthIdentityBuffers>,
    target_name: String,
    stage: Stage,
}

impl std::fmt::Debug for NtlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials or keys.
        f.debug_struct("NtlmClient")
            .field("target_name", &self.target_name)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

// === impl NtlmClient ===

impl NtlmClient {
    /// Prepares a context for `user` (`user`, `DOMAIN\user` or `user@domain`) and `password`,
    /// talking to the service `HTTP/<host>`.
    pub fn new(user: &str, password: &str, host: &str) -> Result<Self, NtlmError> {
        let username = Username::parse(user).map_err(|_| NtlmError::Username)?;
        let identity = AuthIdentity {
            username,
            // `sspi::Secret` zeroizes on drop.
            password: String::from(password).into(),
        };
        let mut ctx = Ntlm::new();
        let acquired = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ctx)
            .map_err(|source| NtlmError::Sspi {
                step: "acquire credentials",
                source,
            })?;
        Ok(Self {
            ctx,
            creds: acquired.credentials_handle,
            target_name: format!("HTTP/{host}"),
            stage: Stage::Initial,
        })
    }

    /// Produces the NEGOTIATE message (first leg).
    pub fn negotiate(&mut self) -> Result<Vec<u8>, NtlmError> {
        if self.stage != Stage::Initial {
            return Err(NtlmError::OutOfOrder { step: "negotiate" });
        }
        let token = self.step(None, "negotiate")?;
        self.stage = Stage::NegotiateSent;
        Ok(token)
    }

    /// Consumes the host's CHALLENGE and produces the AUTHENTICATE message; the context is
    /// ready to seal afterwards.
    pub fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, NtlmError> {
        if self.stage != Stage::NegotiateSent {
            return Err(NtlmError::OutOfOrder {
                step: "authenticate",
            });
        }
        let token = self.step(Some(challenge), "authenticate")?;
        self.stage = Stage::Established;
        Ok(token)
    }

    /// Binds the handshake to the TLS channel (RFC 5929 `tls-server-end-point`, what
    /// Windows checks under Extended Protection). Call before [`NtlmClient::authenticate`].
    pub fn set_tls_server_end_point(&mut self, server_cert_der: &[u8]) {
        self.ctx
            .set_channel_bindings(&tls_server_end_point(server_cert_der));
    }

    /// Whether the handshake finished.
    pub fn is_established(&self) -> bool {
        self.stage == Stage::Established
    }

    /// Seals an outgoing message (advances our sequence number).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        seal(&mut self.ctx, plaintext)
    }

    /// Unseals an incoming message (checks signature and the peer's sequence number).
    pub fn unseal(&mut self, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        unseal(&mut self.ctx, header, data)
    }

    fn step(&mut self, input: Option<&[u8]>, step: &'static str) -> Result<Vec<u8>, NtlmError> {
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input_buf = input.map(|t| vec![SecurityBuffer::new(t.to_vec(), BufferType::Token)]);
        let flags = ClientRequestFlags::CONFIDENTIALITY
            | ClientRequestFlags::INTEGRITY
            | ClientRequestFlags::ALLOCATE_MEMORY;
        let mut builder = self
            .ctx
            .initialize_security_context()
            .with_credentials_handle(&mut self.creds)
            .with_context_requirements(flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target_name)
            .with_output(&mut output);
        if let Some(buf) = input_buf.as_mut() {
            builder = builder.with_input(buf);
        }
        let result = self
            .ctx
            .initialize_security_context_impl(&mut builder)
            .and_then(|mut g| g.resolve_to_result())
            .map_err(|source| NtlmError::Sspi { step, source })?;
        if matches!(
            result.status,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
        ) {
            self.ctx
                .complete_auth_token(&mut output)
                .map_err(|source| NtlmError::Sspi { step, source })?;
        }
        Ok(output
            .into_iter()
            .next()
            .map(|b| b.buffer)
            .unwrap_or_default())
    }
}

/// The channel-binding application data for a server certificate: the prefix
/// `tls-server-end-point:` and the certificate's hash, using the certificate's signature
/// hash, with MD5/SHA-1 (and anything unknown) upgraded to SHA-256 (RFC 5929 4.1).
pub fn tls_server_end_point(server_cert_der: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let oid = x509_parser::parse_x509_certificate(server_cert_der)
        .ok()
        .map(|(_, cert)| cert.signature_algorithm.algorithm.to_id_string());
    let hash: Vec<u8> = match oid.as_deref() {
        // ecdsa-with-SHA384, sha384WithRSAEncryption
        Some("1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12") => {
            sha2::Sha384::digest(server_cert_der).to_vec()
        }
        // ecdsa-with-SHA512, sha512WithRSAEncryption
        Some("1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13") => {
            sha2::Sha512::digest(server_cert_der).to_vec()
        }
        _ => sha2::Sha256::digest(server_cert_der).to_vec(),
    };
    let mut out = b"tls-server-end-point:".to_vec();
    out.extend_from_slice(&hash);
    out
}

/// Seals `plaintext` with an established NTLM context: returns the 16-byte signature and
/// the RC4-sealed bytes (same length as the plaintext, no padding).
pub fn seal(ctx: &mut Ntlm, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let mut header = vec![0u8; SIGNATURE_LEN];
    let mut data = plaintext.to_vec();
    {
        let mut buffers = [
            SecurityBufferRef::token_buf(header.as_mut_slice()),
            SecurityBufferRef::data_buf(data.as_mut_slice()),
        ];
        ctx.encrypt_message(EncryptionFlags::empty(), &mut buffers)
            .map_err(|source| CryptoError::Seal { source })?;
    }
    Ok(Sealed {
        header,
        data,
        padding: 0,
    })
}

/// Unseals with an established NTLM context; fails on a bad signature or an out-of-order
/// sequence number.
pub fn unseal(ctx: &mut Ntlm, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    // sspi splits token+data at 16 bytes; a different header size would misalign silently.
    if header.len() != SIGNATURE_LEN {
        return Err(CryptoError::SignatureLength {
            len: header.len(),
            expected: SIGNATURE_LEN,
        });
    }
    let mut header = header.to_vec();
    let mut data = data.to_vec();
    let mut buffers = [
        SecurityBufferRef::token_buf(header.as_mut_slice()),
        SecurityBufferRef::data_buf(data.as_mut_slice()),
    ];
    ctx.decrypt_message(&mut buffers)
        .map_err(|source| CryptoError::Unseal { source })?;
    let [_, plain] = buffers;
    Ok(plain.data().to_vec())
}
