//! The logins of a [`Conn`]: the 401 exchanges of NTLM, Kerberos/Negotiate (sspi), the
//! GSSAPI delegation context and CredSSP, each finished on the connection it authenticates.
//! Split from `conn` so that module keeps to the request/response exchange.

use super::*;

impl Conn {
    pub(super) async fn ntlm_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        server_cert: Option<&[u8]>,
        max_body: usize,
    ) -> Result<NtlmClient, BackendError> {
        let handshake_err = |reason: &str, source: Option<NtlmError>| BackendError::Handshake {
            host: target.name.clone(),
            reason: reason.to_owned(),
            source: source.map(Box::new),
        };
        let mut ctx = NtlmClient::new(&credential.user, credential.password(), target.tls_name())
            .map_err(|e| handshake_err("preparing the context", Some(e)))?;
        let negotiate = ctx
            .negotiate()
            .map_err(|e| handshake_err("negotiate message", Some(e)))?;
        let resp = self
            .handshake_leg(&negotiate)
            .await
            .map_err(|e| self.leg_error(e))?;
        let status = resp.status();
        let challenge = challenge_token(&resp);
        drain(resp.into_body(), max_body)
            .await
            .map_err(|e| self.leg_error(e))?
            .ok_or_else(|| handshake_err("oversized handshake response body", None))?;
        if status != StatusCode::UNAUTHORIZED {
            return Err(handshake_err(
                &format!("expected 401 with a challenge, got {status}"),
                None,
            ));
        }
        let challenge = challenge
            .ok_or_else(|| handshake_err("host offered no Negotiate/NTLM challenge", None))?;
        if let Some(cert) = server_cert {
            ctx.set_tls_server_end_point(cert);
        }
        let authenticate = ctx
            .authenticate(&challenge)
            .map_err(|e| handshake_err("authenticate message", Some(e)))?;
        let resp = self
            .handshake_leg(&authenticate)
            .await
            .map_err(|e| self.leg_error(e))?;
        let status = resp.status();
        drain(resp.into_body(), max_body)
            .await
            .map_err(|e| self.leg_error(e))?
            .ok_or_else(|| handshake_err("oversized handshake response body", None))?;
        match status {
            s if s.is_success() => Ok(ctx),
            StatusCode::UNAUTHORIZED => Err(BackendError::AuthRejected {
                host: target.name.clone(),
                status,
            }),
            other => Err(handshake_err(
                &format!("unexpected status {other} finishing the handshake"),
                None,
            )),
        }
    }

    pub(super) async fn kerberos_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        max_body: usize,
    ) -> Result<KerberosClient, BackendError> {
        let krb_err = |source| BackendError::Kerberos {
            host: target.name.clone(),
            source: Box::new(source),
        };
        let mechanism = match target.auth {
            BackendAuth::Kerberos => Mechanism::Kerberos,
            _ => Mechanism::Negotiate,
        };
        let settings = KerberosSettings {
            // INVARIANT: HostTarget::validate refuses Kerberos without a KDC.
            kdc_url: target.kdc.clone().unwrap_or_default(),
            spn: target.service_principal(),
            kdc_timeout: crate::backend::kdc::DEFAULT_TIMEOUT,
        };
        let ctx = KerberosClient::new(mechanism, &credential.user, credential.password(), settings)
            .map_err(krb_err)?;
        // No channel bindings over https (checked against MIT GSSAPI acceptors): sspi 0.23.1
        // sends KERB_AP_OPTIONS_CBT as bare authenticator authorization data, which MIT
        // refuses (401), whereas the same AP-REQ without bindings is accepted. The ticket is
        // bound to the SPN and the host certificate is verified, so a relay to another
        // service is not possible; hosts with CbtHardeningLevel=Strict would refuse it.
        let mut ctx = SspiToken {
            ctx,
            host: &target.name,
        };
        self.token_handshake(&mut ctx, mechanism.http_scheme(), &target.name, max_body)
            .await?;
        Ok(ctx.ctx)
    }

    /// Logs in as the person through constrained delegation (S4U2Self + S4U2Proxy from the
    /// gateway's keytab); the credential's user is the person's realm principal.
    #[cfg(feature = "delegate")]
    pub(super) async fn delegate_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        server_cert: Option<&[u8]>,
        max_body: usize,
    ) -> Result<SealingContext, BackendError> {
        // INVARIANT: HostTarget::validate refuses Delegate without an impersonator.
        let impersonator = target.impersonator.clone().unwrap_or_default();
        let settings = DelegateSettings {
            service: crate::backend::delegate::service_in_realm(
                &target.service_principal(),
                &impersonator,
            ),
            impersonator,
            user: credential.user.clone(),
        };
        // Over https the AP-REQ is bound to the host's certificate (RFC 5929
        // tls-server-end-point), which MIT GSSAPI sends in the standard checksum field.
        let bindings = server_cert.map(crate::backend::ntlm::tls_server_end_point);
        let mut ctx = GssToken {
            ctx: DelegateClient::new(settings, bindings),
            host: &target.name,
        };
        let scheme = ctx.ctx.http_scheme();
        let outcome = self
            .token_handshake(&mut ctx, scheme, &target.name, max_body)
            .await;
        if let Err(BackendError::AuthRejected { .. }) = &outcome {
            // The host refused this ticket: do not hand the same credential out again.
            crate::backend::delegate::forget(ctx.ctx.settings());
        }
        outcome?;
        tracing::debug!(host = %target.name, user = %credential.user,
            cached_credential = ctx.ctx.credential_was_cached(), "Delegated login to the host");
        Ok(SealingContext::Delegate(Box::new(ctx.ctx)))
    }

    #[cfg(not(feature = "delegate"))]
    pub(super) async fn delegate_handshake(
        &mut self,
        target: &HostTarget,
        _credential: &Credential,
        _server_cert: Option<&[u8]>,
        _max_body: usize,
    ) -> Result<SealingContext, BackendError> {
        Err(BackendError::Delegate {
            host: target.name.clone(),
            source: Box::new(crate::backend::delegate_env::DelegateError::NotBuilt),
        })
    }

    /// The 401 exchange of a GSS-style context under `scheme`: the first token, then at most
    /// a few continuation legs (a host that keeps asking is broken or hostile), and mutual
    /// authentication checked on the final answer.
    async fn token_handshake(
        &mut self,
        ctx: &mut impl TokenContext,
        scheme: &str,
        host: &str,
        max_body: usize,
    ) -> Result<(), BackendError> {
        let handshake_err = |reason: String| BackendError::Handshake {
            host: host.to_owned(),
            reason,
            source: None,
        };
        let mut step = ctx.next(None).await?;
        for _ in 0..4 {
            let resp = self
                .handshake_leg_with(scheme, &step.token)
                .await
                .map_err(|e| self.leg_error(e))?;
            let status = resp.status();
            let reply = reply_token(resp.headers(), scheme);
            drain(resp.into_body(), max_body)
                .await
                .map_err(|e| self.leg_error(e))?
                .ok_or_else(|| handshake_err("oversized handshake response body".into()))?;
            match status {
                s if s.is_success() => {
                    if !ctx.established() {
                        // Mutual authentication: the AP-REP proves the host holds the key.
                        let reply = reply.ok_or_else(|| {
                            handshake_err(
                                "host accepted without a mutual-authentication token".into(),
                            )
                        })?;
                        step = ctx.next(Some(&reply)).await?;
                        if !step.done {
                            return Err(handshake_err(
                                "host accepted but the context is not complete".into(),
                            ));
                        }
                    }
                    return Ok(());
                }
                StatusCode::UNAUTHORIZED => match reply {
                    Some(reply) if !ctx.established() => {
                        step = ctx.next(Some(&reply)).await?;
                    }
                    _ => {
                        return Err(BackendError::AuthRejected {
                            host: host.to_owned(),
                            status,
                        })
                    }
                },
                other => {
                    return Err(handshake_err(format!(
                        "unexpected status {other} during the {scheme} handshake"
                    )))
                }
            }
        }
        Err(handshake_err(format!("{scheme} handshake did not finish")))
    }

    pub(super) async fn credssp_handshake(
        &mut self,
        target: &HostTarget,
        credential: &Credential,
        max_body: usize,
    ) -> Result<CredSspSession, BackendError> {
        let host = target.name.clone();
        let handshake_err = |reason: String| BackendError::Handshake {
            host: host.clone(),
            reason,
            source: None,
        };
        let rejected = || BackendError::AuthRejected {
            host: host.clone(),
            status: StatusCode::UNAUTHORIZED,
        };
        let fail = |source: CredSspError| match source {
            CredSspError::Rejected { status } => {
                tracing::warn!(host = %host, ntstatus = format!("{status:#010x}"),
                    "Backend host refused the CredSSP login");
                rejected()
            }
            other => BackendError::CredSsp {
                host: host.clone(),
                source: Box::new(other),
            },
        };
        let mut ctx = CredSspSession::new(
            &credential.user,
            credential.password(),
            &target.service_principal(),
        )
        .map_err(fail)?;
        let mut step = ctx.step(None).await.map_err(fail)?;
        // TLS (2-3 legs), NTLM (2), pubKeyAuth, credentials: a host that keeps asking is
        // broken or hostile.
        for leg in 0..10 {
            let resp = self
                .handshake_leg_with(CREDSSP, &step.token)
                .await
                .map_err(|e| self.leg_error(e))?;
            let status = resp.status();
            let reply = reply_token(resp.headers(), CREDSSP);
            drain(resp.into_body(), max_body)
                .await
                .map_err(|e| self.leg_error(e))?
                .ok_or_else(|| handshake_err("oversized handshake response body".into()))?;
            if step.done {
                // The credentials went out: the host now logs the account on.
                return match status {
                    s if s.is_success() => Ok(ctx),
                    StatusCode::UNAUTHORIZED => Err(rejected()),
                    other => Err(handshake_err(format!(
                        "unexpected status {other} after the delegated credentials"
                    ))),
                };
            }
            match status {
                StatusCode::UNAUTHORIZED if reply.is_none() && leg == 0 => {
                    return Err(handshake_err(
                        "host did not answer the CredSSP handshake (is CredSSP enabled for its WinRM service?)"
                            .into(),
                    ))
                }
                StatusCode::UNAUTHORIZED if reply.is_none() && ctx.is_authenticating() => {
                    return Err(rejected())
                }
                StatusCode::UNAUTHORIZED => {
                    step = ctx.step(reply.as_deref()).await.map_err(fail)?;
                }
                other => {
                    return Err(handshake_err(format!(
                        "unexpected status {other} during the CredSSP handshake"
                    )))
                }
            }
        }
        Err(handshake_err("CredSSP handshake did not finish".into()))
    }
}

