//! The in-memory TLS client connection CredSSP runs inside: records in and out as byte
//! buffers (the HTTP layer carries them), never a socket. Certificates are not verified (the
//! module doc of [`super`] says why); handshake signatures are.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::CredSspError;
// Any tunnel certificate is accepted (see the module doc of `super`: `pubKeyAuth` binds
// its key), with handshake signatures checked.
use crate::backend::target::AcceptAnyCert;

/// The in-memory TLS client connection CredSSP runs inside.
pub(super) struct Tunnel {
    conn: ClientConnection,
}

// === impl Tunnel ===

impl Tunnel {
    pub(super) fn new() -> Result<Self, CredSspError> {
        let mut config = crate::tls::client_builder()
            .map_err(|e| CredSspError::Tls {
                source: rustls::Error::General(e.to_string()),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
                provider: crate::tls::provider(),
            }))
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

    pub(super) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Feeds TLS records from the host; returns the application data they carried.
    pub(super) fn feed(&mut self, mut input: &[u8]) -> Result<Vec<u8>, CredSspError> {
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
    pub(super) fn take_outgoing(&mut self) -> Result<Vec<u8>, CredSspError> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out)? == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Encrypts `plaintext` into TLS application-data records (one per 16 KiB).
    pub(super) fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CredSspError> {
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
    pub(super) fn trailer_len(&self) -> usize {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => 17,
            _ => 16,
        }
    }

    /// The tunnel certificate's SubjectPublicKey (the BIT STRING contents: for RSA the
    /// PKCS#1 `RSAPublicKey`), what MS-CSSP binds `pubKeyAuth` to.
    pub(super) fn server_public_key(&self) -> Result<Vec<u8>, CredSspError> {
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
