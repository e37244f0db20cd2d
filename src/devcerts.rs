//! Development certificates for `hopgate certs` and `hopgate demo`.
//!
//! Owns generating, with rcgen (ring), a throw-away CA, a server certificate for the
//! listener and a client certificate whose SAN otherName UPN maps to a principal the way
//! Windows certificate mapping does (PROTOCOL.md §1; see [`crate::authn::mtls`]). Keys are
//! ECDSA P-256 and written with mode 0600. These files are for development only: the keys
//! sit unencrypted on disk and the CA is trusted by nothing else.
//!
//! It must not do network I/O, overwrite existing files unless asked, or be used for
//! production certificates.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// OID of the SAN otherName that carries a Windows UPN (szOID_NT_PRINCIPAL_NAME).
const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// How long the dev CA is valid.
const CA_VALIDITY: Duration = Duration::days(5 * 365);
/// How long leaf certificates are valid (the CA/Browser maximum, 397 days).
const LEAF_VALIDITY: Duration = Duration::days(397);
/// Backdating, for clocks that are a little behind.
const BACKDATE: Duration = Duration::hours(1);

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertOptions {
    /// The client certificate's user, put in the SAN otherName UPN and the subject CN
    /// (e.g. `alice@hopgate.test`).
    pub client_user: String,
    /// DNS names and IP addresses for the server certificate's SAN
    /// (e.g. `localhost`, `127.0.0.1`, `::1`). The first one is also the subject CN.
    pub server_names: Vec<String>,
    /// Replace existing files. Without it, a complete existing set is kept as is.
    pub overwrite: bool,
}

impl Default for DevCertOptions {
    fn default() -> Self {
        Self {
            client_user: "alice@hopgate.test".to_owned(),
            server_names: vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ],
            overwrite: false,
        }
    }
}

/// Where the generated (or kept) files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertPaths {
    /// The CA certificate (PEM): the listener's client CA, and what clients trust.
    pub ca_cert: PathBuf,
    /// The CA private key (PKCS#8 PEM, mode 0600).
    pub ca_key: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub server_cert: PathBuf,
    /// The server private key (PKCS#8 PEM, mode 0600).
    pub server_key: PathBuf,
    /// The client certificate (PEM), signed by the CA, with the UPN.
    pub client_cert: PathBuf,
    /// The client private key (PKCS#8 PEM, mode 0600).
    pub client_key: PathBuf,
    /// `true` if this call wrote the files, `false` if an existing set was kept.
    pub generated: bool,
}

// === impl DevCertPaths ===

impl DevCertPaths {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            generated: false,
        }
    }

    fn all(&self) -> [&Path; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }
}

/// Why dev certificates could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// Some but not all of the six files exist; mixing old and new would break the chain.
    #[error(
        "{dir} holds only some of the dev certificate files (missing: {missing}); \
         remove them or regenerate with overwrite"
    )]
    PartialSet {
        /// The directory.
        dir: PathBuf,
        /// The missing file names, comma-separated.
        missing: String,
    },
    /// The client user is empty or has whitespace or control characters.
    #[error("client user {0:?} is not usable as a upn")]
    InvalidUser(String),
    /// No server names, or one that is neither an IP address nor a valid DNS name.
    #[error("invalid server name {name:?}: {why}")]
    InvalidServerName {
        /// The name as given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// rcgen failed to build or sign a certificate.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// Which certificate or key.
        what: &'static str,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// Writing a file failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Generates the dev CA, server and client certificates and keys in `dir` (created if
/// needed). If all six files exist and `overwrite` is false they are kept and returned
/// with `generated: false`; if only some exist, that is [`DevCertError::PartialSet`].
pub fn generate(dir: &Path, opts: DevCertOptions) -> Result<DevCertPaths, DevCertError> {
    let mut paths = DevCertPaths::in_dir(dir);
    check_user(&opts.client_user)?;
    server_sans(&opts.server_names)?;

    if !opts.overwrite {
        let missing: Vec<String> = paths
            .all()
            .iter()
            .filter(|p| !p.exists())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if missing.is_empty() {
            return Ok(paths);
        }
        if missing.len() < paths.all().len() {
            return Err(DevCertError::PartialSet {
                dir: dir.to_owned(),
                missing: missing.join(", "),
            });
        }
    }

    std::fs::create_dir_all(dir).map_err(|source| DevCertError::Io {
        op: "create directory",
        path: dir.to_owned(),
        source,
    })?;

    let ca = DevCa::new()?;
    let server = ca.server(&opts.server_names)?;
    let client = ca.client(&opts.client_user)?;

    // Keys before certificates: a crash in between leaves a partial set, reported next run.
    write_file(&paths.ca_key, ca.key_pem().as_bytes(), true)?;
    write_file(&paths.server_key, server.key_pem.as_bytes(), true)?;
    write_file(&paths.client_key, client.key_pem.as_bytes(), true)?;
    write_file(&paths.ca_cert, ca.cert_pem().as_bytes(), false)?;
    write_file(&paths.server_cert, server.cert_pem.as_bytes(), false)?;
    write_file(&paths.client_cert, client.cert_pem.as_bytes(), false)?;
    // Persist the directory entries of the renames.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| DevCertError::Io {
            op: "sync directory",
            path: dir.to_owned(),
            source,
        })?;
    paths.generated = true;
    Ok(paths)
}

