//! Per-message protection of WinRM bodies with an established sspi context (RFC 4121 wrap
//! tokens), for both legs: the backend client toward the host and the Kerberos acceptor at
//! the gateway. The framing around the sealed bytes lives in [`super::crypto`].

use sspi::{EncryptionFlags, SecurityBufferRef, Sspi};

use super::crypto::{CryptoError, Sealed};

/// Seals an outgoing WinRM body: the header is the wrap token's first `security_trailer`
/// bytes, the data the rest (what pyspnego's `unwrap_winrm` and Windows expect).
pub fn seal<S: Sspi>(ctx: &mut S, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
    let trailer = ctx
        .query_context_sizes()
        .map_err(|source| CryptoError::Seal { source })?
        .security_trailer;
    let trailer = usize::try_from(trailer).unwrap_or(usize::MAX);
    let mut header = vec![0u8; trailer];
    let mut data = plaintext.to_vec();
    {
        let mut buffers = [
            SecurityBufferRef::token_buf(header.as_mut_slice()),
            SecurityBufferRef::data_buf(data.as_mut_slice()),
        ];
        ctx.encrypt_message(EncryptionFlags::empty(), &mut buffers)
            .map_err(|source| CryptoError::Seal { source })?;
    }
    // AES wrap tokens carry no padding in the data part (EC filler lives in the header).
    Ok(Sealed {
        header,
        data,
        padding: 0,
    })
}

/// Unseals an incoming WinRM body (checks integrity and the sequence number).
pub fn unseal<S: Sspi>(ctx: &mut S, header: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
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
