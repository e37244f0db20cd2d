//! Namespace and action URI constants of WS-Management, WS-Addressing, WS-Transfer,
//! WS-Enumeration, WinRS and PSRP (MS-WSMV 2.2.1, DSP0226 Annex A).
//!
//! Owns only string constants; parsing compares namespace URIs against these, never prefixes.

/// SOAP 1.2 envelope namespace (`s:`).
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing 2004/08 (`a:` in Windows replies, `wsa:` from pypsrp).
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Transfer (`x:`): Create/Get/Put/Delete and `ResourceCreated`.
pub const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// WS-Enumeration (`n:`/`wsen:`).
pub const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// WS-Eventing (`e:`), declared by Windows on fault envelopes.
pub const EVENTING: &str = "http://schemas.xmlsoap.org/ws/2004/08/eventing";
/// DMTF WS-Management (`w:`/`wsman:`).
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft WS-Management extensions (`p:`/`wsmv:`), MS-WSMV 2.2.1.
pub const WSMV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// Windows Remote Shell (`rsp:`), MS-WSMV 2.2.4.
pub const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// Windows WS-Management fault detail (`f:`), the `WSManFault` element.
pub const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
/// PSRP payload elements inside WinRS bodies (`creationXml`, `connectXml`, ...).
pub const POWERSHELL: &str = "http://schemas.microsoft.com/powershell";
/// WS-Management identity (`wsmid:`): the Identify request and its response (DSP0226 §11).
pub const IDENTITY: &str = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd";
/// The reserved `xml:` namespace (for `xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// The anonymous reply address Windows puts in `a:To` of responses and clients put in
/// `wsa:ReplyTo/wsa:Address`.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Resource URI of the WinRS cmd shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// Prefix of PSRP resource URIs (`.../powershell/<ConfigurationName>`).
pub const RESOURCE_POWERSHELL_PREFIX: &str = "http://schemas.microsoft.com/powershell/";

/// Action URIs (DSP0226 and MS-WSMV 3.1.4).
pub mod action {
    /// WS-Transfer Create.
    pub const CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
    /// WS-Transfer CreateResponse.
    pub const CREATE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse";
    /// WS-Transfer Delete.
    pub const DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
    /// WS-Transfer DeleteResponse.
    pub const DELETE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse";
    /// WS-Transfer Get.
    pub const GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
    /// WS-Transfer GetResponse.
    pub const GET_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
    /// WS-Transfer Put.
    pub const PUT: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put";
    /// WS-Transfer PutResponse.
    pub const PUT_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/PutResponse";
    /// WS-Enumeration Enumerate.
    pub const ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
    /// WS-Enumeration EnumerateResponse.
    pub const ENUMERATE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse";
    /// WS-Enumeration Pull.
    pub const PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
    /// WS-Enumeration PullResponse.
    pub const PULL_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse";
    /// WinRS Command.
    pub const COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
    /// WinRS CommandResponse.
    pub const COMMAND_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse";
    /// WinRS Send.
    pub const SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
    /// WinRS SendResponse.
    pub const SEND_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse";
    /// WinRS Receive.
    pub const RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
    /// WinRS ReceiveResponse.
    pub const RECEIVE_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse";
    /// WinRS Signal.
    pub const SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
    /// WinRS SignalResponse.
    pub const SIGNAL_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse";
    /// WinRS Connect (disconnected sessions, MS-PSRP 3.1.5.3.14).
    pub const CONNECT: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect";
    /// WinRS ConnectResponse.
    pub const CONNECT_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ConnectResponse";
    /// WinRS Disconnect.
    pub const DISCONNECT: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect";
    /// WinRS DisconnectResponse.
    pub const DISCONNECT_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/DisconnectResponse";
    /// WinRS Reconnect.
    pub const RECONNECT: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect";
    /// WinRS ReconnectResponse.
    pub const RECONNECT_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReconnectResponse";
    /// WS-Management fault action (the one Windows uses for `w:` subcodes).
    pub const FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
    /// WS-Addressing fault action (Windows uses it for `a:` subcodes).
    pub const ADDRESSING_FAULT: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault";
    /// WS-Enumeration fault action.
    pub const ENUMERATION_FAULT: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault";
}

/// `rsp:CommandState/@State` values (MS-WSMV 2.2.4.6).
pub mod command_state {
    /// The command finished; `rsp:ExitCode` follows.
    pub const DONE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
    /// The command is queued.
    pub const PENDING: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Pending";
    /// The command is running.
    pub const RUNNING: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
}

/// `rsp:Signal/rsp:Code` values (MS-WSMV 2.2.5.6, MS-PSRP 3.1.5.3.9).
pub mod signal {
    /// Prefix of the WinRS signal codes; the last segment is matched case-insensitively.
    pub const SHELL_PREFIX: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/";
    /// Prefix of the PowerShell signal codes.
    pub const POWERSHELL_PREFIX: &str = "http://schemas.microsoft.com/powershell/signal/";
    /// Terminate the command.
    pub const TERMINATE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
    /// Ctrl+C.
    pub const CTRL_C: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c";
    /// Ctrl+Break.
    pub const CTRL_BREAK: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break";
    /// PSRP stop-pipeline code, the MS-WSMV spelling.
    pub const PS_CTRL_C: &str = "http://schemas.microsoft.com/powershell/signal/ctrl_c";
    /// PSRP stop-pipeline code, the MS-PSRP 3.1.5.3.9 spelling (sic).
    pub const PS_CRTL_C: &str = "http://schemas.microsoft.com/powershell/signal/crtl_c";
}

/// `w:FaultDetail` URIs Windows attaches to some faults (DSP0226 Annex A).
pub mod fault_detail {
    /// Attached to `w:InvalidSelectors`.
    pub const UNEXPECTED_SELECTORS: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors";
    /// Attached to `w:InvalidParameter`.
    pub const INVALID_VALUE: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue";
    /// Attached to `w:EncodingLimit` for oversized envelopes.
    pub const MAX_ENVELOPE_SIZE: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize";
}