/// A development CA held in memory: issues server and client certificates and signs
/// revocation lists (`generate` writes one set of its output; tests issue more, e.g. a
/// replacement server certificate or a client certificate to revoke).
#[derive(Debug)]
pub struct DevCa {
    params: CertificateParams,
    key: KeyPair,
    cert: rcgen::Certificate,
}

/// A certificate the [`DevCa`] issued, with its key (PEM) and serial number.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
    serial: rcgen::SerialNumber,
}

// === impl DevCa ===

impl DevCa {
    /// A new CA (P-256) that may sign end-entity certificates only (path length 0).
    pub fn new() -> Result<Self, DevCertError> {
        let now = OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err("ca key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("hopgate development CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&key)
            .map_err(gen_err("ca certificate"))?;
        Ok(Self { params, key, cert })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA private key (PKCS#8 PEM).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Writes the CA certificate (0644) and key (0600) files.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), DevCertError> {
        write_file(key, self.key_pem().as_bytes(), true)?;
        write_file(cert, self.cert_pem().as_bytes(), false)
    }

    /// A server certificate for `names` (DNS names or IP addresses; the first is the CN).
    pub fn server(&self, names: &[String]) -> Result<IssuedCert, DevCertError> {
        let sans = server_sans(names)?;
        let first = names.first().map_or("hopgate", String::as_str);
        self.issue(
            "server",
            leaf(first, sans, ExtendedKeyUsagePurpose::ServerAuth),
        )
    }

    /// A client certificate whose SAN otherName UPN (and CN) is `user`.
    pub fn client(&self, user: &str) -> Result<IssuedCert, DevCertError> {
        check_user(user)?;
        let upn = SanType::OtherName((UPN_OID.to_vec(), user.into()));
        self.issue(
            "client",
            leaf(user, vec![upn], ExtendedKeyUsagePurpose::ClientAuth),
        )
    }

    /// A revocation list (PEM) naming `revoked`, valid from an hour ago for 30 days.
    pub fn crl(&self, revoked: &[&IssuedCert]) -> Result<String, DevCertError> {
        let now = OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - BACKDATE,
            next_update: now + Duration::days(30),
            crl_number: rcgen::SerialNumber::from(now.unix_timestamp().unsigned_abs()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| rcgen::RevokedCertParams {
                    serial_number: c.serial.clone(),
                    revocation_time: now - BACKDATE,
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let issuer = Issuer::new(self.params.clone(), &self.key);
        params
            .signed_by(&issuer)
            .and_then(|c| c.pem())
            .map_err(gen_err("revocation list"))
    }

    fn issue(
        &self,
        what: &'static str,
        params: CertificateParams,
    ) -> Result<IssuedCert, DevCertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err(what))?;
        let serial = params.serial_number.clone().unwrap_or_else(random_serial);
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(gen_err(what))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }
}

// === impl IssuedCert ===

impl IssuedCert {
    /// Writes the certificate (0644) and key (0600) files, replacing existing ones
    /// atomically.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), DevCertError> {
        write_file(key, self.key_pem.as_bytes(), true)?;
        write_file(cert, self.cert_pem.as_bytes(), false)
    }
}

fn gen_err(what: &'static str) -> impl Fn(rcgen::Error) -> DevCertError {
    move |source| DevCertError::Generate { what, source }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "hopgate (development only)");
    dn.push(DnType::CommonName, cn);
    dn
}

fn leaf(cn: &str, sans: Vec<SanType>, eku: ExtendedKeyUsagePurpose) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params.serial_number = Some(random_serial());
    params
}

/// A random positive 16-byte serial (RFC 5280 §4.1.2.2: unique per CA, at most 20 bytes).
fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // no leading zero byte, so the encoded length is stable
    rcgen::SerialNumber::from_slice(&bytes)
}

fn check_user(user: &str) -> Result<(), DevCertError> {
    let ok = !user.is_empty()
        && user.len() <= 256
        && !user.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(DevCertError::InvalidUser(user.to_owned()))
    }
}

fn server_sans(names: &[String]) -> Result<Vec<SanType>, DevCertError> {
    if names.is_empty() {
        return Err(DevCertError::InvalidServerName {
            name: String::new(),
            why: "at least one server name is required",
        });
    }
    names
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => {
                let valid = !name.is_empty()
                    && name.len() <= 253
                    && name.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    });
                if !valid {
                    return Err(DevCertError::InvalidServerName {
                        name: name.clone(),
                        why: "not an ip address or a dns name",
                    });
                }
                name.as_str().try_into().map(SanType::DnsName).map_err(|_| {
                    DevCertError::InvalidServerName {
                        name: name.clone(),
                        why: "not an ia5 string",
                    }
                })
            }
        })
        .collect()
}