pub(super) fn credssp_error(host: &str, source: CredSspError) -> BackendError {
    BackendError::CredSsp {
        host: host.to_owned(),
        source: Box::new(source),
    }
}

/// Finds the NTLM token in `WWW-Authenticate: Negotiate <b64>` or `NTLM <b64>`.
fn challenge_token(resp: &Response<Incoming>) -> Option<Vec<u8>> {
    resp.headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|item| {
            let (scheme, token) = item.trim().split_once(' ')?;
            if scheme.eq_ignore_ascii_case(NEGOTIATE) || scheme.eq_ignore_ascii_case("NTLM") {
                base64::engine::general_purpose::STANDARD
                    .decode(token.trim())
                    .ok()
            } else {
                None
            }
        })
}

/// A client context the 401 exchange drives (sspi Kerberos/Negotiate, GSSAPI delegation).
trait TokenContext {
    /// One handshake step; `None` on the first.
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError>;
    /// Whether the context is complete.
    fn established(&self) -> bool;
}

/// An sspi Kerberos/Negotiate context with the host name for its errors.
struct SspiToken<'a> {
    ctx: KerberosClient,
    host: &'a str,
}

impl TokenContext for SspiToken<'_> {
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError> {
        self.ctx
            .step(input)
            .await
            .map_err(|source| BackendError::Kerberos {
                host: self.host.to_owned(),
                source: Box::new(source),
            })
    }

    fn established(&self) -> bool {
        self.ctx.is_established()
    }
}

/// A GSSAPI delegation context with the host name for its errors.
#[cfg(feature = "delegate")]
struct GssToken<'a> {
    ctx: DelegateClient,
    host: &'a str,
}

#[cfg(feature = "delegate")]
impl TokenContext for GssToken<'_> {
    async fn next(&mut self, input: Option<&[u8]>) -> Result<Step, BackendError> {
        self.ctx
            .step(input)
            .await
            .map_err(|source| BackendError::Delegate {
                host: self.host.to_owned(),
                source: Box::new(source),
            })
    }

    fn established(&self) -> bool {
        self.ctx.is_established()
    }
}
