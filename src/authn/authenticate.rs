//! The authentication decision: from what the connection and request carry to a
//! [`Principal`] or a typed failure.
//!
//! Owns the order of methods and nothing else: no I/O, no clock except the one the JWT
//! library reads for `exp`/`nbf`, no logging. The caller (the authn layer) logs and audits
//! the [`AuthnFailure`], which carries a reason category and never a secret.
//!
//! Order:
//! 1. a client certificate the listener verified (rustls, configured client CA) →
//!    principal from the certificate, whether or not the WS-Man `secprofile/https/mutual`
//!    header is present (winrm-rs sends none, PROTOCOL.md §1); any header is then ignored;
//! 2. `Bearer <JWT>`;
//! 3. `Basic user:<JWT>` where `user` must equal the token's user claim;
//! 4. otherwise a failure.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use super::error::AuthnError;
use super::header::{parse_authorization, ClientCredential};
use super::jwt::{Claims, JwtSettings, JwtValidator};
use super::mtls::principal_name_from_cert;
use super::principal::{AuthMethod, Principal};

/// Why a request was not authenticated; safe for logs and the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuthnFailure {
    /// No client certificate and no `Authorization` header.
    #[error("no credentials presented")]
    NoCredentials,
    /// A scheme hopgate does not accept from clients (e.g. Negotiate), or Bearer/Basic
    /// while JWT authentication is not configured.
    #[error("unsupported authorization scheme {scheme}")]
    UnsupportedScheme {
        /// Scheme name, sanitised by the header parser.
        scheme: String,
    },
    /// More than one `Authorization` header: which one counts would be a guess, and a
    /// proxy in front may have checked a different one than the host would use.
    #[error("repeated authorization header")]
    RepeatedHeader,
    /// The token is valid but lives longer than the configured maximum.
    #[error("token rejected: {why}")]
    TokenLifetime {
        /// The lifetime check that failed.
        why: AuthnError,
    },
    /// The `Authorization` header could not be parsed.
    #[error("malformed authorization header: {why}")]
    MalformedHeader {
        /// What is wrong (no header text).
        why: AuthnError,
    },
    /// The token's `exp` has passed.
    #[error("token has expired")]
    TokenExpired,
    /// The token failed any other check.
    #[error("token rejected: {why}")]
    TokenInvalid {
        /// Which check failed.
        why: AuthnError,
    },
    /// Basic user name differs from the (valid) token's user claim.
    #[error("basic user name does not match the token user {token_user}")]
    UserMismatch {
        /// The user the valid token names.
        token_user: String,
    },
    /// A verified client certificate carries no usable name.
    #[error("client certificate does not map to a principal: {why}")]
    CertificateUnmapped {
        /// Why no name could be taken from it.
        why: AuthnError,
    },
    /// The client sent the certificate profile header but no certificate was verified (or
    /// certificate authentication is off).
    #[error("certificate authentication requested without a verified client certificate")]
    CertificateMissing,
}

// === impl AuthnFailure ===

impl AuthnFailure {
    /// Stable snake_case category for audit events and metrics labels.
    pub fn category(&self) -> &'static str {
        match self {
            Self::NoCredentials => "no_credentials",
            Self::RepeatedHeader => "repeated_authorization_header",
            Self::TokenLifetime { .. } => "token_lifetime_too_long",
            Self::UnsupportedScheme { .. } => "unsupported_scheme",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::TokenExpired => "token_expired",
            Self::TokenInvalid { .. } => "token_invalid",
            Self::UserMismatch { .. } => "user_mismatch",
            Self::CertificateUnmapped { .. } => "certificate_unmapped",
            Self::CertificateMissing => "certificate_missing",
        }
    }
}

/// Decides who a request is. Build once at startup, share behind an `Arc`.
#[derive(Debug)]
pub struct Authenticator {
    /// Validator for Bearer and Basic tokens; `None` refuses both schemes.
    pub jwt: Option<JwtValidator>,
    /// Whether a TLS client certificate verified by the listener authenticates.
    pub allow_client_cert: bool,
    /// The Kerberos acceptor, when `[authn.kerberos]` is configured. Kerberos signs in a
    /// connection, not a request: the proxy drives it (`proxy::signin`).
    pub kerberos: Option<std::sync::Arc<super::kerberos::Acceptor>>,
}

// === impl Authenticator ===

