//! Authentication of the test host's clients: an NTLM acceptor (sspi server side) and the
//! Basic check.
//!
//! Owns the per-connection NTLM acceptor and the account table lookup. PROTOCOL.md §10
//! security trap: sspi's raw `Ntlm` acceptor takes the user from the client's message and
//! checks only the password it was given, so the password must be looked up by the user
//! name the client sent (`query_context_names`) and handed over with
//! `custom_set_auth_identity` before `complete_auth_token` verifies the response and MIC.

use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, CredentialUse, DataRepresentation, Ntlm,
    SecurityBuffer, SecurityStatus, ServerRequestFlags, Sspi, SspiEx, SspiImpl, Username,
    UsernameParts,
};
use subtle::ConstantTimeEq;

/// Why authentication failed (never says which part was wrong to the client).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// The token is not an NTLM message we expect at this point.
    #[error("unexpected ntlm token")]
    UnexpectedToken,
    /// The user is not in the account table.
    #[error("unknown user")]
    UnknownUser,
    /// sspi rejected the exchange (wrong password, bad MIC, ...).
    #[error("ntlm {step} failed")]
    Sspi {
        /// Step name.
        step: &'static str,
        /// The package error.
        #[source]
        source: sspi::Error,
    },
}

/// The host's accounts: (`user` or `DOMAIN\user`, password).
#[derive(Clone, Default)]
pub(crate) struct Accounts {
    entries: Vec<(String, zeroize::Zeroizing<String>)>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(u, _)| u))
            .finish()
    }
}

// === impl Accounts ===

impl Accounts {
    /// Builds the table from (user, password) pairs.
    pub(crate) fn new(users: &[(String, String)]) -> Self {
        Self {
            entries: users
                .iter()
                .map(|(u, p)| (u.clone(), zeroize::Zeroizing::new(p.clone())))
                .collect(),
        }
    }

    /// Finds the password for a client-supplied name (`user`, `DOM\user`, `user@dom`).
    /// Account names compare case-insensitively; a configured domain must match too.
    fn password_for(&self, client: &Username) -> Option<&str> {
        let (client_domain, client_account) = split(client);
        self.entries.iter().find_map(|(name, password)| {
            let configured = Username::parse(name).ok()?;
            let (domain, account) = split(&configured);
            let account_ok = account.eq_ignore_ascii_case(client_account);
            let domain_ok = match domain {
                None => true,
                Some(d) => client_domain.is_some_and(|c| c.eq_ignore_ascii_case(d)),
            };
            (account_ok && domain_ok).then_some(password.as_str())
        })
    }

    /// Checks a Basic `user:password`; returns the account name on success.
    pub(crate) fn check_basic(&self, user: &str, password: &str) -> Option<String> {
        let client = Username::parse(user).ok()?;
        let expected = self.password_for(&client)?;
        let ok: bool = expected.as_bytes().ct_eq(password.as_bytes()).into();
        ok.then(|| split(&client).1.to_owned())
    }
}

/// (domain or UPN suffix, account name).
fn split(name: &Username) -> (Option<&str>, &str) {
    match name.parts() {
        UsernameParts::UserPrincipalName(p) => (Some(p.suffix()), p.account_name()),
        UsernameParts::DownLevelLogonName(p) => (p.netbios_domain(), p.account_name()),
    }
}

/// Result of one acceptor step.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send this CHALLENGE back in a 401.
    Challenge(Vec<u8>),
    /// Authenticated as this account name.
    Done(String),
}

/// Server side of one connection's NTLM context; after [`Step::Done`] it seals and
/// unseals that connection's messages.
pub(crate) struct NtlmAcceptor {
    ctx: Ntlm,
    creds: Option<AuthIdentityBuffers>,
    challenged: bool,
    user: Option<String>,
}

impl std::fmt::Debug for NtlmAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmAcceptor")
            .field("challenged", &self.challenged)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

// === impl NtlmAcceptor ===

impl NtlmAcceptor {
    /// A fresh acceptor expecting a NEGOTIATE message. `channel_binding` is the host's own
    /// `tls-server-end-point` data when it runs inside TLS: a client that sends a binding
    /// must match it (one that sends none is accepted, like Windows' "Relaxed" hardening).
    pub(crate) fn new(channel_binding: Option<&[u8]>) -> Result<Self, AuthError> {
        let mut ctx = Ntlm::new();
        if let Some(cbt) = channel_binding {
            ctx.set_channel_bindings(cbt);
        }
        // No auth data: the password is supplied per user on the last leg (see module doc).
        let acquired = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .execute(&mut ctx)
            .map_err(|source| AuthError::Sspi {
                step: "acquire credentials",
                source,
            })?;
        Ok(Self {
            ctx,
            creds: acquired.credentials_handle,
            challenged: false,
            user: None,
        })
    }

    /// The authenticated account, once done.
    pub(crate) fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The established context, for sealing (only after [`Step::Done`]).
    pub(crate) fn context(&mut self) -> Option<&mut Ntlm> {
        self.user.is_some().then_some(&mut self.ctx)
    }