/// Writes `bytes` to `path` via a temp file and rename; `private` files get mode 0600,
/// certificates 0644.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), DevCertError> {
    let io = |op, p: &Path| {
        let p = p.to_owned();
        move |source| DevCertError::Io {
            op,
            path: p,
            source,
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut suffix);
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", hex::encode(suffix)));

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = options
        .open(&tmp)
        .map_err(io("create", &tmp))
        .and_then(|mut f| {
            f.write_all(bytes).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("sync", &tmp))
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io("replace", path)));
    if result.is_err() {
        // Best effort; the original error is what matters.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::server::WebPkiClientVerifier;
    use rustls::RootCertStore;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

    use super::*;
    use crate::authn::mtls::principal_name_from_cert;

    fn cert(path: &Path) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(path).unwrap()
    }

    fn roots(paths: &DevCertPaths) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(cert(&paths.ca_cert)).unwrap();
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn client_cert_maps_to_the_upn() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(dir.path(), DevCertOptions::default()).unwrap();
        assert!(paths.generated);
        let der = cert(&paths.client_cert);
        assert_eq!(
            principal_name_from_cert(&der).unwrap(),
            "alice@hopgate.test"
        );
    }

    #[test]
    fn chains_verify_with_rustls_webpki() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(dir.path(), DevCertOptions::default()).unwrap();
        let server = WebPkiServerVerifier::builder_with_provider(roots(&paths), provider())
            .build()
            .unwrap();
        let server_cert = cert(&paths.server_cert);
        for name in ["localhost", "127.0.0.1", "::1"] {
            server
                .verify_server_cert(
                    &server_cert,
                    &[],
                    &ServerName::try_from(name).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // A name not in the SAN, and the client certificate used as a server one, fail.
        assert!(server
            .verify_server_cert(
                &server_cert,
                &[],
                &ServerName::try_from("example.com").unwrap(),
                &[],
                UnixTime::now()
            )
            .is_err());
        assert!(server
            .verify_server_cert(
                &cert(&paths.client_cert),
                &[],
                &ServerName::try_from("localhost").unwrap(),
                &[],
                UnixTime::now()
            )
            .is_err());

        let client = WebPkiClientVerifier::builder_with_provider(roots(&paths), provider())
            .build()
            .unwrap();
        client
            .verify_client_cert(&cert(&paths.client_cert), &[], UnixTime::now())
            .unwrap();
        // The server certificate lacks the clientAuth EKU.
        assert!(client
            .verify_client_cert(&cert(&paths.server_cert), &[], UnixTime::now())
            .is_err());
    }

    #[test]
    fn keys_match_certificates_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(dir.path(), DevCertOptions::default()).unwrap();
        // rustls checks that the private key matches the certificate's public key.
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert(&paths.server_cert)],
                PrivateKeyDer::from_pem_file(&paths.server_key).unwrap(),
            );
        assert!(config.is_ok(), "{:?}", config.err());
        let mismatched = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert(&paths.server_cert)],
                PrivateKeyDer::from_pem_file(&paths.client_key).unwrap(),
            );
        assert!(mismatched.is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            for key in [&paths.ca_key, &paths.server_key, &paths.client_key] {
                assert_eq!(mode(key), 0o600, "{}", key.display());
            }
            assert_eq!(mode(&paths.ca_cert), 0o644);
        }
    }

    #[test]
    fn existing_files_are_kept_unless_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(dir.path(), DevCertOptions::default()).unwrap();
        let ca_before = std::fs::read(&first.ca_cert).unwrap();
        let again = generate(dir.path(), DevCertOptions::default()).unwrap();
        assert!(!again.generated);
        assert_eq!(std::fs::read(&again.ca_cert).unwrap(), ca_before);

        let opts = DevCertOptions {
            overwrite: true,
            client_user: "bob@hopgate.test".to_owned(),
            ..DevCertOptions::default()
        };
        let replaced = generate(dir.path(), opts).unwrap();
        assert!(replaced.generated);
        assert_ne!(std::fs::read(&replaced.ca_cert).unwrap(), ca_before);
        assert_eq!(
            principal_name_from_cert(&cert(&replaced.client_cert)).unwrap(),
            "bob@hopgate.test"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn partial_set_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(dir.path(), DevCertOptions::default()).unwrap();
        std::fs::remove_file(&paths.server_key).unwrap();
        let e = generate(dir.path(), DevCertOptions::default()).unwrap_err();
        assert!(
            matches!(&e, DevCertError::PartialSet { missing, .. } if missing == "server.key"),
            "{e}"
        );
    }

    #[test]
    fn bad_options_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for user in ["", "alice smith", "a\n"] {
            let opts = DevCertOptions {
                client_user: user.to_owned(),
                ..DevCertOptions::default()
            };
            assert!(matches!(
                generate(dir.path(), opts),
                Err(DevCertError::InvalidUser(_))
            ));
        }
        for names in [vec![], vec!["bad name".to_owned()], vec!["a..b".to_owned()]] {
            let opts = DevCertOptions {
                server_names: names,
                ..DevCertOptions::default()
            };
            assert!(matches!(
                generate(dir.path(), opts),
                Err(DevCertError::InvalidServerName { .. })
            ));
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }
}