impl Authenticator {
    /// `jwt`: validator for Bearer/Basic tokens, `None` to refuse tokens.
    /// `allow_client_cert`: whether a verified TLS client certificate authenticates.
    pub fn new(jwt: Option<JwtValidator>, allow_client_cert: bool) -> Self {
        Self {
            jwt,
            allow_client_cert,
            kerberos: None,
        }
    }

    /// Also accepts Kerberos / Negotiate sign-in with `acceptor`.
    pub fn with_kerberos(mut self, acceptor: super::kerberos::Acceptor) -> Self {
        self.kerberos = Some(std::sync::Arc::new(acceptor));
        self
    }

    /// Builds the validator from `jwt` (reading its key file once) when given.
    pub fn from_settings(
        jwt: Option<&JwtSettings>,
        allow_client_cert: bool,
    ) -> Result<Self, AuthnError> {
        Ok(Self::new(
            jwt.map(JwtValidator::new).transpose()?,
            allow_client_cert,
        ))
    }

    /// Authenticates one request from its headers: refuses several `Authorization`
    /// headers ([`AuthnFailure::RepeatedHeader`]), then as [`Authenticator::authenticate`].
    pub fn authenticate_headers(
        &self,
        peer_cert: Option<&[u8]>,
        headers: &HeaderMap,
        source_ip: IpAddr,
    ) -> Result<Principal, AuthnFailure> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(AuthnFailure::RepeatedHeader);
        }
        self.authenticate(peer_cert, first, source_ip)
    }

    /// Authenticates one request.
    ///
    /// `authorization` is the request's `Authorization` header; callers holding the whole
    /// header map use [`Authenticator::authenticate_headers`], which refuses several.
    ///
    /// `peer_cert` is the leaf certificate (DER) of the TLS client, which the listener has
    /// already verified against the client CA; pass `None` when there is none.
    pub fn authenticate(
        &self,
        peer_cert: Option<&[u8]>,
        authorization: Option<&HeaderValue>,
        source_ip: IpAddr,
    ) -> Result<Principal, AuthnFailure> {
        if let (true, Some(der)) = (self.allow_client_cert, peer_cert) {
            let name = principal_name_from_cert(der)
                .map_err(|why| AuthnFailure::CertificateUnmapped { why })?;
            return Ok(Principal {
                name,
                groups: Vec::new(),
                method: AuthMethod::ClientCertificate,
                source_ip,
                target: None,
            });
        }

        let header = authorization.ok_or(AuthnFailure::NoCredentials)?;
        let credential =
            parse_authorization(header).map_err(|why| AuthnFailure::MalformedHeader { why })?;
        match credential {
            ClientCredential::Bearer(token) => {
                let claims = self.validate(token.expose(), "Bearer")?;
                Ok(principal(claims, AuthMethod::Bearer, source_ip))
            }
            ClientCredential::Basic { user, password } => {
                let claims = self.validate(password.expose(), "Basic")?;
                // Constant time so response timing does not reveal how much of the name
                // matched (length differences still show; names are not secret).
                if !bool::from(user.as_bytes().ct_eq(claims.user.as_bytes())) {
                    return Err(AuthnFailure::UserMismatch {
                        token_user: claims.user,
                    });
                }
                Ok(principal(claims, AuthMethod::BasicToken, source_ip))
            }
            ClientCredential::CertProfile => Err(AuthnFailure::CertificateMissing),
            ClientCredential::Other(scheme) => Err(AuthnFailure::UnsupportedScheme { scheme }),
        }
    }

    fn validate(&self, token: &str, scheme: &str) -> Result<Claims, AuthnFailure> {
        let jwt = self
            .jwt
            .as_ref()
            .ok_or_else(|| AuthnFailure::UnsupportedScheme {
                scheme: scheme.to_owned(),
            })?;
        jwt.validate(token).map_err(|why| match why {
            AuthnError::Expired => AuthnFailure::TokenExpired,
            why @ AuthnError::LifetimeTooLong { .. } => AuthnFailure::TokenLifetime { why },
            why => AuthnFailure::TokenInvalid { why },
        })
    }
}

fn principal(claims: Claims, method: AuthMethod, source_ip: IpAddr) -> Principal {
    Principal {
        name: claims.user,
        groups: claims.groups,
        method,
        source_ip,
        target: claims.target,
    }
}
