#!/usr/bin/env python3
"""A minimal WinRM-shaped HTTP peer for hopgate's backend client tests.

It shares no code with hopgate: NTLM and WinRM message encryption come from pyspnego
(`spnego.server`, `wrap_winrm`, `unwrap_winrm`), the multipart framing follows pypsrp's
`encryption.py`. Two modes:

* ``ntlm`` (plain http): the 401 Negotiate/NTLM handshake on a keep-alive connection, then
  encrypted bodies. Accounts come from ``NTLM_USER_FILE`` (``DOMAIN:user:password`` lines).
  With ``--cert/--key`` the same runs inside TLS: the acceptor then requires channel
  binding (``tls-server-end-point``, SHA-256 of the certificate) and bodies are plaintext.
* ``basic`` (https): ``Authorization: Basic`` checked against ``--user user:password``.

Each request's decrypted body selects a behaviour, so tests can drive failures:
``CLOSE`` answer then close the socket silently; ``DROP`` close without answering;
``REAUTH:<id>`` the first time forget the security context and answer 401;
``FAULT`` answer 500 with an encrypted SOAP fault; ``SLEEP:<seconds>`` wait, then echo;
anything else is echoed back as ``ECHO:<body>``.

Prints ``{"port": N}`` on stdout once listening; writes one JSON line per request to
``--log`` (connection id, user, status, plaintext length).
"""

import argparse
import base64
import json
import os
import re
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hashlib

import spnego
from spnego.channel_bindings import GssChannelBindings

BOUNDARY = "Encrypted Boundary"
PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
FAULT = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    b"<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code>"
    b'<s:Reason><s:Text xml:lang="en-US">canned fault</s:Text></s:Reason>'
    b"</s:Fault></s:Body></s:Envelope>"
)

LOG_LOCK = threading.Lock()
CONN_IDS = iter(range(1, 1 << 30))
REAUTH_SEEN = set()


def log(args, **fields):
    if not args.log:
        return
    with LOG_LOCK, open(args.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(fields) + "\n")


def wrap(ctx, plaintext):
    """pypsrp WinRMEncryption._wrap_message + closing boundary."""
    res = ctx.wrap_winrm(plaintext)
    length = len(plaintext) + res.padding_length
    head = "\r\n".join(
        [
            "--" + BOUNDARY,
            "\tContent-Type: " + PROTOCOL,
            "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=%d" % length,
            "--" + BOUNDARY,
            "\tContent-Type: application/octet-stream",
            "",
        ]
    ).encode()
    return head + struct.pack("<I", len(res.header)) + res.header + res.data + ("--%s--\r\n" % BOUNDARY).encode()


