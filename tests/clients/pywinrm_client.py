#!/usr/bin/env python3
"""Run one WinRS command through pywinrm and print the result as one JSON object.

Used by hopgate's integration tests to drive a real third-party client. It uses
winrm.protocol.Protocol(endpoint=...) so that a custom URL path (/wsman/<host>) works.

Exit codes: 0 success (the remote exit code is in the JSON), 2 the server answered with a
WS-Man fault or an HTTP error, 3 authentication was rejected, 1 anything else.
Output: {"stdout", "stderr", "exit_code"} or {"error", "type", "fault"?, "http_status"?}.
"""

import argparse
import base64
import json
import sys
import time


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "?"


def emit(obj, code):
    print(json.dumps(obj))
    sys.stdout.flush()
    sys.exit(code)


def main():
    p = argparse.ArgumentParser(description="pywinrm WinRS client for tests")
    p.add_argument("--endpoint", required=True, help="e.g. https://127.0.0.1:5986/wsman/host1")
    p.add_argument("--transport", required=True, choices=["certificate", "basic", "ntlm", "kerberos", "credssp"])
    p.add_argument("--cert", help="client certificate PEM (certificate transport)")
    p.add_argument("--key", help="client key PEM (certificate transport)")
    p.add_argument("--user")
    p.add_argument("--password")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--ca", help="CA bundle to verify the server")
    g.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    c = p.add_mutually_exclusive_group(required=True)
    c.add_argument("--cmd", help="program (arguments with --arg)")
    c.add_argument("--ps", help="PowerShell script, sent as powershell -encodedcommand like run_ps")
    p.add_argument("--arg", action="append", default=[], help="argument, repeatable")
    p.add_argument("--stdin", help="text to send to the command's stdin (End=true)")
    p.add_argument("--stop-after", type=float,
                   help="poll output for this many seconds, then send ctrl_c and collect the rest")
    p.add_argument("--message-encryption", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--service", help="Kerberos service of the SPN (pywinrm default HTTP)")
    p.add_argument("--hostname-override", help="host name of the Kerberos SPN")
    p.add_argument("--operation-timeout", type=int, default=20)
    p.add_argument("--read-timeout", type=int, default=30)
    a = p.parse_args()

    try:
        from winrm.exceptions import (AuthenticationError, InvalidCredentialsError, WinRMError,
                                      WinRMOperationTimeoutError, WinRMTransportError, WSManFaultError)
        from winrm.protocol import Protocol
    except ImportError as exc:
        emit({"error": f"pywinrm not installed: {exc}", "type": "ImportError"}, 1)

    kwargs = dict(
        endpoint=a.endpoint,
        transport=a.transport,
        username=a.user,
        password=a.password,
        server_cert_validation="ignore" if a.insecure else "validate",
        message_encryption=a.message_encryption,
        operation_timeout_sec=a.operation_timeout,
        read_timeout_sec=a.read_timeout,
    )
    if a.ca:
        kwargs["ca_trust_path"] = a.ca
    if a.service:
        kwargs["service"] = a.service
    if a.hostname_override:
        kwargs["kerberos_hostname_override"] = a.hostname_override
    if a.transport == "certificate":
        kwargs["cert_pem"] = a.cert
        kwargs["cert_key_pem"] = a.key

    if a.ps is not None:
        encoded = base64.b64encode(a.ps.encode("utf-16-le")).decode("ascii")
        command, args = "powershell", ["-encodedcommand", encoded]
    else:
        command, args = a.cmd, a.arg

    try:
        proto = Protocol(**kwargs)
        shell_id = proto.open_shell()
        command_id = proto.run_command(shell_id, command, args)
        if a.stdin is not None:
            proto.send_command_input(shell_id, command_id, a.stdin.encode("utf-8"), end=True)
        if a.stop_after is not None:
            stdout, stderr, rc = b"", b"", None
            deadline = time.monotonic() + a.stop_after
            done = False
            while time.monotonic() < deadline and not done:
                try:
                    o, e, rc, done = proto.get_command_output_raw(shell_id, command_id)
                    stdout += o
                    stderr += e
                except WinRMOperationTimeoutError:
                    pass
            if not done:
                _signal(proto, shell_id, command_id, "ctrl_c")
                o, e, rc = proto.get_command_output(shell_id, command_id)
                stdout += o
                stderr += e
        else:
            stdout, stderr, rc = proto.get_command_output(shell_id, command_id)
        proto.cleanup_command(shell_id, command_id)
        proto.close_shell(shell_id)
    except (InvalidCredentialsError, AuthenticationError) as exc:
        emit({"error": str(exc), "type": type(exc).__name__}, 3)
    except WSManFaultError as exc:
        emit({"error": str(exc), "type": "WSManFaultError", "fault": exc.fault_subcode or exc.fault_code,
              "wsman_code": exc.wsman_fault_code, "reason": exc.reason, "http_status": exc.code}, 2)
    except WinRMTransportError as exc:
        emit({"error": str(exc), "type": "WinRMTransportError", "http_status": exc.code,
              "fault": _fault_from_text(exc.response_text)}, 2)
    except WinRMError as exc:
        emit({"error": str(exc), "type": type(exc).__name__}, 2)
    except Exception as exc:
        emit({"error": str(exc), "type": type(exc).__name__}, 1)

    emit({
        "stdout": stdout.decode("utf-8", errors="replace"),
        "stderr": stderr.decode("utf-8", errors="replace"),
        "exit_code": rc,
        "client": "pywinrm " + _version("pywinrm"),
    }, 0)


def _signal(proto, shell_id, command_id, code):
    """Send rsp:Signal with a short code (pywinrm itself only sends terminate, in cleanup_command)."""
    import uuid

    import xmltodict

    req = {"env:Envelope": proto.build_wsman_header(
        resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        action="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
        shell_id=shell_id, message_id=uuid.uuid4())}
    signal = req["env:Envelope"].setdefault("env:Body", {}).setdefault("rsp:Signal", {})
    signal["@CommandId"] = command_id
    signal["rsp:Code"] = f"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/{code}"
    proto.send_message(xmltodict.unparse(req))


def _fault_from_text(text):
    if not text:
        return None
    import re
    m = re.search(r"<s:Subcode>\s*<s:Value>([^<]+)</s:Value>", text)
    return m.group(1) if m else None


if __name__ == "__main__":
    main()
