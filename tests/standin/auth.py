"""Authentication and WinRM message encryption for the stand-in host.

Owns: the per-TCP-connection pyspnego acceptor (NTLM raw or SPNEGO tokens, the 401
challenge legs), Basic user:password checks against the users file, and the
multipart/encrypted body format of MS-WSMV 2.2.9.1 (wrap_winrm/unwrap_winrm).
Must not: know about WS-Man; never log or return a password or token.
"""

import base64
import re
import struct

import spnego

BOUNDARY = "Encrypted Boundary"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_PROTOCOL = "application/HTTP-Kerberos-session-encrypted"
CREDSSP_PROTOCOL = "application/HTTP-CredSSP-session-encrypted"
SIXTEEN_KB = 16384


class AuthError(Exception):
    """The credentials or token were rejected."""


def read_users(path):
    """[(domain, user, password)] from lines DOMAIN:user:password (domain may be empty)."""
    users = []
    if not path:
        return users
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split(":", 2)
            if len(parts) == 3:
                users.append((parts[0], parts[1], parts[2]))
    return users


def split_user(name):
    """(domain or None, user) from DOMAIN\\user, user@realm or user."""
    if "\\" in name:
        domain, user = name.split("\\", 1)
        return domain, user
    if "@" in name:
        user, realm = name.split("@", 1)
        return realm, user
    return None, name


