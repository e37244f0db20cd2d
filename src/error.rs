//! The one place where a refusal becomes an HTTP status and a SOAP fault.
//!
//! Every layer reports what went wrong in its own error enum; the proxy turns those into a
//! [`Refusal`], which says what the *client* may be told. Internals (backend addresses,
//! library errors, secrets) are logged by the caller and never put into a fault text.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

use crate::wsman::{build_fault, build_must_understand_fault, FaultSpec, FaultSubcode};

/// Why a request is not being served, in terms safe to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No usable credentials: HTTP 401 with a Basic challenge.
    Unauthenticated,
    /// Several `Authorization` headers: HTTP 400 saying so (no challenge: retrying with
    /// other credentials would not help).
    RepeatedAuthorization,
    /// Not a WS-Man path.
    NotFound,
    /// Not a POST.
    MethodNotAllowed,
    /// Neither the path, the token nor the configuration names a host.
    NoTarget,
    /// The named host is not in the inventory (or not granted: the client is not told which).
    UnknownHost { name: String },
    /// Policy or ownership says no; the text names the command or rule.
    AccessDenied { message: String },
    /// The ShellId is not one this principal holds.
    InvalidShell,
    /// The action is not relayed by the gateway.
    ActionNotSupported { action: String },
    /// The envelope could not be read.
    Malformed { message: String },
    /// Headers marked `mustUnderstand` that the gateway does not interpret, as
    /// `(namespace, local name)`: the SOAP `MustUnderstand` fault, since forwarding them
    /// would let the host act on something the gateway never inspected.
    MustUnderstand {
        headers: Vec<(Option<String>, String)>,
    },
    /// The body is larger than allowed.
    TooLarge { limit: usize },
    /// The client asked for shell compression the gateway cannot decode (on a cmd shell,
    /// or a type other than xpress).
    CompressionUnsupported,
    /// The host could not be reached or did not answer in time.
    BackendUnavailable { host: String },
    /// The gateway could not log in to the host.
    BackendAuth { host: String },
    /// The audit writer is behind and did not catch up in time: the request was not
    /// served, so nothing about it goes unrecorded (issue #14).
    AuditBehind,
    /// A per-person or per-host-account limit (shells): `w:QuotaLimit`, as Windows
    /// answers past MaxShellsPerUser.
    QuotaLimit { message: String },
    /// Too many failed authentications from this source: HTTP 429 before authentication.
    RateLimited { retry_after_secs: u64 },
    /// Anything else; details are in the gateway's log only.
    Internal,
}

// === impl Refusal ===

