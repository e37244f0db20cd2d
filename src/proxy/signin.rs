//! Kerberos / Negotiate sign-in on one client connection, and WinRM message encryption
//! with the context it establishes (issue #15, PowerShell's defaults).
//!
//! WinRM authenticates the TCP connection: the client sends `Authorization: Negotiate
//! <token>` (or `Kerberos`) once, then plain requests on the same connection; over HTTP the
//! bodies are sealed with the context (`multipart/encrypted`, PROTOCOL.md §7). This module
//! holds that per-connection state and does the HTTP side of it; the Kerberos work is in
//! `authn::kerberos`. Over plain HTTP nothing but a Kerberos sign-in with sealed bodies is
//! served: no Basic, no token, no clear-text envelope.

use std::sync::Mutex;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};
use http_body_util::Full;

use crate::authn::kerberos::{AcceptContext, AcceptError, AcceptStep, Acceptor};
use crate::authn::{AuthMethod, Principal};
use crate::backend::crypto::{self, EncryptionProtocol};

/// HTTP scheme the client used; answers use the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Negotiate,
    Kerberos,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Negotiate => "Negotiate",
            Self::Kerberos => "Kerberos",
        }
    }
}

/// A Kerberos token in the request's `Authorization` header.
#[derive(Debug)]
pub struct NegotiateHeader {
    pub scheme: Scheme,
    pub token: Vec<u8>,
}

/// What [`ConnSignIn::step`] concluded.
#[derive(Debug)]
pub enum StepOutcome {
    /// Signed in; answer with this header (mutual authentication) if any.
    Done {
        principal: Principal,
        reply: Option<HeaderValue>,
    },
    /// Answer 401 with this challenge and wait for the next token.
    Continue(HeaderValue),
}

/// Why sealed traffic could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("an encrypted body arrived on a connection that has not signed in with Kerberos")]
    NoContext,
    #[error("the encrypted body could not be read: {0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("the body was sealed with {got} on a connection that signed in with {want}")]
    Protocol {
        got: EncryptionProtocol,
        want: EncryptionProtocol,
    },
}

enum State {
    None,
    Pending(Box<AcceptContext>, Scheme),
    Established {
        ctx: Box<AcceptContext>,
        principal: Principal,
        scheme: Scheme,
    },
}

/// The sign-in state of one client connection.
pub struct ConnSignIn {
    state: Mutex<State>,
    /// The principal of the connection's verified client certificate, derived once: the
    /// certificate cannot change on a connection, so neither can its name.
    certificate: std::sync::OnceLock<Principal>,
}

impl Default for ConnSignIn {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::None),
            certificate: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for ConnSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSignIn").finish_non_exhaustive()
    }
}

/// Reads `Authorization: Negotiate|Kerberos <base64>`; `None` for any other scheme.
/// A Negotiate header whose token is not base64 is a malformed header.
pub fn negotiate_header(headers: &HeaderMap) -> Option<Result<NegotiateHeader, ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let scheme = if scheme.eq_ignore_ascii_case("Negotiate") {
        Scheme::Negotiate
    } else if scheme.eq_ignore_ascii_case("Kerberos") {
        Scheme::Kerberos
    } else {
        return None;
    };
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .filter(|t| !t.is_empty())
            .map(|token| NegotiateHeader { scheme, token })
            .ok_or(()),
    )
}