def unwrap(ctx, body):
    """pypsrp WinRMEncryption.unwrap_message for one part."""
    parts = [p for p in re.split(rb"--\s*" + re.escape(BOUNDARY.encode()) + rb"\r\n", body) if p]
    header, payload = parts[0].strip(), parts[1]
    expected = int(header.split(b"Length=")[1])
    payload = re.sub(rb"--\s*" + re.escape(BOUNDARY.encode()) + rb"--\r\n$", b"", payload)
    payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"")
    hlen = struct.unpack("<I", payload[:4])[0]
    plain = ctx.unwrap_winrm(payload[4 : 4 + hlen], payload[4 + hlen :])
    if len(plain) != expected:
        raise ValueError("length mismatch %d != %d" % (len(plain), expected))
    return plain


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.conn_id = next(CONN_IDS)
        self.ctx = None
        self.user = None

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def _read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        body = self._read_body()
        if self.server.args.mode == "basic":
            return self._basic(body)
        return self._ntlm(body)

    # --- Basic over https -------------------------------------------------------------
    def _basic(self, body):
        args = self.server.args
        auth = self.headers.get("Authorization", "")
        ok = False
        if auth.startswith("Basic "):
            try:
                ok = base64.b64decode(auth[6:]).decode() == args.user
            except Exception:
                ok = False
        if not ok:
            log(args, conn=self.conn_id, status=401, auth="basic")
            return self._send(401, headers=[("WWW-Authenticate", 'Basic realm="WSMAN"')])
        self.user = args.user.split(":", 1)[0]
        status, reply = self._behaviour(body)
        if reply is None:
            return
        log(args, conn=self.conn_id, status=status, user=self.user, length=len(body))
        self._send(status, reply, [("Content-Type", "application/soap+xml;charset=UTF-8")])

    # --- NTLM + message encryption over http --------------------------------------------
    def _ntlm(self, body):
        args = self.server.args
        auth = self.headers.get("Authorization")
        if auth:
            scheme, _, b64 = auth.partition(" ")
            token = base64.b64decode(b64)
            if token.startswith(b"NTLMSSP\x00\x01"):
                self.ctx = spnego.server(protocol="ntlm", channel_bindings=self.server.cbt)
                self.user = None
            if self.ctx is None:
                return self._challenge_again()
            try:
                out = self.ctx.step(token)
            except Exception as e:  # bad password, bad MIC...
                log(args, conn=self.conn_id, status=401, leg="authenticate", error=type(e).__name__)
                self.ctx = None
                return self._challenge_again()
            if not self.ctx.complete:
                log(args, conn=self.conn_id, status=401, leg="negotiate")
                return self._send(401, headers=[("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(out).decode()))])
            self.user = self.ctx.client_principal
            log(args, conn=self.conn_id, status=200, leg="complete", user=self.user, length=len(body))
            # The handshake finishes on the empty POST (PROTOCOL.md §10).
            return self._send(200)
        if self.ctx is None or not self.ctx.complete:
            return self._challenge_again()
        if self.server.cbt is not None:
            # Inside TLS: plaintext bodies, the handshake was bound to the channel.
            status, reply = self._behaviour(body)
            if reply is None:
                return
            log(args, conn=self.conn_id, status=status, user=self.user, length=len(body))
            return self._send(status, reply, [("Content-Type", "application/soap+xml;charset=UTF-8")])
        if "multipart/encrypted" not in self.headers.get("Content-Type", ""):
            log(args, conn=self.conn_id, status=400, error="plaintext body")
            return self._send(400)
        plain = unwrap(self.ctx, body)
        if plain.startswith(b"REAUTH:") and plain not in REAUTH_SEEN:
            REAUTH_SEEN.add(plain)
            self.ctx = None
            log(args, conn=self.conn_id, status=401, user=self.user, length=len(plain), reauth=True)
            return self._challenge_again()
        status, reply = self._behaviour(plain)
        if reply is None:
            return
        log(args, conn=self.conn_id, status=status, user=self.user, length=len(plain))
        self._send(status, wrap(self.ctx, reply), [("Content-Type", 'multipart/encrypted;protocol="%s";boundary="%s"' % (PROTOCOL, BOUNDARY))])

    def _challenge_again(self):
        self._send(401, headers=[("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")])

    def _behaviour(self, plain):
        """Returns (status, reply) or (None, None) when the connection was dropped."""
        if plain.startswith(b"DROP"):
            log(self.server.args, conn=self.conn_id, status=0, user=self.user, length=len(plain), dropped=True)
            self.close_connection = True
            return None, None
        if plain.startswith(b"CLOSE"):
            # Answer normally, then close without a Connection: close header.
            self.close_connection = True
        if plain.startswith(b"FAULT"):
            return 500, FAULT
        if plain.startswith(b"SLEEP:"):
            time.sleep(float(plain[6:].split()[0].decode()))
        return 200, b"ECHO:" + plain


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["ntlm", "basic"], default="ntlm")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user", help="user:password for basic mode")
    p.add_argument("--cbt-from", help="certificate whose hash the NTLM acceptor expects")
    p.add_argument("--log")
    args = p.parse_args()
    if args.mode == "ntlm" and not os.environ.get("NTLM_USER_FILE"):
        sys.exit("NTLM_USER_FILE must name a DOMAIN:user:password file")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.args = args
    server.cbt = None
    if args.cert:
        # --cbt-from lets a test bind to a different certificate, to prove the check runs.
        with open(args.cbt_from or args.cert, encoding="ascii") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        server.cbt = GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
