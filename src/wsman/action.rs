//! The `wsa:Action` of an envelope as a typed value (DSP0226, MS-WSMV 3.1.4).
//!
//! Owns the mapping between action URIs and [`Action`]. Matching is exact (URIs are
//! case-sensitive); anything unknown is kept verbatim in [`Action::Other`]. It must not
//! guess from partial URIs.

use super::ns::action as uri;

/// A WS-Management action. Responses carry the `...Response` variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// WS-Transfer Create (open a shell).
    Create,
    /// Answer to [`Action::Create`].
    CreateResponse,
    /// WS-Transfer Delete (close a shell).
    Delete,
    /// Answer to [`Action::Delete`].
    DeleteResponse,
    /// WS-Transfer Get.
    Get,
    /// Answer to [`Action::Get`].
    GetResponse,
    /// WS-Transfer Put.
    Put,
    /// Answer to [`Action::Put`].
    PutResponse,
    /// WS-Enumeration Enumerate.
    Enumerate,
    /// Answer to [`Action::Enumerate`].
    EnumerateResponse,
    /// WS-Enumeration Pull.
    Pull,
    /// Answer to [`Action::Pull`].
    PullResponse,
    /// WinRS Command (start a command or a PSRP pipeline).
    Command,
    /// Answer to [`Action::Command`].
    CommandResponse,
    /// WinRS Send (stdin / PSRP input).
    Send,
    /// Answer to [`Action::Send`].
    SendResponse,
    /// WinRS Receive (long poll for output).
    Receive,
    /// Answer to [`Action::Receive`].
    ReceiveResponse,
    /// WinRS Signal.
    Signal,
    /// Answer to [`Action::Signal`].
    SignalResponse,
    /// WinRS Connect (disconnected PSRP sessions).
    Connect,
    /// Answer to [`Action::Connect`].
    ConnectResponse,
    /// WinRS Disconnect.
    Disconnect,
    /// Answer to [`Action::Disconnect`].
    DisconnectResponse,
    /// WinRS Reconnect.
    Reconnect,
    /// Answer to [`Action::Reconnect`].
    ReconnectResponse,
    /// The WS-Management fault action `http://schemas.dmtf.org/wbem/wsman/1/wsman/fault`.
    /// The WS-Addressing and WS-Enumeration fault actions stay in [`Action::Other`];
    /// use [`Action::is_fault`] to recognise all three.
    Fault,
    /// Any other action URI, verbatim.
    Other(String),
}

/// Every known variant with its URI, in one table so both directions agree.
const TABLE: &[(Action, &str)] = &[
    (Action::Create, uri::CREATE),
    (Action::CreateResponse, uri::CREATE_RESPONSE),
    (Action::Delete, uri::DELETE),
    (Action::DeleteResponse, uri::DELETE_RESPONSE),
    (Action::Get, uri::GET),
    (Action::GetResponse, uri::GET_RESPONSE),
    (Action::Put, uri::PUT),
    (Action::PutResponse, uri::PUT_RESPONSE),
    (Action::Enumerate, uri::ENUMERATE),
    (Action::EnumerateResponse, uri::ENUMERATE_RESPONSE),
    (Action::Pull, uri::PULL),
    (Action::PullResponse, uri::PULL_RESPONSE),
    (Action::Command, uri::COMMAND),
    (Action::CommandResponse, uri::COMMAND_RESPONSE),
    (Action::Send, uri::SEND),
    (Action::SendResponse, uri::SEND_RESPONSE),
    (Action::Receive, uri::RECEIVE),
    (Action::ReceiveResponse, uri::RECEIVE_RESPONSE),
    (Action::Signal, uri::SIGNAL),
    (Action::SignalResponse, uri::SIGNAL_RESPONSE),
    (Action::Connect, uri::CONNECT),
    (Action::ConnectResponse, uri::CONNECT_RESPONSE),
    (Action::Disconnect, uri::DISCONNECT),
    (Action::DisconnectResponse, uri::DISCONNECT_RESPONSE),
    (Action::Reconnect, uri::RECONNECT),
    (Action::ReconnectResponse, uri::RECONNECT_RESPONSE),
    (Action::Fault, uri::FAULT),
];

// === impl Action ===

impl Action {
    /// Maps an action URI (already trimmed of surrounding whitespace) to an [`Action`].
    pub fn from_uri(uri: &str) -> Action {
        TABLE
            .iter()
            .find(|(_, u)| *u == uri)
            .map(|(a, _)| a.clone())
            .unwrap_or_else(|| Action::Other(uri.to_owned()))
    }

    /// The action URI.
    pub fn uri(&self) -> &str {
        match self {
            Action::Other(u) => u,
            known => TABLE
                .iter()
                .find(|(a, _)| a == known)
                .map(|(_, u)| *u)
                // INVARIANT: every variant except `Other` is in TABLE (checked by a test).
                .unwrap_or(""),
        }
    }

    /// A short, bounded name for metrics and logs: the last segment of a known action's
    /// URI (`Create`, `Receive`, ...), `Other` for any other URI (never the URI itself, so
    /// a client cannot create label values).
    pub fn label(&self) -> &'static str {
        TABLE
            .iter()
            .find(|(a, _)| a == self)
            .and_then(|(_, u)| u.rsplit('/').next())
            .unwrap_or("Other")
    }

    /// True for the WS-Management, WS-Addressing and WS-Enumeration fault actions.
    pub fn is_fault(&self) -> bool {
        match self {
            Action::Fault => true,
            Action::Other(u) => u == uri::ADDRESSING_FAULT || u == uri::ENUMERATION_FAULT,
            _ => false,
        }
    }

    /// The response action a server answers this request action with, if it is a known
    /// request.
    pub fn response(&self) -> Option<Action> {
        Some(match self {
            Action::Create => Action::CreateResponse,
            Action::Delete => Action::DeleteResponse,
            Action::Get => Action::GetResponse,
            Action::Put => Action::PutResponse,
            Action::Enumerate => Action::EnumerateResponse,
            Action::Pull => Action::PullResponse,
            Action::Command => Action::CommandResponse,
            Action::Send => Action::SendResponse,
            Action::Receive => Action::ReceiveResponse,
            Action::Signal => Action::SignalResponse,
            Action::Connect => Action::ConnectResponse,
            Action::Disconnect => Action::DisconnectResponse,
            Action::Reconnect => Action::ReconnectResponse,
            _ => return None,
        })
    }

    /// Every known (non-`Other`) variant, for exhaustive tests and tables.
    pub fn known() -> impl Iterator<Item = Action> {
        TABLE.iter().map(|(a, _)| a.clone())
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.uri())
    }
}
