"""WS-Man envelope parsing and Windows-shaped response building for the stand-in host.

Owns: reading a SOAP 1.2 / WS-Man request by namespace (never by prefix) and writing
responses and faults in the shape a real Windows WinRM service sends them (namespace
prefixes, header order and fault texts copied from the pypsrp corpus recordings).
Must not: know about shells, commands or authentication.
"""

import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

NS_S = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMV = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_RSP = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_PS = "http://schemas.microsoft.com/powershell"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_IDENTITY = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
ACTION_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ACTION_ADDRESSING_FAULT = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"

ACTION_CREATE = TRANSFER + "Create"
ACTION_DELETE = TRANSFER + "Delete"
ACTION_GET = TRANSFER + "Get"
ACTION_COMMAND = SHELL + "Command"
ACTION_SEND = SHELL + "Send"
ACTION_RECEIVE = SHELL + "Receive"
ACTION_SIGNAL = SHELL + "Signal"
ACTION_DISCONNECT = SHELL + "Disconnect"
ACTION_RECONNECT = SHELL + "Reconnect"
ACTION_CONNECT = SHELL + "Connect"
ACTION_ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
NS_ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
RESOURCE_SHELLS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
RESOURCE_SHELL_COMMANDS = RESOURCE_SHELLS + "/Command"

RESOURCE_CMD = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RESOURCE_PS_PREFIX = "http://schemas.microsoft.com/powershell/"

STATE_DONE = SHELL + "CommandState/Done"
STATE_RUNNING = SHELL + "CommandState/Running"

# Fault codes seen from Windows (pypsrp corpus, MS-WSMV).
CODE_TIMED_OUT = 2150858793
CODE_INVALID_SELECTORS = 2150858843
CODE_ACTION_NOT_SUPPORTED = 2150858771
CODE_INVALID_PARAMETER = 2150858882
CODE_INTERNAL = 2150858752

_HEADER_NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"'
)


class WsmanError(Exception):
    """A request that must be answered with a WS-Man fault."""

    def __init__(self, subcode, reason, wsman_code, message=None, sender=True, detail=None, message_xml=None):
        super().__init__(reason)
        self.message_xml = message_xml
        self.subcode = subcode
        self.reason = reason
        self.wsman_code = wsman_code
        self.message = message or reason
        self.sender = sender
        self.detail = detail


def timed_out():
    text = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
    return WsmanError("w:TimedOut", text, CODE_TIMED_OUT, sender=False)


def invalid_selectors(message=None):
    return WsmanError(
        "w:InvalidSelectors",
        "The WS-Management service cannot process the request because the request contained invalid selectors "
        "for the resource. ",
        CODE_INVALID_SELECTORS,
        message=message
        or "The request for the Windows Remote Shell with ShellId is not valid because the shell was not found. ",
        detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors",
    )


def unknown_command_id():
    return invalid_selectors(
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does not "
        "exist. Either the command has completed execution or the client specified an invalid command identifier. "
    )


def action_not_supported(action):
    return WsmanError(
        "a:ActionNotSupported",
        "The action is not supported by the service. ",
        CODE_ACTION_NOT_SUPPORTED,
        message=f"The WS-Management service cannot process the request. The action {action} is not supported. ",
    )


def invalid_parameter(message):
    return WsmanError(
        "w:InvalidParameter",
        "The parameter is incorrect. ",
        CODE_INVALID_PARAMETER,
        message=message,
    )


def internal_error(message):
    return WsmanError("w:InternalError", "The service encountered an internal error. ", CODE_INTERNAL,
                      message=message, sender=False)