impl Refusal {
    /// A short name for logs and metrics. Refusal texts can quote commands (and so
    /// secrets a user typed), so logs carry this instead of the text.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::RepeatedAuthorization => "repeated_authorization",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NoTarget => "no_target",
            Self::UnknownHost { .. } => "unknown_host",
            Self::AccessDenied { .. } => "access_denied",
            Self::InvalidShell => "invalid_shell",
            Self::ActionNotSupported { .. } => "action_not_supported",
            Self::Malformed { .. } => "malformed",
            Self::MustUnderstand { .. } => "must_understand",
            Self::TooLarge { .. } => "too_large",
            Self::CompressionUnsupported => "compression_unsupported",
            Self::BackendUnavailable { .. } => "backend_unavailable",
            Self::BackendAuth { .. } => "backend_auth",
            Self::AuditBehind => "audit_behind",
            Self::QuotaLimit { .. } => "quota_limit",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal => "internal",
        }
    }

    /// True for requests the gateway could not read as WS-Man (an unreadable or too
    /// large body, an unknown mustUnderstand header, no target, no ShellId): what a
    /// `request.rejected` event records when the sender is known.
    pub fn is_unreadable_request(&self) -> bool {
        matches!(
            self,
            Self::Malformed { .. }
                | Self::MustUnderstand { .. }
                | Self::TooLarge { .. }
                | Self::NoTarget
        )
    }

    /// The HTTP response the client gets. `relates_to` is the request's MessageID.
    pub fn into_response(self, relates_to: Option<&str>) -> Response<Full<Bytes>> {
        let plain = |status: StatusCode| {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = status;
            r
        };
        let (subcode, reason) = match self {
            Self::Unauthenticated => {
                let mut r = plain(StatusCode::UNAUTHORIZED);
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Basic realm=\"hopgate\""),
                );
                return r;
            }
            Self::RepeatedAuthorization => {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"repeated Authorization header: send exactly one\n",
                )));
                *r.status_mut() = StatusCode::BAD_REQUEST;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return r;
            }
            Self::NotFound => return plain(StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => {
                let mut r = plain(StatusCode::METHOD_NOT_ALLOWED);
                r.headers_mut()
                    .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
                return r;
            }
            Self::NoTarget => (
                FaultSubcode::DestinationUnreachable,
                "No target host: use the URL path /wsman/<host> or a token with a target claim"
                    .to_string(),
            ),
            Self::UnknownHost { name } => (
                FaultSubcode::DestinationUnreachable,
                format!("The host \"{name}\" is not available through this gateway"),
            ),
            Self::AccessDenied { message } => (
                FaultSubcode::AccessDenied,
                format!("Access is denied by hopgate: {message}"),
            ),
            Self::InvalidShell => (
                FaultSubcode::InvalidSelectors,
                "The WS-Management service cannot process the request because the request \
                 contained invalid selectors for the resource"
                    .to_string(),
            ),
            Self::ActionNotSupported { action } => (
                FaultSubcode::ActionNotSupported,
                format!("hopgate does not relay the action {action}"),
            ),
            Self::Malformed { message } => (
                FaultSubcode::SchemaValidationError,
                format!("The request is not a valid WS-Management envelope: {message}"),
            ),
            Self::MustUnderstand { headers } => {
                let body = build_must_understand_fault(relates_to, &headers);
                return soap_response(StatusCode::INTERNAL_SERVER_ERROR, Bytes::from(body));
            }
            Self::TooLarge { limit } => (
                FaultSubcode::EncodingLimit,
                format!("The request is larger than the gateway's limit of {limit} bytes"),
            ),
            Self::CompressionUnsupported => (
                FaultSubcode::InvalidParameter,
                "hopgate decodes xpress compression on PowerShell shells only: create this \
                 shell without compression (New-PSSessionOption -NoCompression)"
                    .to_string(),
            ),
            Self::BackendUnavailable { host } => (
                FaultSubcode::DestinationUnreachable,
                format!("The host \"{host}\" did not answer the gateway"),
            ),
            Self::BackendAuth { host } => (
                FaultSubcode::AccessDenied,
                format!("The gateway could not log in to the host \"{host}\""),
            ),
            Self::AuditBehind => (
                FaultSubcode::InternalError,
                "The gateway's audit log is behind; the request was not run. Retry shortly"
                    .to_string(),
            ),
            Self::QuotaLimit { message } => (FaultSubcode::QuotaLimit, message),
            Self::RateLimited { retry_after_secs } => {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"too many failed sign-ins from this address: retry later\n",
                )));
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    http::HeaderValue::from(retry_after_secs),
                );
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                // The connection stays open: reconnecting would cost a TLS handshake,
                // far more than this answer.
                return r;
            }
            Self::Internal => (
                FaultSubcode::InternalError,
                "The gateway could not process the request".to_string(),
            ),
        };
        // Only WSManFault codes seen in real Windows faults are sent (wsman knows them).
        let body = build_fault(&FaultSpec {
            relates_to: relates_to.map(str::to_string),
            message_id: None,
            subcode,
            reason: reason.clone(),
            wsman_code: subcode.default_wsman_code(),
            machine: Some("hopgate".to_string()),
            message: reason,
        });
        soap_response(StatusCode::INTERNAL_SERVER_ERROR, Bytes::from(body))
    }
}

/// A SOAP response with the content type WinRM clients expect.
pub fn soap_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/soap+xml;charset=UTF-8"),
    );
    r
}