    /// Feeds one client token (NEGOTIATE, then AUTHENTICATE).
    pub(crate) fn step(&mut self, token: &[u8], accounts: &Accounts) -> Result<Step, AuthError> {
        if self.user.is_some() {
            return Err(AuthError::UnexpectedToken);
        }
        let step = if self.challenged {
            "authenticate"
        } else {
            "negotiate"
        };
        let mut input = vec![SecurityBuffer::new(token.to_vec(), BufferType::Token)];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ctx
            .accept_security_context()
            .with_credentials_handle(&mut self.creds)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let result = self
            .ctx
            .accept_security_context_impl(builder)
            .and_then(|mut g| g.resolve_to_result())
            .map_err(|source| AuthError::Sspi { step, source })?;
        if !self.challenged {
            if result.status != SecurityStatus::ContinueNeeded {
                return Err(AuthError::UnexpectedToken);
            }
            self.challenged = true;
            let challenge = output
                .into_iter()
                .next()
                .map(|b| b.buffer)
                .unwrap_or_default();
            return Ok(Step::Challenge(challenge));
        }
        // Last leg: the user name comes from the client's AUTHENTICATE message.
        let names = self
            .ctx
            .query_context_names()
            .map_err(|source| AuthError::Sspi { step, source })?;
        let password = accounts
            .password_for(&names.username)
            .ok_or(AuthError::UnknownUser)?;
        let identity = AuthIdentity {
            username: names.username.clone(),
            password: password.to_owned().into(),
        };
        self.ctx
            .custom_set_auth_identity(identity)
            .map_err(|source| AuthError::Sspi { step, source })?;
        self.ctx
            .complete_auth_token(&mut [])
            .map_err(|source| AuthError::Sspi { step, source })?;
        let account = split(&names.username).1.to_owned();
        self.user = Some(account.clone());
        Ok(Step::Done(account))
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code: panics are the failure report"
    )]

    use super::*;
    use crate::backend::ntlm::{self, NtlmClient};

    fn accounts() -> Accounts {
        Accounts::new(&[
            ("alice".into(), "alice-pw".into()),
            ("CORP\\bob".into(), "bob-pw".into()),
        ])
    }

    /// Runs the three legs in memory; `client_cert`/`host_cert` stand for the certificate the
    /// client saw and the one the host holds.
    fn handshake(
        user: &str,
        password: &str,
        client_cert: Option<&[u8]>,
        host_cert: Option<&[u8]>,
    ) -> Result<(NtlmClient, NtlmAcceptor, String), AuthError> {
        let binding = host_cert.map(ntlm::tls_server_end_point);
        let mut acceptor = NtlmAcceptor::new(binding.as_deref())?;
        let mut client = NtlmClient::new(user, password, "host.example").unwrap();
        let negotiate = client.negotiate().unwrap();
        let Step::Challenge(challenge) = acceptor.step(&negotiate, &accounts())? else {
            panic!("expected a challenge")
        };
        if let Some(cert) = client_cert {
            client.set_tls_server_end_point(cert);
        }
        let authenticate = client.authenticate(&challenge).unwrap();
        match acceptor.step(&authenticate, &accounts())? {
            Step::Done(user) => Ok((client, acceptor, user)),
            Step::Challenge(_) => panic!("expected completion"),
        }
    }

    #[test]
    fn accepts_right_password_and_seals_both_ways() {
        let (mut client, mut acceptor, user) = handshake("alice", "alice-pw", None, None).unwrap();
        assert_eq!(user, "alice");
        for i in 0..3 {
            let msg = format!("request {i}");
            let sealed = client.seal(msg.as_bytes()).unwrap();
            assert_ne!(sealed.data, msg.as_bytes());
            let ctx = acceptor.context().unwrap();
            let plain = ntlm::unseal(ctx, &sealed.header, &sealed.data).unwrap();
            assert_eq!(plain, msg.as_bytes());
            let reply = ntlm::seal(ctx, b"reply").unwrap();
            assert_eq!(client.unseal(&reply.header, &reply.data).unwrap(), b"reply");
        }
        // A replayed message has a stale sequence number.
        let sealed = client.seal(b"once").unwrap();
        let ctx = acceptor.context().unwrap();
        ntlm::unseal(ctx, &sealed.header, &sealed.data).unwrap();
        assert!(ntlm::unseal(ctx, &sealed.header, &sealed.data).is_err());
    }

    #[test]
    fn password_is_checked_against_the_named_user() {
        // PROTOCOL.md §10 trap: another account's valid password must not work.
        assert!(handshake("bob", "alice-pw", None, None).is_err());
        assert!(handshake("CORP\\bob", "alice-pw", None, None).is_err());
        assert!(handshake("alice", "wrong", None, None).is_err());
        assert!(matches!(
            handshake("mallory", "alice-pw", None, None),
            Err(AuthError::UnknownUser)
        ));
        // bob's entry names a domain: it must match.
        assert!(handshake("OTHER\\bob", "bob-pw", None, None).is_err());
        assert_eq!(
            handshake("CORP\\bob", "bob-pw", None, None).unwrap().2,
            "bob"
        );
        assert_eq!(
            handshake("corp\\BOB", "bob-pw", None, None).unwrap().2,
            "BOB"
        );
    }

    #[test]
    fn channel_binding_must_match_when_sent() {
        let host_cert = b"host certificate der".as_slice();
        assert!(handshake("alice", "alice-pw", Some(host_cert), Some(host_cert)).is_ok());
        // A client that saw another certificate (a relay in the middle) is refused.
        assert!(handshake("alice", "alice-pw", Some(b"relay cert"), Some(host_cert)).is_err());
        // No binding from the client is accepted (Windows "Relaxed" hardening).
        assert!(handshake("alice", "alice-pw", None, Some(host_cert)).is_ok());
    }

    #[test]
    fn basic_checks_user_and_password() {
        let a = accounts();
        assert_eq!(a.check_basic("alice", "alice-pw").as_deref(), Some("alice"));
        assert_eq!(a.check_basic("bob", "alice-pw"), None);
        assert_eq!(a.check_basic("CORP\\bob", "bob-pw").as_deref(), Some("bob"));
        assert_eq!(a.check_basic("alice", "alice-pw "), None);
    }
}