class Request:
    """A parsed WS-Man request: the fields the stand-in acts on."""

    def __init__(self, root):
        self.root = root
        header = root.find(f"{{{NS_S}}}Header")
        self.body = root.find(f"{{{NS_S}}}Body")
        if header is None or self.body is None:
            raise invalid_parameter("the envelope has no s:Header or s:Body")
        self.header = header
        self.action = _text(header.find(f"{{{NS_WSA}}}Action"))
        self.message_id = _text(header.find(f"{{{NS_WSA}}}MessageID"))
        self.to = _text(header.find(f"{{{NS_WSA}}}To"))
        self.resource_uri = _text(header.find(f"{{{NS_WSMAN}}}ResourceURI"))
        self.operation_timeout = parse_duration(_text(header.find(f"{{{NS_WSMAN}}}OperationTimeout")))
        max_env = _text(header.find(f"{{{NS_WSMAN}}}MaxEnvelopeSize"))
        try:
            self.max_envelope_size = int(max_env) if max_env else 153600
        except ValueError:
            self.max_envelope_size = 153600
        self.selectors = {}
        for sel in header.iter(f"{{{NS_WSMAN}}}Selector"):
            self.selectors[sel.get("Name", "")] = (sel.text or "").strip()
        self.options = {}
        for opt in header.iter(f"{{{NS_WSMAN}}}Option"):
            self.options[opt.get("Name", "")] = (opt.text or "").strip()
        self.compression = _text(header.find(f"{{{NS_RSP}}}CompressionType"))

    @property
    def shell_id(self):
        return self.selectors.get("ShellId")

    def body_child(self, ns, name):
        return self.body.find(f"{{{ns}}}{name}")


def parse_request(data):
    """Parse request bytes into a Request; raises WsmanError on malformed XML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise invalid_parameter(f"the request is not well-formed XML: {exc}") from None
    if root.tag != f"{{{NS_S}}}Envelope":
        raise invalid_parameter("the root element is not s:Envelope")
    return Request(root)


def _text(el):
    if el is None or el.text is None:
        return None
    return el.text.strip()


_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value):
    """xs:duration (PT20S, PT1M, P0DT0H0M20.5S) to seconds, None when absent or odd."""
    if not value:
        return None
    m = _DURATION.match(value)
    if not m:
        return None
    days, hours, minutes, seconds = m.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def new_uuid():
    return str(uuid.uuid4()).upper()


def envelope(action, relates_to, body_xml):
    """A response envelope in the shape Windows sends."""
    return (
        f'<s:Envelope xml:lang="en-US" {_HEADER_NS}><s:Header>'
        f"<a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{new_uuid()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to or '')}</a:RelatesTo>"
        f"</s:Header><s:Body>{body_xml}</s:Body></s:Envelope>"
    ).encode("utf-8")


def fault_envelope(err, relates_to, machine):
    """A SOAP fault shaped like the Windows faults in the corpus (sent with HTTP 500)."""
    code = "s:Sender" if err.sender else "s:Receiver"
    detail = f"<w:FaultDetail>{escape(err.detail)}</w:FaultDetail>" if err.detail else ""
    body = (
        f"<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{escape(err.subcode)}</s:Value>"
        f"</s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">{escape(err.reason)}</s:Text></s:Reason>"
        f"<s:Detail>{detail}<f:WSManFault xmlns:f=\"{NS_FAULT}\" Code=\"{err.wsman_code}\" "
        f"Machine=\"{escape(machine)}\"><f:Message>{err.message_xml or escape(err.message)}</f:Message></f:WSManFault>"
        f"</s:Detail></s:Fault>"
    )
    action = ACTION_ADDRESSING_FAULT if err.subcode.startswith("a:") else ACTION_FAULT
    return envelope(action, relates_to, body)


def identify_response(machine):
    """The IdentifyResponse of a Windows Server 2019 WinRM service (no WS-Addressing header,
    as Windows answers it); `machine` goes nowhere, Windows does not name itself either."""
    del machine
    return (
        f'<s:Envelope xmlns:s="{NS_S}" xmlns:wsmid="{NS_IDENTITY}"><s:Header/><s:Body>'
        f"<wsmid:IdentifyResponse><wsmid:ProtocolVersion>{NS_WSMAN}</wsmid:ProtocolVersion>"
        "<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"
        "<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>"
        "<wsmid:SecurityProfiles><wsmid:SecurityProfileName>"
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
        "</wsmid:SecurityProfileName></wsmid:SecurityProfiles>"
        "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
    ).encode("utf-8")
