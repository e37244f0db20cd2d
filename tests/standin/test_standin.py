#!/usr/bin/env python3
"""Unit tests of the stand-in host's pieces, against real data where there is some.

Run: python3 -m unittest tests/standin/test_standin.py   (or python3 tests/standin/test_standin.py)
Expected values come from the pypsrp corpus recordings of real Windows answers, from
Windows' documented output, or from a real peer (a pyspnego NTLM client), never from the
code under test itself.
"""

import base64
import datetime
import os
import sys
import threading
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import auth  # noqa: E402
import cmdemu  # noqa: E402
import pscmds  # noqa: E402
import psformat  # noqa: E402
import psrp  # noqa: E402
import wsman  # noqa: E402

CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "corpus", "pypsrp-responses"))


def corpus(name):
    import yaml

    with open(os.path.join(CORPUS, name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["messages"]


def run_cmd(line, stdin="", user="CORP\\bob", hostname="WIN-X"):
    out, err = [], []
    io = cmdemu.Io(out.append, err.append, threading.Event(), lambda: stdin, hostname, user)
    code = cmdemu.run_line(line, io)
    return code, "".join(out), "".join(err)


def run_ps(script, user="CORP\\bob"):
    errors, infos, streams = [], [], []
    ctx = pscmds.Context("WIN-X", user, threading.Event(), errors.append, infos.append,
                         lambda kind, msg: streams.append((kind, msg)))
    out = list(pscmds.run_script(script, ctx))
    return out, errors, infos, streams


class CmdEmulation(unittest.TestCase):
    def test_not_recognized_is_the_cmd_exe_text(self):
        code, out, err = run_cmd("frobnicate /x")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertEqual(err, "'frobnicate' is not recognized as an internal or external command,\r\n"
                              "operable program or batch file.\r\n")

    def test_type_missing_file_like_windows(self):
        self.assertEqual(run_cmd("type nosuchfile"), (1, "", "The system cannot find the file specified.\r\n"))

    def test_operators_follow_exit_codes(self):
        self.assertEqual(run_cmd("echo a& echo b"), (0, "a\r\nb\r\n", ""))
        self.assertEqual(run_cmd("type x && echo no"), (1, "", "The system cannot find the file specified.\r\n"))
        self.assertEqual(run_cmd("type x || echo yes")[1], "yes\r\n")
        self.assertEqual(run_cmd('cmd.exe /c "echo a && exit 2"'), (2, "a\r\n", ""))

    def test_variables_expand(self):
        self.assertEqual(run_cmd("echo %COMPUTERNAME% %USERNAME% %NOPE%")[1], "WIN-X bob %NOPE%\r\n")

    def test_encoded_command_is_utf16le_base64(self):
        script = "Write-Output 'héllo'; whoami"
        enc = base64.b64encode(script.encode("utf-16-le")).decode()
        line = f"PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand {enc}"
        code, out, _ = run_cmd(line)
        self.assertEqual((code, out), (0, "héllo\r\ncorp\\bob\r\n"))

    def test_powershell_exit_code(self):
        self.assertEqual(run_cmd('powershell -Command "exit 5"')[0], 5)

    def test_cmd_reads_stdin_like_the_corpus_interpreter(self):
        code, out, _ = run_cmd("cmd", stdin="echo one\r\nexit 3\r\n")
        self.assertEqual(code, 3)
        self.assertIn("one\r\n", out)

    def test_split_args_windows_quoting(self):
        self.assertEqual(cmdemu.split_args('a "b c" d""e'), ["a", "b c", "de"])


class PowerShellEmulation(unittest.TestCase):
    def test_statements_params_and_quotes(self):
        stmts = pscmds.split_statements("Get-Service -Name 'a;b' | Select -First 1; Write-Output \"x|y\"")
        self.assertEqual(len(stmts), 2)
        self.assertEqual(len(stmts[0]), 2)
        head, params = pscmds.parse_element(stmts[0][0], {})
        self.assertEqual((head.text, params), ("Get-Service", [("Name", "a;b")]))

    def test_get_service_objects_and_missing_name(self):
        out, errors, _, _ = run_ps("Get-Service -Name Spooler, nosuch")
        self.assertEqual([o.props["Name"] for o in out], ["Spooler"])
        self.assertEqual(str(out[0].props["Status"]), "Running")
        self.assertEqual(errors[0].message, "Cannot find any service with service name 'nosuch'.")
        self.assertEqual(errors[0].fqid, "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand")

    def test_unknown_command_text_matches_windows(self):
        # The message Windows put in the corpus recording test_client_execute_ps_failure.yml.
        with self.assertRaises(pscmds.TerminatingError) as cm:
            run_ps("Get-ServiceTypo")
        self.assertEqual(
            cm.exception.error.message,
            "The term 'Get-ServiceTypo' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is correct and "
            "try again.")
        self.assertEqual(cm.exception.error.exception_type, "System.Management.Automation.CommandNotFoundException")

    def test_arithmetic_variables_and_preferences(self):
        out, _, _, streams = run_ps("$x = 'v'; $x; 1+1; 2*(3+4); Write-Verbose hidden; "
                                    "$VerbosePreference = 'Continue'; Write-Verbose shown; Write-Warning w")
        self.assertEqual(out, ["v", 2, 14])
        self.assertEqual(streams, [("verbose", "shown"), ("warning", "w")])

    def test_error_action_stop_makes_write_error_terminating(self):
        errors, outputs = [], []
        ctx = pscmds.Context("H", "u", threading.Event(), errors.append)
        with self.assertRaises(pscmds.TerminatingError):
            for obj in pscmds.run_script("$ErrorActionPreference = 'Stop'; 'before'; Write-Error boom; 'after'", ctx):
                outputs.append(obj)
        self.assertEqual(outputs, ["before"])
        self.assertEqual(errors, [])

    def test_out_string_service_table(self):
        text = pscmds.format_objects([pscmds.service_obj("Spooler", "Print Spooler", "Running")])
        self.assertEqual(text.split("\n")[1:4], ["Status   Name               DisplayName",
                                                 "------   ----               -----------",
                                                 "Running  Spooler            Print Spooler"])

    def test_date_text(self):
        self.assertEqual(psformat.format_date(datetime.datetime(2026, 11, 23, 15, 4, 5)),
                         "Monday, November 23, 2026 3:04:05 PM")

    def test_whoami_text(self):
        self.assertEqual(pscmds.display_user("STANDIN\\Alice", "H"), "standin\\alice")
        self.assertEqual(pscmds.display_user("alice@STANDIN.TEST", "H"), "standin\\alice")
        self.assertEqual(pscmds.display_user("alice", "WIN-A"), "win-a\\alice")


class WsmanShapes(unittest.TestCase):
    def test_durations(self):
        self.assertEqual(wsman.parse_duration("PT20S"), 20)
        self.assertEqual(wsman.parse_duration("PT7200.000S"), 7200)
        self.assertEqual(wsman.parse_duration("P0DT1H2M3.5S"), 3723.5)
        self.assertIsNone(wsman.parse_duration("20"))

    def test_timed_out_fault_matches_the_windows_recording(self):
        windows = next(m["response"] for m in corpus("test_winrs_operation_timeout.yml") if "TimedOut" in m["response"])
        ours = wsman.fault_envelope(wsman.timed_out(), "uuid:X", "192.168.56.11").decode()
        ns = {"s": wsman.NS_S, "f": wsman.NS_FAULT}
        w, o = ET.fromstring(windows), ET.fromstring(ours)
        for path in ("s:Body/s:Fault/s:Code/s:Value", "s:Body/s:Fault/s:Code/s:Subcode/s:Value",
                     "s:Body/s:Fault/s:Reason/s:Text", "s:Body/s:Fault/s:Detail/f:WSManFault/f:Message"):
            self.assertEqual(o.find(path, ns).text, w.find(path, ns).text, path)
        self.assertEqual(o.find("s:Body/s:Fault/s:Detail/f:WSManFault", ns).get("Code"), "2150858793")

    def test_request_parsing_by_namespace_on_a_corpus_request(self):
        request = corpus("test_winrs_standard.yml")[1]["request"]
        req = wsman.parse_request(request.encode())
        self.assertEqual(req.action, wsman.ACTION_COMMAND)
        self.assertEqual(req.shell_id, "4283CBDC-3706-415B-88BD-B385F3E51A53")
        self.assertEqual(req.options, {"WINRS_SKIP_CMD_SHELL": "False"})
        self.assertEqual(req.operation_timeout, 20)
        cmdline = req.body_child(wsman.NS_RSP, "CommandLine")
        import winrs

        self.assertEqual(winrs.command_line_text(cmdline), "cmd.exe /c echo hi")


class AuthPieces(unittest.TestCase):
    def test_basic_forms(self):
        users = [("STANDIN", "alice", "pw"), ("", "bob", "b")]
        enc = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        self.assertEqual(auth.check_basic(users, enc("alice:pw")), "STANDIN\\alice")
        self.assertEqual(auth.check_basic(users, enc("STANDIN\\alice:pw")), "STANDIN\\alice")
        self.assertEqual(auth.check_basic(users, enc("alice@standin.test:pw")), "STANDIN\\alice")
        self.assertEqual(auth.check_basic(users, enc("bob:b")), "bob")
        for bad in ("alice:nope", "OTHER\\alice:pw", "carol:pw", "no-colon"):
            with self.assertRaises(auth.AuthError):
                auth.check_basic(users, enc(bad))

    def test_ntlm_message_encryption_with_a_real_client(self):
        # A pyspnego NTLM initiator is the peer: its wrap must unwrap here and ours there.
        import tempfile

        import spnego

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write("STANDIN:alice:Passw0rd!\n")
        old = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = fh.name
        try:
            client = spnego.client("STANDIN\\alice", "Passw0rd!", protocol="ntlm",
                                   options=spnego.NegotiateOptions.wrapping_winrm)
            token = client.step()
            session = auth.SpnegoSession("ntlm", token)
            while not session.complete:
                token = client.step(session.step(token))
                if token is None:
                    break
                if session.complete:
                    break
            if not session.complete:
                session.step(token)
            self.assertTrue(session.complete)
            self.assertEqual(session.principal, "STANDIN\\alice")
            plaintext = b"<s:Envelope>request</s:Envelope>"
            wrapped = client.wrap_winrm(plaintext)
            import struct

            body = ("--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
                    f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(plaintext)}\r\n"
                    "--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n").encode() \
                + struct.pack("<I", len(wrapped.header)) + wrapped.header + wrapped.data \
                + b"--Encrypted Boundary--\r\n"
            ct = ('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
                  'boundary="Encrypted Boundary"')
            got, protocol = session.unwrap_body(body, ct)
            self.assertEqual((got, protocol), (plaintext, auth.SPNEGO_PROTOCOL))
            out_ct, out_body = session.wrap_body(b"<s:Envelope>answer</s:Envelope>", protocol)
            self.assertEqual(out_ct, ct)
            self.assertIn(b"Length=31\r\n", out_body)
            payload = out_body.split(b"\tContent-Type: application/octet-stream\r\n", 1)[1]
            hlen = struct.unpack("<I", payload[:4])[0]
            data = payload[4 + hlen:].rsplit(b"--Encrypted Boundary--\r\n", 1)[0]
            self.assertEqual(client.unwrap_winrm(payload[4:4 + hlen], data), b"<s:Envelope>answer</s:Envelope>")
        finally:
            os.unlink(fh.name)
            if old is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = old

    def test_credssp_names_the_delegated_account_with_a_real_client(self):
        # A pyspnego CredSSP initiator is the peer: after the exchange the session names the
        # account whose password it delegated, and nothing exposes the password.
        import tempfile

        import spnego

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write("STANDIN:alice:Passw0rd!\n")
        old = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = fh.name
        try:
            client = spnego.client("STANDIN\\alice", "Passw0rd!", hostname="standin",
                                   service="HTTP", protocol="credssp")
            token = client.step()
            session = auth.SpnegoSession("ntlm", token, scheme="CredSSP")
            self.assertIsNone(session.delegated_user, "nothing delegated before the exchange")
            for _ in range(10):
                reply = session.step(token)
                if session.complete:
                    break
                token = client.step(reply)
            self.assertTrue(session.complete)
            self.assertTrue(client.complete)
            self.assertEqual(session.principal, "STANDIN\\alice")
            self.assertEqual(session.delegated_user, "STANDIN\\alice")
            self.assertNotIn("Passw0rd", repr(session.delegated_user))
            # NTLM and Negotiate sessions delegate nothing.
            ntlm = auth.SpnegoSession("ntlm", b"NTLMSSP\x00")
            self.assertIsNone(ntlm.delegated_user)
        finally:
            os.unlink(fh.name)
            if old is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = old

    def test_certificate_upn_mapping(self):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone-else")])
        upn = x509.OtherName(x509.ObjectIdentifier(auth.UPN_OID), b"\x0c\x12alice@standin.test")
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([upn]), critical=False).sign(key, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        self.assertEqual(auth.certificate_user(der, [("", "alice", "x")]), "alice@standin.test")
        with self.assertRaises(auth.AuthError):
            auth.certificate_user(der, [("", "bob", "x")])


class PsrpPieces(unittest.TestCase):
    def test_header_pid_of_an_old_pypsrp_create_pipeline(self):
        # In this recording the CommandId and the PSRP header PID differ in GUID byte order,
        # and Windows accepted it (PROTOCOL.md section 4).
        msgs = corpus("test_client_execute_ps.yml")
        request = next(m["request"] for m in msgs if "/Command<" in m["request"])
        req = wsman.parse_request(request.encode())
        cmdline = req.body_child(wsman.NS_RSP, "CommandLine")
        data = base64.b64decode(cmdline.find(f"{{{wsman.NS_RSP}}}Arguments").text)
        pid = psrp.header_pipeline_id(data)
        self.assertIsNotNone(pid)
        self.assertNotEqual(str(pid).upper(), cmdline.get("CommandId").upper())
        self.assertEqual(pid.bytes_le, bytes(data[21 + 24:21 + 40]))

    def test_split_fragments(self):
        frag = lambda oid, blob: (oid.to_bytes(8, "big") + (0).to_bytes(8, "big") + b"\x03"  # noqa: E731
                                  + len(blob).to_bytes(4, "big") + blob)
        data = frag(1, b"abc") + frag(2, b"") + frag(3, b"xy")
        self.assertEqual(psrp.split_fragments(data), [frag(1, b"abc"), frag(2, b""), frag(3, b"xy")])


if __name__ == "__main__":
    unittest.main()
