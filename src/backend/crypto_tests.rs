#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: panics are the failure report"
)]

use super::*;

/// A real NTLM-sealed WinRM request body captured by ironPosh (hex), see corpus README.
fn real_body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/ironposh/ironposh-client-core--real_encrypted_soap.txt"
    );
    let hex_text = std::fs::read_to_string(path).expect("corpus file");
    hex::decode(hex_text.trim()).expect("hex")
}

#[test]
fn decodes_real_ntlm_body() {
    let body = real_body();
    let part = decode_body(&body, BOUNDARY).unwrap();
    assert_eq!(part.protocol, EncryptionProtocol::Spnego);
    assert_eq!(part.original_type, "application/soap+xml;charset=UTF-8");
    assert_eq!(part.original_length, 2162);
    // MS-NLMP 2.2.2.9.1: version 1, 8-byte checksum, sequence number 0 (first message).
    assert_eq!(part.header.len(), 16);
    assert_eq!(&part.header[..4], &[1, 0, 0, 0]);
    assert_eq!(&part.header[12..], &[0, 0, 0, 0]);
    // RC4 sealing keeps the length.
    assert_eq!(part.data.len(), 2162);
    part.check_length(part.data.len(), 0).unwrap();
}

#[test]
fn every_truncation_of_real_body_fails_cleanly() {
    let body = real_body();
    // The final CRLF after `--Encrypted Boundary--` is optional; any shorter prefix loses
    // (part of) the terminator and must be rejected without panicking.
    assert!(body.ends_with(b"--Encrypted Boundary--\r\n"));
    assert!(decode_body(&body[..body.len() - 2], BOUNDARY).is_ok());
    for cut in 0..body.len() - 2 {
        assert!(decode_body(&body[..cut], BOUNDARY).is_err(), "cut at {cut}");
    }
}