impl ConnSignIn {
    /// Feeds the client's token to the connection's context (a new one for a first token,
    /// or after an earlier sign-in: a client may sign in again on the same connection).
    pub fn step(
        &self,
        acceptor: &Acceptor,
        header: NegotiateHeader,
        source_ip: std::net::IpAddr,
    ) -> Result<StepOutcome, AcceptError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (mut ctx, scheme) = match std::mem::replace(&mut *state, State::None) {
            State::Pending(ctx, scheme) if scheme == header.scheme => (ctx, scheme),
            _ => (Box::new(acceptor.begin(&header.token)?), header.scheme),
        };
        match acceptor.step(&mut ctx, &header.token)? {
            AcceptStep::Continue(out) => {
                let challenge = challenge_value(scheme, &out);
                *state = State::Pending(ctx, scheme);
                Ok(StepOutcome::Continue(challenge))
            }
            AcceptStep::Done { client, token } => {
                let principal = Principal {
                    groups: acceptor.groups_of(&client),
                    name: client,
                    method: AuthMethod::Kerberos,
                    source_ip,
                    target: None,
                };
                let reply = (!token.is_empty()).then(|| challenge_value(scheme, &token));
                *state = State::Established {
                    ctx,
                    principal: principal.clone(),
                    scheme,
                };
                Ok(StepOutcome::Done { principal, reply })
            }
        }
    }

    /// The principal of the connection's client certificate, once derived.
    pub fn certificate_principal(&self) -> Option<Principal> {
        self.certificate.get().cloned()
    }

    /// Remembers the principal of the connection's client certificate.
    pub fn remember_certificate(&self, principal: &Principal) {
        let _ = self.certificate.set(principal.clone());
    }

    /// The person this connection signed in as, if it did.
    pub fn principal(&self) -> Option<Principal> {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Established { principal, .. } => Some(principal.clone()),
            _ => None,
        }
    }

    /// Unseals a `multipart/encrypted` request body; returns the plaintext envelope and
    /// the protocol to seal the answer with.
    pub fn unseal(
        &self,
        content_type: &str,
        body: &[u8],
    ) -> Result<(Bytes, EncryptionProtocol), SealError> {
        let parsed =
            crypto::parse_content_type(content_type)?.ok_or(crypto::CryptoError::ContentType {
                content_type: content_type.to_owned(),
            })?;
        let part = crypto::decode_body(body, &parsed.boundary)?;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State::Established { ctx, scheme, .. } = &mut *state else {
            return Err(SealError::NoContext);
        };
        let want = protocol_of(*scheme);
        // pypsrp seals Negotiate-signed-in traffic as SPNEGO and raw Kerberos as Kerberos;
        // both are the same wrap tokens, so either is read, but never CredSSP.
        if part.protocol == EncryptionProtocol::CredSsp {
            return Err(SealError::Protocol {
                got: part.protocol,
                want,
            });
        }
        let plain = ctx.unseal(part.header, part.data)?;
        part.check_length(plain.len(), 0)?;
        Ok((Bytes::from(plain), part.protocol))
    }

    /// Seals an answer body with the connection's context.
    pub fn seal(
        &self,
        protocol: EncryptionProtocol,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State::Established { ctx, .. } = &mut *state else {
            return Err(SealError::NoContext);
        };
        let sealed = ctx.seal(plaintext)?;
        Ok(crypto::encode_body(protocol, plaintext.len(), &sealed))
    }
}

fn protocol_of(scheme: Scheme) -> EncryptionProtocol {
    match scheme {
        Scheme::Negotiate => EncryptionProtocol::Spnego,
        Scheme::Kerberos => EncryptionProtocol::Kerberos,
    }
}

fn challenge_value(scheme: Scheme, token: &[u8]) -> HeaderValue {
    let text = format!(
        "{} {}",
        scheme.as_str(),
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    // Base64 and a scheme name are always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("Negotiate"))
}

/// What the answer to one request needs from sign-in: a mutual-authentication header, and
/// sealing when the request was sealed.
#[derive(Debug, Default)]
pub struct Exchange {
    pub reply_header: Option<HeaderValue>,
    pub seal: Option<EncryptionProtocol>,
    /// Over plain HTTP, only Kerberos challenges are offered.
    pub plain_http: bool,
}

impl Exchange {
    /// Applies sign-in to the answer (the gateway accepts Kerberos): seals `plain`, the
    /// answer's body, when the request was sealed (a fault too: the client reads only
    /// sealed bodies once it sealed its request), adds the mutual-authentication token,
    /// and offers Negotiate/Kerberos on a 401.
    pub fn finish(
        &self,
        mut response: Response<Full<Bytes>>,
        plain: Option<Bytes>,
        signin: &ConnSignIn,
    ) -> Response<Full<Bytes>> {
        if let (Some(protocol), Some(body)) = (self.seal, plain) {
            if !body.is_empty() {
                match signin.seal(protocol, &body) {
                    Ok(sealed) => {
                        *response.body_mut() = Full::new(Bytes::from(sealed));
                        if let Ok(v) = HeaderValue::from_str(&protocol.content_type()) {
                            response.headers_mut().insert(header::CONTENT_TYPE, v);
                        }
                    }
                    Err(error) => {
                        // Never answer a sealed request in clear text.
                        tracing::warn!(%error, "Cannot seal the answer");
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                        return r;
                    }
                }
            }
        }
        if let Some(v) = &self.reply_header {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, v.clone());
        }
        if response.status() == http::StatusCode::UNAUTHORIZED && self.reply_header.is_none() {
            let h = response.headers_mut();
            if self.plain_http {
                // Basic is never offered where it would cross the network in clear text.
                h.remove(header::WWW_AUTHENTICATE);
            }
            h.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Negotiate"),
            );
            h.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Kerberos"),
            );
        }
        response
    }
}
