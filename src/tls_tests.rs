#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::*;

fn wrapped(e: rustls::Error) -> io::Error {
    // What tokio-rustls hands back from a failed handshake.
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[test]
fn handshake_failures_are_classified_by_the_rustls_error_type() {
    let cert = |c| HandshakeFailure::classify(&wrapped(rustls::Error::InvalidCertificate(c)));
    assert_eq!(
        cert(CertificateError::Revoked),
        HandshakeFailure::Certificate(CertificateProblem::Revoked)
    );
    assert_eq!(
        cert(CertificateError::UnknownIssuer),
        HandshakeFailure::Certificate(CertificateProblem::UnknownIssuer)
    );
    assert_eq!(
        cert(CertificateError::Expired),
        HandshakeFailure::Certificate(CertificateProblem::Expired)
    );
    assert_eq!(
        cert(CertificateError::BadSignature),
        HandshakeFailure::Certificate(CertificateProblem::BadSignature)
    );
    assert_eq!(
        cert(CertificateError::InvalidPurpose),
        HandshakeFailure::Certificate(CertificateProblem::Invalid)
    );
    assert_eq!(
        HandshakeFailure::classify(&wrapped(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))),
        HandshakeFailure::NotTls
    );
    // A message that mentions certificates is still not a certificate failure.
    let plain = io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed: certificate");
    assert_eq!(
        HandshakeFailure::classify(&plain),
        HandshakeFailure::Transport
    );
    assert_eq!(HandshakeFailure::Transport.audit_reason(), None);
    assert_eq!(
        cert(CertificateError::Revoked).audit_reason(),
        Some("certificate revoked")
    );
}

#[test]
fn pem_files_without_what_is_asked_are_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        load_roots(&empty),
        Err(TlsError::NoCertificate { .. })
    ));
    assert!(matches!(
        load_certs(&empty),
        Err(TlsError::NoCertificate { .. })
    ));
    assert!(matches!(load_crls(&empty), Err(TlsError::NoCrl { .. })));
    let missing = dir.path().join("missing.pem");
    let e = load_roots(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.pem"), "{e}");
}

#[test]
fn a_crl_made_by_rcgen_loads() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::new(params, key);
    let crl = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    let path = dir.path().join("crl.pem");
    std::fs::write(&path, crl.pem().unwrap()).unwrap();
    assert_eq!(load_crls(&path).unwrap().len(), 1);
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    assert_eq!(load_roots(&ca_path).unwrap().len(), 1);
}