#[test]
fn encodes_exactly_the_pywinrm_layout() {
    let sealed = Sealed {
        header: vec![0xAA; 16],
        data: b"SEALED".to_vec(),
        padding: 0,
    };
    let body = encode_body(EncryptionProtocol::Spnego, 6, &sealed);
    // Byte layout written out from pywinrm encryption.py `_encrypt_message` /
    // `prepare_encrypted_request` and PROTOCOL.md §7.
    let mut expected = Vec::new();
    expected.extend_from_slice(b"--Encrypted Boundary\r\n");
    expected.extend_from_slice(b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n");
    expected.extend_from_slice(
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=6\r\n",
    );
    expected.extend_from_slice(b"--Encrypted Boundary\r\n");
    expected.extend_from_slice(b"\tContent-Type: application/octet-stream\r\n");
    expected.extend_from_slice(&[16, 0, 0, 0]);
    expected.extend_from_slice(&[0xAA; 16]);
    expected.extend_from_slice(b"SEALED");
    expected.extend_from_slice(b"--Encrypted Boundary--\r\n");
    assert_eq!(body, expected);

    let part = decode_body(&body, BOUNDARY).unwrap();
    assert_eq!(part.header, &[0xAA; 16]);
    assert_eq!(part.data, b"SEALED");
    assert_eq!(part.original_length, 6);
}

#[test]
fn sealed_data_may_contain_the_boundary() {
    let data = b"x--Encrypted Boundary\r\n--Encrypted Boundary--\r\ny".to_vec();
    let sealed = Sealed {
        header: vec![1; 16],
        data: data.clone(),
        padding: 0,
    };
    let body = encode_body(EncryptionProtocol::Spnego, data.len(), &sealed);
    let part = decode_body(&body, BOUNDARY).unwrap();
    assert_eq!(part.data, &data[..]);
}

#[test]
fn tolerates_space_after_dashes() {
    // Some Exchange servers write `-- Encrypted Boundary` (pypsrp encryption.py handles it).
    let mut body = Vec::new();
    body.extend_from_slice(b"-- Encrypted Boundary\r\n");
    body.extend_from_slice(b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n");
    body.extend_from_slice(
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=3\r\n",
    );
    body.extend_from_slice(b"-- Encrypted Boundary\r\n");
    body.extend_from_slice(b"\tContent-Type: application/octet-stream\r\n");
    body.extend_from_slice(&[2, 0, 0, 0, 9, 9]);
    body.extend_from_slice(b"abc");
    body.extend_from_slice(b"-- Encrypted Boundary--\r\n");
    let part = decode_body(&body, BOUNDARY).unwrap();
    assert_eq!(part.header, &[9, 9]);
    assert_eq!(part.data, b"abc");
}

#[test]
fn rejects_bad_bodies_with_offsets() {
    let good = encode_body(
        EncryptionProtocol::Spnego,
        3,
        &Sealed {
            header: vec![0; 16],
            data: b"abc".to_vec(),
            padding: 0,
        },
    );
    // No opening boundary.
    assert!(matches!(
        decode_body(b"hello", BOUNDARY),
        Err(CryptoError::MissingBoundary { offset: 0 })
    ));
    // Wrong boundary name.
    assert!(decode_body(&good, "Other Boundary").is_err());
    // Header length field larger than allowed.
    let mut huge = good.clone();
    let at = find(&huge, b"octet-stream\r\n") + 14;
    huge[at..at + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    assert!(matches!(
        decode_body(&huge, BOUNDARY),
        Err(CryptoError::HeaderTooLong { .. })
    ));
    // Header length larger than the remaining data.
    let mut long = good.clone();
    long[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        decode_body(&long, BOUNDARY),
        Err(CryptoError::Truncated { .. })
    ));
    // Missing Length=.
    let text = String::from_utf8_lossy(&good).replace(";Length=3", "");
    assert!(matches!(
        decode_body(text.as_bytes(), BOUNDARY),
        Err(CryptoError::BadPartHeader { .. })
    ));
    // Length mismatch is reported after unsealing.
    let part = decode_body(&good, BOUNDARY).unwrap();
    assert!(matches!(
        part.check_length(4, 0),
        Err(CryptoError::LengthMismatch {
            expected: 3,
            actual: 4
        })
    ));
}

#[test]
fn parses_content_types_from_real_clients() {
    // pywinrm's exact header (encryption.py prepare_encrypted_request).
    let ct = parse_content_type(
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"",
    )
    .unwrap()
    .unwrap();
    assert_eq!(ct.protocol, EncryptionProtocol::Spnego);
    assert_eq!(ct.boundary, "Encrypted Boundary");
    assert_eq!(
        EncryptionProtocol::Spnego.content_type(),
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\""
    );
    let kerb = parse_content_type(
        "multipart/encrypted; protocol=\"application/HTTP-Kerberos-session-encrypted\"; boundary=\"Encrypted Boundary\"",
    )
    .unwrap()
    .unwrap();
    assert_eq!(kerb.protocol, EncryptionProtocol::Kerberos);
    assert_eq!(
        parse_content_type("application/soap+xml;charset=UTF-8").unwrap(),
        None
    );
    assert!(parse_content_type(
        "multipart/x-multi-encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\""
    )
    .is_err());
    assert!(parse_content_type("multipart/encrypted;protocol=\"x\";boundary=\"b\"").is_err());
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

proptest::proptest! {
    /// Arbitrary edits of a real body never panic the parser, and whatever it accepts stays
    /// inside the body.
    #[test]
    fn corrupted_real_bodies_never_panic(
        edits in proptest::collection::vec((0usize..2500, proptest::num::u8::ANY), 0..8),
        cut in 0usize..2500,
    ) {
        let mut body = real_body();
        for (at, byte) in edits {
            if let Some(b) = body.get_mut(at) {
                *b = byte;
            }
        }
        body.truncate(cut.max(1).min(body.len()));
        if let Ok(part) = decode_body(&body, BOUNDARY) {
            proptest::prop_assert!(part.header.len() + part.data.len() <= body.len());
        }
        let _ = parse_content_type(&String::from_utf8_lossy(&body));
    }
}
