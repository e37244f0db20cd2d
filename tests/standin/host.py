#!/usr/bin/env python3
"""A stand-in Windows WinRM host for hopgate's integration tests (shares no code with hopgate).

Owns: the CLI, the HTTP/1.1 keep-alive server (http or https on 127.0.0.1 only), the
per-connection authentication flow (401 legs, connection-bound NTLM/Negotiate, Basic),
WinRM message encryption of bodies, dispatch of WS-Man actions to the WinRS (cmd) and
PSRP (powershell) shells, and one request-log line per request.
Must not: listen anywhere but loopback, log secrets, or share code with the Rust crate.

Usage: host.py --port 0 --scheme http|https [--cert F --key F] --auth ntlm|basic|negotiate
               [--users FILE] --log FILE [--hostname NAME]
Prints `ready port=<port>` once it accepts connections; exits cleanly on SIGTERM.
"""

import argparse
import base64
import os
import signal
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import auth  # noqa: E402
import psrp  # noqa: E402
import reqlog  # noqa: E402
import winrs  # noqa: E402
import wsconfig  # noqa: E402
import wsman  # noqa: E402

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
SPNEGO_SCHEMES = ("negotiate", "ntlm", "kerberos", "credssp")
AUTH_MODES = ("ntlm", "negotiate", "basic", "credssp", "certificate")


class Config:
    def __init__(self, args):
        self.scheme = args.scheme
        self.auth_modes = [m.strip().lower() for m in args.auth.split(",") if m.strip()]
        self.users_file = args.users
        self.users = auth.read_users(args.users)
        self.hostname = args.hostname
        self.allow_unencrypted = args.allow_unencrypted
        self.max_wait = args.max_receive_wait
        self.max_envelope_kb = args.max_envelope_kb
        self.drop_after = args.drop_after
        self.compression = args.compression


class ConnState:
    """State bound to one TCP connection: its security context and who authenticated."""

    def __init__(self, conn_id):
        self.id = conn_id
        self.session = None  # auth.SpnegoSession
        self.user = None
        self.delegated_user = None
        self.scheme = None
        self.answered = 0  # WS-Man answers sent on this connection (for --drop-after)


class RequestContext:
    """What a WS-Man handler sees of the request it serves."""

    def __init__(self, user, client_ip, log):
        self.user = user
        self.client_ip = client_ip
        self.log = log

    @property
    def owner_name(self):
        return self.user or ""