def check_basic(users, header_value):
    """Check a Basic credential; returns the principal (DOMAIN\\user or user)."""
    try:
        decoded = base64.b64decode(header_value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise AuthError("malformed basic credential") from None
    if ":" not in decoded:
        raise AuthError("malformed basic credential")
    name, password = decoded.split(":", 1)
    domain, user = split_user(name)
    for line_domain, line_user, line_password in users:
        if line_user.lower() != user.lower():
            continue
        if domain is not None and line_domain and line_domain.lower() != domain.split(".")[0].lower() \
                and line_domain.lower() != domain.lower():
            continue
        if line_password == password:
            return f"{line_domain}\\{line_user}" if line_domain else line_user
    raise AuthError("bad user name or password")


SECPROFILE_MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
UPN_OID = "1.3.6.1.4.1.311.20.2.3"


def _der_string(value):
    """The text of a DER UTF8String/IA5String/PrintableString (as in a UPN otherName)."""
    if len(value) < 2 or value[0] not in (0x0C, 0x16, 0x13):
        return None
    length = value[1]
    offset = 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 2 or len(value) < 2 + n:
            return None
        length = int.from_bytes(value[2:2 + n], "big")
        offset = 2 + n
    if len(value) < offset + length:
        return None
    return value[offset:offset + length].decode("utf-8", errors="replace")


def certificate_user(der, users):
    """Map a verified TLS client certificate to a local account, as Windows' certificate
    mapping does: the UPN in the SAN otherName (1.3.6.1.4.1.311.20.2.3), else the subject CN.
    The user part must be an account in the users file. Returns the UPN (or CN)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    name = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for general in san:
            if isinstance(general, x509.OtherName) and general.type_id.dotted_string == UPN_OID:
                name = _der_string(general.value)
                break
    except x509.ExtensionNotFound:
        pass
    if not name:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(cns[0].value) if cns else None
    if not name:
        raise AuthError("client certificate names no user")
    _, user = split_user(name)
    if not any(line_user.lower() == user.lower() for _, line_user, _ in users):
        raise AuthError("client certificate maps to no local account")
    return name


class SpnegoSession:
    """One connection's server security context."""

    def __init__(self, mode, first_token, scheme="Negotiate"):
        # A raw NTLM token (NTLMSSP\0) gets the NTLM acceptor in ntlm mode; SPNEGO tokens and
        # the negotiate mode use the Negotiate acceptor, which also takes raw NTLM (and Kerberos
        # when python-gssapi and a keytab in KRB5_KTNAME are there). The CredSSP scheme gets the
        # CredSSP acceptor (its inner NTLM/Negotiate exchange uses the same NTLM_USER_FILE).
        if scheme.lower() == "credssp":
            protocol = "credssp"
        elif mode == "ntlm" and first_token.startswith(b"NTLMSSP\x00"):
            protocol = "ntlm"
        else:
            protocol = "negotiate"
        self.protocol = protocol
        self.ctx = spnego.server(protocol=protocol, service="HTTP")

    def step(self, token):
        try:
            return self.ctx.step(token)
        except Exception as exc:  # pyspnego raises several error types for bad tokens
            raise AuthError(f"security token rejected: {type(exc).__name__}") from None

    @property
    def complete(self):
        return self.ctx.complete

    @property
    def principal(self):
        return self.ctx.client_principal

    @property
    def delegated_user(self):
        """DOMAIN\\user (or user) of the password credentials a CredSSP client delegated in
        its TSCredentials, None for other protocols or other credential kinds. Never the
        password: a test only needs to see that a credential arrived and whose it is."""
        if self.protocol != "credssp" or not self.ctx.complete:
            return None
        cred = self.ctx.get_extra_info("client_credential")
        name = getattr(cred, "username", None)
        if not name:
            return None
        domain = getattr(cred, "domain_name", "") or ""
        return f"{domain}\\{name}" if domain else name

    def unwrap_body(self, body, content_type):
        """Decrypt a multipart/encrypted body; returns (plaintext, protocol string)."""
        m = re.search(r'boundary="?([^";]+)"?', content_type)
        boundary = m.group(1) if m else BOUNDARY
        m = re.search(r'protocol="?([^";]+)"?', content_type)
        protocol = m.group(1) if m else SPNEGO_PROTOCOL
        parts = re.split(rb"--\s*" + re.escape(boundary.encode()) + rb"\r\n", body)
        parts = [p for p in parts if p]
        if len(parts) < 2:
            raise AuthError("encrypted body has no parts")
        out = b""
        for i in range(0, len(parts) - 1, 2):
            header, payload = parts[i], parts[i + 1]
            lm = re.search(rb"Length=(\d+)", header)
            if not lm:
                raise AuthError("encrypted body has no OriginalContent Length")
            expected = int(lm.group(1))
            payload = re.sub(rb"--\s*" + re.escape(boundary.encode()) + rb"--\r\n$", b"", payload)
            prefix = b"\tContent-Type: application/octet-stream\r\n"
            if not payload.startswith(prefix):
                raise AuthError("encrypted part lacks the octet-stream header")
            payload = payload[len(prefix):]
            if len(payload) < 4:
                raise AuthError("encrypted part too short")
            (hlen,) = struct.unpack("<I", payload[:4])
            if hlen > len(payload) - 4:
                raise AuthError("encrypted part header length out of range")
            header_bytes = payload[4:4 + hlen]
            data = payload[4 + hlen:]
            try:
                plain = self.ctx.unwrap_winrm(header_bytes, data)
            except Exception as exc:
                raise AuthError(f"could not decrypt body: {type(exc).__name__}") from None
            if len(plain) != expected:
                raise AuthError(f"decrypted length {len(plain)} does not match Length={expected}")
            out += plain
        return out, protocol

    def wrap_body(self, plaintext, protocol):
        """Encrypt a response body; returns (content type, body).

        CredSSP bodies over 16 KiB go as multipart/x-multi-encrypted: one encrypted part per
        16 KiB chunk (MS-WSMV 2.2.9.1.3)."""
        if protocol == CREDSSP_PROTOCOL and len(plaintext) > SIXTEEN_KB:
            chunks = [plaintext[i:i + SIXTEEN_KB] for i in range(0, len(plaintext), SIXTEEN_KB)]
            kind = "multipart/x-multi-encrypted"
        else:
            chunks = [plaintext]
            kind = "multipart/encrypted"
        body = b""
        for chunk in chunks:
            result = self.ctx.wrap_winrm(chunk)
            length = len(chunk) + result.padding_length
            body += (
                f"--{BOUNDARY}\r\n"
                f"\tContent-Type: {protocol}\r\n"
                f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={length}\r\n"
                f"--{BOUNDARY}\r\n"
                "\tContent-Type: application/octet-stream\r\n"
            ).encode() + struct.pack("<I", len(result.header)) + result.header + result.data
        body += f"--{BOUNDARY}--\r\n".encode()
        content_type = f'{kind};protocol="{protocol}";boundary="{BOUNDARY}"'
        return content_type, body
