//! `Test-WSMan`: WS-Management Identify at the gateway.
//!
//! Without credentials (the WinRM client sends `WSMANIDENTIFY: unauthenticated` and no
//! `Authorization`, or posts to `/wsman-anon/identify`), an Identify is answered by the
//! gateway itself with an IdentifyResponse naming hopgate and its version: nothing about
//! the inventory, no host is contacted, and nothing is audited (it grants nothing; a
//! credential-less request that is not an Identify is refused and audited as before).
//! Authenticated, an Identify on a granted host is relayed to that host, so the person
//! sees what `Test-WSMan -Authentication` shows on the host itself; with no host named it
//! is answered like the anonymous one.

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::relay::Reply;
use super::{read_limited, Ctx, Gateway};
use crate::error::{soap_response, Refusal};
use crate::wsman::{self, Action, Body, Envelope, Header};

/// Windows' path for unauthenticated Identify.
pub(super) const ANONYMOUS_PATH: &str = "/wsman-anon/identify";
/// The metrics label of an Identify (it has no `wsa:Action`).
pub(super) const LABEL: &str = "Identify";
/// Largest body read from a client that has not signed in: an Identify is about 300
/// bytes, so anything much larger is refused without being read.
const ANONYMOUS_BODY_LIMIT: usize = 4 * 1024;
/// What an Identify answer names as the vendor.
const PRODUCT_VENDOR: &str = "hopgate";

/// False when a credential-less request announces a body too large to be an Identify:
/// it is refused at once as unauthenticated, without reading it.
pub(super) fn may_be_anonymous(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_none_or(|len| len <= ANONYMOUS_BODY_LIMIT)
}

/// The gateway's own IdentifyResponse.
pub(super) fn own_answer() -> Response<Full<Bytes>> {
    let body = wsman::build_identify_response(&wsman::IdentifyResponse {
        protocol_version: wsman::ns::WSMAN.to_string(),
        product_vendor: PRODUCT_VENDOR.to_string(),
        product_version: env!("CARGO_PKG_VERSION").to_string(),
    });
    soap_response(StatusCode::OK, Bytes::from(body))
}

/// The envelope a relayed Identify is carried as on the request path (for the backend
/// leg's wait and metrics; the bytes sent are the client's own).
pub(super) fn envelope() -> Envelope {
    Envelope::new(
        Header::new(Action::Other(format!("{}/Identify", wsman::ns::IDENTITY))),
        Body::Empty,
    )
}

// === impl Gateway ===

impl Gateway {
    /// Answers a credential-less Identify; anything else gets `otherwise`.
    pub(super) async fn anonymous_identify(
        &self,
        req: Request<Incoming>,
        otherwise: Refusal,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        if !may_be_anonymous(req.headers()) {
            return Err(otherwise);
        }
        let limits = wsman::Limits {
            max_bytes: ANONYMOUS_BODY_LIMIT,
            ..self.wsman_limits
        };
        let body = match read_limited(
            req,
            ANONYMOUS_BODY_LIMIT,
            self.config.limits.request_timeout,
        )
        .await
        {
            Ok(body) => body,
            Err(_) => return Err(otherwise),
        };
        match wsman::parse_identify(&body, &limits) {
            Ok(true) => {
                tracing::debug!("Anonymous Identify answered");
                Ok(own_answer())
            }
            _ => Err(otherwise),
        }
    }

    /// An authenticated Identify for a granted host: the host's own answer.
    pub(super) async fn relay_identify(&self, ctx: Ctx<'_>) -> Reply {
        let backend = self.backend(&ctx).await?;
        let (status, body) = self.send_to_host(&ctx, &backend, ctx.body.clone()).await?;
        Ok(soap_response(status, body))
    }
}