class Host:
    def __init__(self, config, log):
        self.config = config
        self.log = log
        self.winrs = winrs.WinRS(config.hostname, config.hostname, config.max_wait)
        self.psrp = psrp.PsrpHost(config.hostname, config.max_wait, config.compression)
        self.wsconfig = wsconfig.ConfigResource(
            config.max_envelope_kb, config.allow_unencrypted, "basic" in config.auth_modes,
            "ntlm" in config.auth_modes or "negotiate" in config.auth_modes)
        self._conn_lock = threading.Lock()
        self._conn_counter = 0

    def next_conn_id(self):
        with self._conn_lock:
            self._conn_counter += 1
            return self._conn_counter

    def dispatch(self, data, ctx, address):
        """Run one WS-Man request; returns (http status, response bytes)."""
        relates_to = None
        try:
            req = wsman.parse_request(data)
            relates_to = req.message_id
            ctx.log["action"] = req.action
            ctx.log["resource_uri"] = req.resource_uri
            ctx.log["shell_id"] = (req.shell_id or "").upper() or None
            ctx.log["compression"] = req.compression
            if req.action is None and req.body_child(wsman.NS_IDENTITY, "Identify") is not None:
                ctx.log["action"] = "Identify"
                return 200, wsman.identify_response(self.config.hostname)
            target = self._target(req)
            method = {
                wsman.ACTION_CREATE: "create",
                wsman.ACTION_COMMAND: "command",
                wsman.ACTION_SEND: "send",
                wsman.ACTION_RECEIVE: "receive",
                wsman.ACTION_SIGNAL: "signal",
                wsman.ACTION_DELETE: "delete",
                wsman.ACTION_GET: "get",
                wsman.ACTION_DISCONNECT: "disconnect",
                wsman.ACTION_RECONNECT: "reconnect",
                wsman.ACTION_CONNECT: "connect",
                wsman.ACTION_ENUMERATE: "enumerate",
            }.get(req.action)
            if target is None or method is None or not hasattr(target, method):
                raise wsman.action_not_supported(req.action)
            if method == "create":
                action, body = target.create(req, ctx, address)
            else:
                action, body = getattr(target, method)(req, ctx)
            return 200, wsman.envelope(action, relates_to, body)
        except wsman.WsmanError as err:
            ctx.log["fault"] = f"{err.subcode} {err.wsman_code}"
            if err.wsman_code != wsman.CODE_TIMED_OUT:
                ctx.log["error"] = err.message
            return 500, wsman.fault_envelope(err, relates_to, self.config.hostname)
        except Exception as exc:  # an emulation bug becomes a fault the test can see, not a dead socket
            ctx.log["error"] = repr(exc)
            err = wsman.internal_error(f"stand-in host error: {exc!r}")
            ctx.log["fault"] = f"{err.subcode} {err.wsman_code}"
            return 500, wsman.fault_envelope(err, relates_to, self.config.hostname)

    def _target(self, req):
        uri = req.resource_uri or ""
        if uri.lower() == wsman.RESOURCE_CMD:
            return self.winrs
        if uri.lower().startswith(wsman.RESOURCE_PS_PREFIX.lower()):
            return self.psrp
        if uri.lower() in (wsman.RESOURCE_SHELLS.lower(), wsman.RESOURCE_SHELL_COMMANDS.lower()):
            return self.psrp  # Enumerate of the PowerShell shells and their commands
        if uri.lower() == wsconfig.RESOURCE_CONFIG:
            return self.wsconfig
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self):
        # Without TCP_NODELAY the header and body writes meet delayed ACKs: 40 ms per request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tls_error = None
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.settimeout(30)
                self.request.do_handshake()
                self.request.settimeout(None)
            except (ssl.SSLError, OSError) as exc:
                self.tls_error = f"tls handshake failed: {exc}"
        super().setup()
        self.conn = ConnState(self.server.host.next_conn_id())

    def handle(self):
        if self.tls_error is not None:
            # Not a request, but a test may want to see that a client was turned away at TLS.
            entry = reqlog.new_entry(self.conn.id, None, None)
            entry["error"] = self.tls_error
            self.server.host.log.write(entry)
            return
        super().handle()

    def log_message(self, fmt, *args):  # keep stderr quiet; the JSON log is the record
        pass

    # -- helpers -------------------------------------------------------------------------

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = 0
            return self.rfile.read(n) if n > 0 else b""
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = bytearray()
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        return b""

    def _send(self, status, body=b"", content_type=None, extra_headers=()):
        entry = getattr(self, "_pending_entry", None)
        if entry is not None:
            self._pending_entry = None
            entry["status"] = status
            self.server.host.log.write(entry)
        self.send_response(status)
        for name, value in extra_headers:
            self.send_header(name, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()
        drop_after = self.server.host.config.drop_after
        if drop_after and body and self.conn.user:
            self.conn.answered += 1
            if self.conn.answered >= drop_after:
                # Like a host or a load balancer dropping a kept-alive connection: no
                # `Connection: close`, the socket just goes away after the answer.
                self.close_connection = True

    def _challenge_headers(self):
        headers = []
        modes = self.server.host.config.auth_modes
        if "ntlm" in modes or "negotiate" in modes:
            headers.append(("WWW-Authenticate", "Negotiate"))
        if "credssp" in modes:
            headers.append(("WWW-Authenticate", "CredSSP"))
        if "basic" in modes:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        if "certificate" in modes:
            headers.append(("WWW-Authenticate", auth.SECPROFILE_MUTUAL))
        return headers

    # -- request handling ----------------------------------------------------------------

    def do_GET(self):
        entry = reqlog.new_entry(self.conn.id, "GET", self.path)
        entry["status"] = 405
        self.server.host.log.write(entry)
        self._send(405)

    def do_POST(self):
        host = self.server.host
        entry = reqlog.new_entry(self.conn.id, "POST", self.path)
        # `_send` writes the entry just before the response leaves, so a client that got an
        # answer always finds its request in the log (tests read it right after).
        self._pending_entry = entry
        try:
            body = self._read_body()
        except ValueError:
            entry["error"] = "malformed chunked body"
            self.close_connection = True
            self._send(400)  # writes the pending entry with status 400
            return
        try:
            status = self._handle_post(body, entry)
        except (ConnectionError, ssl.SSLError):
            status = None
            entry["error"] = "connection lost"
            self.close_connection = True
        except Exception as exc:  # a stand-in bug: answer and record it rather than drop the socket
            entry["error"] = f"stand-in error: {exc!r}"
            status = 500
            self.close_connection = True
            try:
                self._send(500)  # writes the pending entry with status 500
            except OSError:
                status = None
        if self._pending_entry is not None:
            # No response was sent (connection lost): record the request anyway.
            self._pending_entry = None
            entry["status"] = status
            host.log.write(entry)

    def _handle_post(self, body, entry):
        host = self.server.host
        cfg = host.config
        authz = self.headers.get("Authorization")
        scheme, _, value = (authz or "").partition(" ")
        scheme_l = scheme.lower()
        reply_headers = []

        if authz:
            entry["auth_scheme"] = scheme
        if scheme_l in SPNEGO_SCHEMES and (
                ("credssp" in cfg.auth_modes) if scheme_l == "credssp"
                else ("ntlm" in cfg.auth_modes or "negotiate" in cfg.auth_modes)):
            try:
                token = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                entry["error"] = "malformed token"
                self._send(401, extra_headers=self._challenge_headers())
                return 401
            mode = "negotiate" if "negotiate" in cfg.auth_modes else "ntlm"
            if self.conn.session is None or self.conn.session.complete:
                # A new handshake replaces whatever this connection had.
                self.conn.session = auth.SpnegoSession(mode, token, scheme)
                self.conn.user = None
                self.conn.delegated_user = None
            try:
                out = self.conn.session.step(token)
            except auth.AuthError as exc:
                self.conn.session = None
                entry["error"] = str(exc)
                self._send(401, extra_headers=self._challenge_headers())
                return 401
            out_header = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
            if not self.conn.session.complete:
                self._send(401, extra_headers=out_header)
                return 401
            self.conn.user = self.conn.session.principal
            self.conn.delegated_user = self.conn.session.delegated_user
            self.conn.scheme = scheme
            reply_headers = out_header
            if not body:
                # The client's empty POST that finishes the handshake before encrypted traffic.
                entry["user"] = self.conn.user
                entry["delegated_user"] = self.conn.delegated_user
                self._send(200, extra_headers=reply_headers)
                return 200
            user = self.conn.user
        elif scheme_l == "basic" and "basic" in cfg.auth_modes:
            try:
                user = auth.check_basic(cfg.users, value)
            except auth.AuthError as exc:
                entry["error"] = str(exc)
                self._send(401, extra_headers=self._challenge_headers())
                return 401
        elif authz and authz.strip() == auth.SECPROFILE_MUTUAL and "certificate" in cfg.auth_modes:
            # Windows certificate auth: the secprofile header plus a verified TLS client certificate.
            entry["auth_scheme"] = "Certificate"
            der = self.request.getpeercert(binary_form=True) if isinstance(self.request, ssl.SSLSocket) else None
            if not der:
                entry["error"] = "no client certificate"
                self._send(401, extra_headers=self._challenge_headers())
                return 401
            try:
                user = auth.certificate_user(der, cfg.users)
            except (auth.AuthError, ValueError) as exc:
                entry["error"] = str(exc)
                self._send(401, extra_headers=self._challenge_headers())
                return 401
            entry["auth_scheme"] = "Certificate"
        elif not authz and self.conn.session is not None and self.conn.session.complete:
            user = self.conn.user
            entry["auth_scheme"] = self.conn.scheme
        else:
            if authz:
                entry["error"] = f"auth scheme {scheme} not enabled"
            self._send(401, extra_headers=self._challenge_headers())
            return 401
        entry["user"] = user
        if self.conn.session is not None and self.conn.user == user:
            entry["delegated_user"] = self.conn.delegated_user

        content_type = self.headers.get("Content-Type") or ""
        encrypted_protocol = None
        if content_type.lower().startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
            session = self.conn.session
            if session is None or not session.complete:
                entry["error"] = "encrypted body without a security context"
                self._send(400)
                return 400
            try:
                body, encrypted_protocol = session.unwrap_body(body, content_type)
            except auth.AuthError as exc:
                entry["error"] = str(exc)
                self._send(400)
                return 400
            entry["encrypted"] = True
        elif cfg.scheme == "http" and not cfg.allow_unencrypted:
            # Windows' default AllowUnencrypted=false: plaintext bodies over http are refused.
            entry["error"] = "unencrypted body refused"
            self._send(401, extra_headers=self._challenge_headers())
            return 401

        address = f"{cfg.scheme}://{self.headers.get('Host') or '127.0.0.1'}{self.path}"
        ctx = RequestContext(user, self.client_address[0], entry)
        status, response = host.dispatch(body, ctx, address)
        if encrypted_protocol is not None:
            ct, response = self.conn.session.wrap_body(response, encrypted_protocol)
        else:
            ct = SOAP_CONTENT_TYPE
        self._send(status, response, ct, reply_headers)
        return status


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--scheme", choices=["http", "https"], default="http")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", default="ntlm", help="ntlm, negotiate, basic, credssp, or a comma list")
    p.add_argument("--client-ca", help="CA that issues client certificates (--auth certificate)")
    p.add_argument("--keytab", help="keytab for Kerberos under --auth negotiate (sets KRB5_KTNAME)")
    p.add_argument("--users", help="DOMAIN:user:password lines (also used as NTLM_USER_FILE)")
    p.add_argument("--log", help="request log (JSON lines)")
    p.add_argument("--hostname", default="STANDIN")
    p.add_argument("--allow-unencrypted", action="store_true",
                   help="accept plaintext bodies over http (Windows AllowUnencrypted=true)")
    p.add_argument("--max-receive-wait", type=float, default=120.0,
                   help="cap on how long a Receive long poll waits (seconds)")
    p.add_argument("--compression", action="store_true",
                   help="honour rsp:CompressionType xpress on PowerShell shells, as Windows does "
                        "(default: answer NoCompression)")
    p.add_argument("--drop-after", type=int, default=0,
                   help="close each authenticated connection after this many WS-Man answers (0: never)")
    p.add_argument("--max-envelope-kb", type=int, default=500,
                   help="MaxEnvelopeSizekb reported by the config resource (Windows default 500)")
    args = p.parse_args(argv)

    for mode in [m.strip() for m in args.auth.split(",")]:
        if mode not in AUTH_MODES:
            p.error(f"unsupported --auth {mode}")
    if args.users:
        os.environ["NTLM_USER_FILE"] = os.path.abspath(args.users)
    if args.keytab:
        # Kerberos through the Negotiate acceptor (needs pyspnego[kerberos], i.e. python-gssapi).
        os.environ["KRB5_KTNAME"] = os.path.abspath(args.keytab)
    if args.scheme == "https" and not (args.cert and args.key):
        p.error("--scheme https needs --cert and --key")
    if "certificate" in args.auth and not (args.scheme == "https" and args.client_ca):
        p.error("--auth certificate needs --scheme https and --client-ca")

    config = Config(args)
    log = reqlog.RequestLog(args.log)
    server = Server(("127.0.0.1", args.port), Handler)
    server.host = Host(config, log)
    if args.scheme == "https":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            tls.load_verify_locations(args.client_ca)
            tls.verify_mode = ssl.CERT_OPTIONAL
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)

    def on_term(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    print(f"ready port={server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
