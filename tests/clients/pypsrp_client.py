#!/usr/bin/env python3
"""Run one command through pypsrp (WinRS or PSRP) and print the result as one JSON object.

Used by hopgate's integration tests to drive a real third-party client:
  --cmd LINE      Client.execute_cmd (WinRS cmd shell, whole line in rsp:Command)
  --ps SCRIPT     Client.execute_ps (PSRP: Invoke-Expression -Command SCRIPT | Out-String -Stream)
  --cmdlet NAME   RunspacePool + PowerShell.add_cmdlet(NAME).add_parameter(K, V) for each --param
  --script TEXT   RunspacePool + PowerShell.add_script(TEXT)
  --pipeline JSON several statements/commands ([[{"name", "params"}], ...]) via add_statement()
  --metadata NAME RunspacePool.get_command_metadata (GET_COMMAND_METADATA)
  --sequence JSON several pipelines, one after another on one RunspacePool: a list of
                  {"script": TEXT}, {"cmdlet": NAME, "params": {...}} or {"pipeline":
                  [{"cmdlet": NAME, "params": {...}}, ...]}; each gets its own
                  result (output, had_errors, errors, error_ids, state)
  --hold S        keep the runspace pool open S seconds after the pipeline (printing its
                  result first), for tests that kill the client mid-session
  --compress      xpress shell compression, as Windows PowerShell clients use it (class Compression)
  --input V       pipeline input (PIPELINE_INPUT + END_OF_PIPELINE_INPUT); --stop-after S stops
                  the pipeline (Signal powershell/signal/ctrl_c) after S seconds

Exit codes: 0 success, 2 the server answered with a WS-Man fault or an HTTP error,
3 authentication was rejected, 1 anything else.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "?"


def emit(obj, code):
    print(json.dumps(obj, default=str))
    sys.stdout.flush()
    sys.exit(code)


def param_value(text):
    low = text.lower()
    if low in ("true", "$true"):
        return True
    if low in ("false", "$false"):
        return False
    try:
        return int(text)
    except ValueError:
        return text


def describe(obj):
    """A JSON view of a pypsrp output object."""
    from pypsrp.complex_objects import GenericComplexObject

    if isinstance(obj, GenericComplexObject):
        props = {}
        for source in (obj.adapted_properties, obj.extended_properties):
            for k, v in source.items():
                props[k] = describe(v)
        return {"type_names": list(obj.types), "to_string": obj.to_string, "properties": props}
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in obj.items()}
    return str(obj)


def error_text(err):
    return str(err)


def error_id(err):
    """The FullyQualifiedErrorId of an error record, however pypsrp deserialized it."""
    fq = getattr(err, "fq_error", None)
    if fq:
        return fq
    for source in ("extended_properties", "adapted_properties"):
        props = getattr(err, source, None) or {}
        if "FullyQualifiedErrorId" in props:
            return str(props["FullyQualifiedErrorId"])
    return None


class Compression:
    """Shell compression as Windows PowerShell clients use it (PROTOCOL.md section 9), which
    pypsrp lacks: a hook on pypsrp's transport asks for `xpress` on the Create of a PSRP shell,
    frames the data of every rsp:Stream it sends, and decodes every rsp:Stream it receives
    (tests/clients/xpress.py, checked against MS-XCA and Microsoft's compressor). Like a strict
    client, it compresses only once the CreateResponse says XpressCompression."""

    NS = {
        "s": "http://www.w3.org/2003/05/soap-envelope",
        "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
        "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
        "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    }
    CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
    RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"

    def __init__(self, transport, corrupt=False):
        self.active = False
        # Test of the receiving side's checks: every Send carries a chunk header that claims
        # more bytes than follow.
        self.corrupt = corrupt
        self.stats = {"chunks_sent_compressed": 0, "chunks_received_compressed": 0,
                      "bytes_sent_plain": 0, "bytes_sent_framed": 0, "streams_received": 0}
        self._send = transport.send
        transport.send = self.send

    def send(self, message, **kwargs):
        import base64
        import xml.etree.ElementTree as ET

        import xpress

        root = ET.fromstring(message)
        header = root.find("s:Header", self.NS)
        action = (header.findtext("wsa:Action", "", self.NS) or "").strip()
        resource = (header.findtext("wsman:ResourceURI", "", self.NS) or "").strip()
        if action == self.CREATE and resource.startswith("http://schemas.microsoft.com/powershell/"):
            el = ET.SubElement(header, "{%s}CompressionType" % self.NS["rsp"])
            el.set("{%s}mustUnderstand" % self.NS["s"], "true")
            el.text = "xpress"
            message = ET.tostring(root, encoding="utf-8", method="xml")
        elif action == self.SEND and self.active:
            for stream in root.iter("{%s}Stream" % self.NS["rsp"]):
                plain = base64.b64decode(stream.text or "")
                framed = xpress.compress_stream(plain)
                if self.corrupt:
                    framed = bytes([99, 0, 49, 0, 1, 2, 3])
                self.stats["bytes_sent_plain"] += len(plain)
                self.stats["bytes_sent_framed"] += len(framed)
                self.stats["chunks_sent_compressed"] += xpress.compressed_chunks(framed)
                stream.text = base64.b64encode(framed).decode()
            message = ET.tostring(root, encoding="utf-8", method="xml")
        response = self._send(message, **kwargs)
        if action == self.CREATE:
            answer = ET.fromstring(response)
            mode = answer.findtext(".//rsp:CompressionMode", "", self.NS)
            if mode.strip() != "XpressCompression":
                raise RuntimeError(f"the service did not agree to compression: {mode!r}")
            self.active = True
        elif action == self.RECEIVE and self.active:
            answer = ET.fromstring(response)
            for stream in answer.iter("{%s}Stream" % self.NS["rsp"]):
                framed = base64.b64decode(stream.text or "")
                self.stats["streams_received"] += 1
                self.stats["chunks_received_compressed"] += xpress.compressed_chunks(framed)
                stream.text = base64.b64encode(xpress.decompress_stream(framed)).decode()
            response = ET.tostring(answer, encoding="utf-8", method="xml")
        return response


def invoke_one(pool, a):
    """--cmdlet NAME [--param K=V]... on `pool`, as a result dict."""
    from pypsrp.powershell import PowerShell

    ps = PowerShell(pool)
    ps.add_cmdlet(a.cmdlet)
    for item in a.param:
        if "=" in item:
            k, v = item.split("=", 1)
            ps.add_parameter(k, param_value(v))
        else:
            ps.add_parameter(item, True)
    output = ps.invoke()
    return {
        "output": [describe(o) for o in output],
        "stdout": "\n".join(str(o) for o in output),
        "had_errors": ps.had_errors,
        "errors": [error_text(e) for e in ps.streams.error],
        "error_ids": [error_id(e) for e in ps.streams.error],
        "state": int(ps.state),
    }


def disconnected_session(client, a):
    """The disconnected-session flows (MS-PSRP 3.1.4.11+), each printing what it saw:
      reconnect: open, run --cmdlet, disconnect(), connect() (Reconnect: same client), run
                 it again, close;
      leave:     open, run --cmdlet, disconnect(), exit without closing -> {"shell_id"};
      list:      RunspacePool.get_runspace_pools() -> {"pools": [ids]};
      connect:   connect() to pool --pool-id as a new client (Connect with connectXml), run
                 --cmdlet, close. A pool the listing did not show is connected to anyway,
                 as someone who guessed its id would;
      leave-running: begin_invoke(--cmdlet; Write-Output after-the-disconnect), disconnect()
                 while it runs, exit -> {"shell_id", "command_id"};
      commands:  the Enumerate of --pool-id's commands -> {"commands": [ids]};
      receive:   get_runspace_pools(), connect() to --pool-id, then connect() to each of its
                 disconnected commands and collect their output -> {"commands": [...]}."""
    from pypsrp.powershell import RunspacePool, RunspacePoolState

    flow = a.disconnected
    if flow == "leave-running":
        # Invoke-Command -InDisconnectedSession: start --cmdlet, then leave it running.
        from pypsrp.powershell import PowerShell

        pool = RunspacePool(client.wsman, configuration_name=a.configuration_name)
        pool.open()
        ps = PowerShell(pool)
        ps.add_cmdlet(a.cmdlet)
        for item in a.param:
            k, v = item.split("=", 1)
            ps.add_parameter(k, param_value(v))
        ps.add_statement()
        ps.add_cmdlet("Write-Output").add_parameter("InputObject", "after-the-disconnect")
        ps.begin_invoke()
        pool.disconnect()
        return {"shell_id": pool.id.upper(), "command_id": ps.id.upper()}
    if flow == "receive":
        # Receive-PSSession: a new client connects to the pool and to its running commands.
        pools = {p.id.upper(): p for p in RunspacePool.get_runspace_pools(client.wsman)}
        pool = pools[a.pool_id.upper()]
        pool.connect()
        results = []
        for ps in pool.create_disconnected_power_shells():
            output = ps.connect()
            results.append({"command_id": ps.id.upper(), "stdout": "\n".join(str(o) for o in output),
                            "had_errors": ps.had_errors, "state": int(ps.state)})
        pool.close()
        return {"commands": results}
    if flow == "commands":
        # The command enumeration get_runspace_pools() makes for each pool, for any id.
        import xml.etree.ElementTree as ET

        from pypsrp.wsman import NAMESPACES, SelectorSet

        wsen, wsmn = NAMESPACES["wsen"], NAMESPACES["wsman"]
        enum_msg = ET.Element("{%s}Enumerate" % wsen)
        ET.SubElement(enum_msg, "{%s}OptimizeEnumeration" % wsmn)
        ET.SubElement(enum_msg, "{%s}MaxElements" % wsmn).text = "32000"
        flt = ET.SubElement(enum_msg, "{%s}Filter" % wsmn,
                            Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter")
        selectors = SelectorSet()
        selectors.add_option("ShellId", a.pool_id)
        flt.append(selectors.pack())
        resp = client.wsman.enumerate("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command", enum_msg)
        ids = [c.find("rsp:CommandId", NAMESPACES).text.upper()
               for c in resp.findall("wsen:EnumerateResponse/wsman:Items/rsp:Command", NAMESPACES)]
        return {"commands": ids}
    if flow == "list":
        pools = RunspacePool.get_runspace_pools(client.wsman)
        return {"pools": [p.id.upper() for p in pools]}
    if flow == "connect":
        pools = {p.id.upper(): p for p in RunspacePool.get_runspace_pools(client.wsman)}
        wanted = a.pool_id.upper()
        pool = pools.get(wanted)
        listed = pool is not None
        if pool is None:
            pool = RunspacePool(client.wsman, configuration_name=a.configuration_name)
            pool.id = pool.shell.id = a.pool_id
            pool.shell.opened = True
            pool._new_client = True
            pool.state = RunspacePoolState.DISCONNECTED
        pool.connect()
        result = {"listed": listed, "runs": [invoke_one(pool, a)]}
        pool.close()
        return result
    pool = RunspacePool(client.wsman, configuration_name=a.configuration_name)
    pool.open()
    runs = [invoke_one(pool, a)]
    pool.disconnect()
    if flow == "leave":
        return {"shell_id": pool.id.upper(), "runs": runs}
    pool.connect()
    runs.append(invoke_one(pool, a))
    pool.close()
    return {"shell_id": pool.id.upper(), "runs": runs}


def run_sequence(pool, items):
    from pypsrp.powershell import PowerShell

    results = []
    for item in items:
        ps = PowerShell(pool)
        if "script" in item:
            ps.add_script(item["script"])
        else:
            # {"cmdlet": ...} or a pipeline {"pipeline": [{"cmdlet": ..., "params": ...}, ...]}
            for cmd in item.get("pipeline") or [item]:
                ps.add_cmdlet(cmd["cmdlet"])
                for k, v in (cmd.get("params") or {}).items():
                    ps.add_parameter(k, v)
        output = ps.invoke()
        results.append({
            "stdout": "\n".join(str(o) for o in output),
            "had_errors": ps.had_errors,
            "errors": [error_text(e) for e in ps.streams.error],
            "error_ids": [error_id(e) for e in ps.streams.error],
            "state": int(ps.state),
        })
        ps.close()
    return results


def main():
    p = argparse.ArgumentParser(description="pypsrp client for tests")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="wsman")
    p.add_argument("--scheme", choices=["http", "https"], default="https")
    p.add_argument("--auth", required=True,
                   choices=["certificate", "basic", "ntlm", "negotiate", "kerberos", "credssp"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--ca", help="CA bundle to verify the server")
    g.add_argument("--no-verify", action="store_true", help="do not verify the server certificate")
    c = p.add_mutually_exclusive_group(required=True)
    c.add_argument("--cmd")
    c.add_argument("--ps")
    c.add_argument("--cmdlet")
    c.add_argument("--script", help="PowerShell.add_script(SCRIPT): IsScript=true in CREATE_PIPELINE")
    c.add_argument("--pipeline", help='JSON statements: [[{"name": "Get-Process", "params": {"Name": "x"}}], ...]')
    c.add_argument("--metadata", action="append", help="RunspacePool.get_command_metadata(NAME...), repeatable")
    c.add_argument("--sequence", help='JSON: [{"script": "..."} | {"cmdlet": "...", "params": {...}}, ...] on one pool')
    p.add_argument("--pool-id", help="--disconnected connect: the ShellId (RunspacePool id) to connect to")
    p.add_argument("--disconnected", choices=["reconnect", "leave", "list", "connect", "leave-running", "receive",
                                                        "commands"],
                   help="disconnected-session flows (see disconnected_session), running --cmdlet")
    p.add_argument("--param", action="append", default=[], help="K=V (or K for a switch), repeatable")
    p.add_argument("--param-file", action="append", default=[],
                   help="K=PATH: the parameter's value is the text of PATH (for values too long for argv)")
    p.add_argument("--input", action="append", help="pipeline input object (string), repeatable")
    p.add_argument("--stop-after", type=float, help="begin_invoke, wait this long, then stop() (Signal ctrl_c)")
    p.add_argument("--hold", type=float,
                   help="after the pipeline, print its result and keep the runspace pool open this long "
                        "(a test kills the client meanwhile)")
    p.add_argument("--configuration-name", default="Microsoft.PowerShell")
    p.add_argument("--spn-host", help="host name for the Kerberos SPN (negotiate_hostname_override)")
    p.add_argument("--spn-service", help="service for the Kerberos SPN (negotiate_service, pypsrp default WSMAN)")
    p.add_argument("--encryption", choices=["auto", "always", "never"], default="auto")
    p.add_argument("--compress", action="store_true",
                   help="ask for xpress shell compression and frame the streams (class Compression)")
    p.add_argument("--corrupt-compressed-sends", action="store_true",
                   help="with --compress: send a lying chunk header in every Send")
    p.add_argument("--max-envelope-size", "--max-envelope", dest="max_envelope_size", type=int,
                   help="WSMan max_envelope_size (pypsrp's default 153600): small values split "
                        "CREATE_PIPELINE into Sends; large ones let the host's answers be this large")
    p.add_argument("--operation-timeout", type=int, default=20)
    p.add_argument("--digest", action="store_true",
                   help="--cmd: print stdout's length and SHA-256 (of its code page 437 bytes) instead of stdout")
    p.add_argument("--read-timeout", type=int, default=30)
    a = p.parse_args()

    try:
        from pypsrp.client import Client
        from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
        from pypsrp.powershell import PowerShell, RunspacePool
        import requests
    except ImportError as exc:
        emit({"error": f"pypsrp not installed: {exc}", "type": "ImportError"}, 1)

    kwargs = dict(
        port=a.port,
        path=a.path,
        auth=a.auth,
        ssl=a.scheme == "https",
        username=a.user,
        password=a.password,
        cert_validation=a.ca if a.ca else not a.no_verify,
        encryption=a.encryption,
        operation_timeout=a.operation_timeout,
        read_timeout=a.read_timeout,
    )
    if a.max_envelope_size:
        kwargs["max_envelope_size"] = a.max_envelope_size
    if a.spn_host:
        kwargs["negotiate_hostname_override"] = a.spn_host
    if a.spn_service:
        kwargs["negotiate_service"] = a.spn_service
    if a.auth == "certificate":
        kwargs["certificate_pem"] = a.cert
        kwargs["certificate_key_pem"] = a.key

    result = {"client": "pypsrp " + _version("pypsrp")}
    try:
        client = Client(a.server, **kwargs)
        compression = (Compression(client.wsman.transport, a.corrupt_compressed_sends)
                       if a.compress else None)
        if a.cmd is not None:
            stdout, stderr, rc = client.execute_cmd(a.cmd)
            if a.digest:
                import hashlib

                raw = stdout.encode("437")
                stdout = "%d %s" % (len(raw), hashlib.sha256(raw).hexdigest())
            result.update({"stdout": stdout, "stderr": stderr, "exit_code": rc})
        elif a.ps is not None:
            output, streams, had_errors = client.execute_ps(a.ps, configuration_name=a.configuration_name)
            result.update({"stdout": output, "had_errors": had_errors,
                           "errors": [error_text(e) for e in streams.error]})
        elif a.disconnected is not None:
            result.update(disconnected_session(client, a))
        elif a.sequence is not None:
            with RunspacePool(client.wsman, configuration_name=a.configuration_name) as pool:
                result.update({"results": run_sequence(pool, json.loads(a.sequence))})
        elif a.metadata:
            with RunspacePool(client.wsman, configuration_name=a.configuration_name) as pool:
                metas = pool.get_command_metadata(a.metadata)
                result.update({"commands": [{"name": m.name, "namespace": m.namespace} for m in metas]})
        else:
            with RunspacePool(client.wsman, configuration_name=a.configuration_name) as pool:
                ps = PowerShell(pool)
                if a.cmdlet:
                    ps.add_cmdlet(a.cmdlet)
                    for item in a.param:
                        if "=" in item:
                            k, v = item.split("=", 1)
                            ps.add_parameter(k, param_value(v))
                        else:
                            ps.add_parameter(item, True)
                    for item in a.param_file:
                        k, path = item.split("=", 1)
                        with open(path, encoding="utf-8") as f:
                            ps.add_parameter(k, f.read())
                elif a.script:
                    ps.add_script(a.script)
                else:
                    statements = json.loads(a.pipeline)
                    for i, statement in enumerate(statements):
                        if i:
                            ps.add_statement()
                        for cmd in statement:
                            ps.add_cmdlet(cmd["name"])
                            for k, v in (cmd.get("params") or {}).items():
                                ps.add_parameter(k, v)
                if a.stop_after is not None:
                    ps.begin_invoke(input=a.input)
                    time.sleep(a.stop_after)
                    ps.stop()
                    output = ps.output
                else:
                    output = ps.invoke(input=a.input)
                result.update({
                    "output": [describe(o) for o in output],
                    "stdout": "\n".join(str(o) for o in output),
                    "had_errors": ps.had_errors,
                    "errors": [error_text(e) for e in ps.streams.error],
                    "error_ids": [error_id(e) for e in ps.streams.error],
                    "state": int(ps.state),
                })
                if a.hold:
                    print(json.dumps(result, default=str))
                    sys.stdout.flush()
                    time.sleep(a.hold)
        if compression is not None:
            result["compression"] = compression.stats
    except AuthenticationError as exc:
        emit({"error": str(exc), "type": "AuthenticationError"}, 3)
    except WSManFaultError as exc:
        emit({"error": str(exc), "type": "WSManFaultError", "fault": str(exc.code), "wsman_code": exc.code,
              "reason": exc.reason}, 2)
    except WinRMTransportError as exc:
        code = 3 if exc.code == 401 else 2
        emit({"error": str(exc), "type": "WinRMTransportError", "http_status": exc.code, "fault": None}, code)
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        emit({"error": str(exc), "type": "HTTPError", "http_status": status, "fault": None},
             3 if status == 401 else 2)
    except Exception as exc:
        import traceback

        emit({"error": str(exc), "type": type(exc).__name__,
              "where": traceback.format_exc().splitlines()[-4:]}, 1)
    emit(result, 0)


if __name__ == "__main__":
    main()
