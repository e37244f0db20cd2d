#!/usr/bin/env python3
"""Replay requests recorded against real Windows hosts at the stand-in and compare the answers.

The pypsrp corpus (../shared/corpus/pypsrp-responses/*.yml) holds request/response pairs:
requests made by pypsrp, responses made by Windows. This script starts the stand-in (http,
Basic, plaintext allowed), sends each recorded request (with Windows-assigned ShellIds and
CommandIds mapped to the stand-in's), and checks that the stand-in's answer has the shape of
the Windows answer: same action or same fault (subcode and WSManFault code), the same set of
element paths and attribute names in the body, and for PSRP streams the same sequence of
PSRP message types (on the pool and for pipelines whose commands the emulation knows).

Prints "N passed, M failed"; exit status 1 when anything failed.
"""

import base64
import os
import re
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.environ.get("HOPGATE_CORPUS") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "corpus", "pypsrp-responses"))
if not os.path.isdir(CORPUS):
    CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "corpus", "pypsrp-responses"))

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

# Recordings whose every step the stand-in is expected to answer in Windows' shape. The
# pipelines' *output* (for PSRP: message types after the pool opened) is only compared for
# the files in COMPARE_PIPELINE_TYPES, where the emulation knows the commands.
FILES = sys.argv[1:] or [
    "test_winrs_standard.yml",
    "test_winrs_stderr_rc.yml",
    "test_winrs_send.yml",
    "test_winrs_bad_cmd_id.yml",
    "test_winrs_noprofile.yml",
    "test_winrs_extra_opts.yml",
    "test_winrs_no_cmd_shell.yml",
    "test_client_execute_cmd.yml",
    "test_psrp_open_runspace.yml",
    "test_client_execute_ps.yml",
    "test_client_execute_ps_failure.yml",
    "test_psrp_multiple_invocations.yml",
    "test_psrp_small_msg_size.yml",
    "test_psrp_with_jea_configuration.yml",
    "test_psrp_set_runspaces.yml",
    "test_wsman_update_envelope_size_150.yml",
    "test_winrs_environment.yml",
    "test_winrs_operation_timeout.yml",
    "test_winrs_fail_poll_process.yml",
    "test_winrs_open_already_opened.yml",
    "test_client_execute_cmd_environment.yml",
    "test_psrp_multiple_commands.yml",
    "test_psrp_get_command_metadata.yml",
    "test_psrp_reset_runspace_state.yml",
    "test_psrp_reset_runspace_state_fail.yml",
    "test_psrp_run_protocol_version_2.2.yml",
    "test_psrp_run_protocol_version_2.3.yml",
    "test_psrp_with_history.yml",
    "test_psrp_with_no_history.yml",
    "test_psrp_stream_output_invocation.yml",
    "test_psrp_stream_no_output_invocation.yml",
    "test_psrp_clear_commands.yml",
    "test_psrp_error_failed.yml",
    "test_psrp_no_profile.yml",
    "test_psrp_key_exchange_timeout.yml",
    "test_psrp_receive_failure.yml",
]
COMPARE_PIPELINE_TYPES = {
    "test_client_execute_ps_failure.yml", "test_psrp_multiple_invocations.yml", "test_psrp_error_failed.yml",
    "test_psrp_stream_output_invocation.yml", "test_psrp_stream_no_output_invocation.yml",
    "test_psrp_clear_commands.yml", "test_psrp_with_no_history.yml", "test_psrp_no_profile.yml",
}

PSRP_TYPES = {
    0x00010002: "SESSION_CAPABILITY", 0x00021009: "APPLICATION_PRIVATE_DATA", 0x00021005: "RUNSPACEPOOL_STATE",
    0x00041004: "PIPELINE_OUTPUT", 0x00041005: "ERROR_RECORD", 0x00041006: "PIPELINE_STATE",
    0x00041010: "PROGRESS_RECORD", 0x00041011: "INFORMATION_RECORD", 0x00021004: "RUNSPACE_AVAILABILITY",
    0x00010006: "ENCRYPTED_SESSION_KEY", 0x0002100B: "RUNSPACEPOOL_INIT_DATA", 0x00041009: "WARNING_RECORD",
}


def psrp_types(body):
    """PSRP message types (start fragments) in all rsp:Stream elements of a response body."""
    out = []
    for stream in body.iter(f"{{{NS['rsp']}}}Stream"):
        if not stream.text:
            continue
        data = base64.b64decode(stream.text)
        i = 0
        while i + 21 <= len(data):
            fragment_id = int.from_bytes(data[i + 8:i + 16], "big")
            length = int.from_bytes(data[i + 17:i + 21], "big")
            blob = data[i + 21:i + 21 + length]
            if fragment_id == 0 and len(blob) >= 8:
                mtype = int.from_bytes(blob[4:8], "little")
                out.append(PSRP_TYPES.get(mtype, hex(mtype)))
            i += 21 + length
    return out


def shape(el, path=()):
    """Set of (element path, sorted attribute names) below el."""
    result = set()
    for child in el:
        p = path + (child.tag,)
        result.add((p, tuple(sorted(child.attrib))))
        result |= shape(child, p)
    return result


def fault_info(root):
    fault = root.find("s:Body/s:Fault", NS)
    if fault is None:
        return None
    sub = fault.find("s:Code/s:Subcode/s:Value", NS)
    wsf = fault.find("s:Detail/f:WSManFault", NS)
    return ((sub.text or "").split(":")[-1] if sub is not None else None,
            wsf.get("Code") if wsf is not None else None)


def ids(root):
    """ShellId / CommandId values a response assigns."""
    found = []
    sel = root.find(".//x:ResourceCreated//w:Selector[@Name='ShellId']", NS)
    if sel is not None and sel.text:
        found.append(sel.text)
    cmd = root.find(".//rsp:CommandResponse/rsp:CommandId", NS)
    if cmd is not None and cmd.text:
        found.append(cmd.text)
    return found


def post(port, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/wsman", data=body.encode("utf-8"), method="POST",
        headers={"Content-Type": "application/soap+xml;charset=UTF-8",
                 "Authorization": "Basic " + base64.b64encode(b"replay:Replay0!").decode()})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def receive_target(request_root):
    desired = request_root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
    return (desired.get("CommandId") or "pool").upper() if desired is not None else "pool"


def replay(port, name):
    problems = []
    data = yaml.safe_load(open(os.path.join(CORPUS, name), encoding="utf-8"))
    mapping = {}
    # PSRP message types delivered so far per Receive target, by Windows and by the stand-in:
    # Windows may spread the same messages over more Receives (timing), so the comparison is on
    # the whole sequence per target, not per response.
    theirs_seq, ours_seq = {}, {}
    for n, msg in enumerate(data["messages"]):
        request = msg["request"]
        for old, new in mapping.items():
            request = request.replace(old, new)
        status, raw = post(port, request)
        try:
            ours = ET.fromstring(raw)
        except ET.ParseError:
            problems.append(f"step {n}: HTTP {status}, not XML: {raw[:200]!r}")
            continue
        theirs = ET.fromstring(msg["response"])
        for old, new in zip(ids(theirs), ids(ours), strict=False):
            if old != new:
                mapping[old] = new
        tf, of = fault_info(theirs), fault_info(ours)
        action = re.search(r"Action[^>]*>([^<]+)<", msg["request"]).group(1).rsplit("/", 1)[-1]
        if action == "Receive":
            target = receive_target(ET.fromstring(msg["request"]))
            tb, ob = theirs.find("s:Body", NS), ours.find("s:Body", NS)
            theirs_seq.setdefault(target, []).extend(psrp_types(tb) if not tf else [])
            ours_seq.setdefault(target, []).extend(psrp_types(ob) if not of else [])
            if of == ("TimedOut", "2150858793") and not tf:
                # Fine when the stand-in already delivered everything Windows had by now.
                if len(ours_seq[target]) < len([t for t in theirs_seq[target] if t != "PROGRESS_RECORD"]):
                    problems.append(f"step {n} Receive: stand-in timed out before delivering what Windows did")
                continue
            if tf == ("TimedOut", "2150858793") and not of:
                continue
        if tf or of:
            if tf != of:
                problems.append(f"step {n} {action}: Windows fault {tf}, stand-in fault {of}")
            continue
        ta = theirs.find("s:Header/a:Action", NS).text
        oa = ours.find("s:Header/a:Action", NS).text
        if ta != oa:
            problems.append(f"step {n}: action {oa} != Windows {ta}")
        ts, os_ = shape(theirs.find("s:Body", NS)), shape(ours.find("s:Body", NS))
        if action == "Receive":
            # Running vs Done and how output spreads over Receives depend on timing: compare the
            # rest of the shape (the PSRP message sequences are compared at the end).
            skip = ("}ExitCode", "}Stream", "}CommandState")
            ts = {p for p in ts if not p[0][-1].endswith(skip)}
            os_ = {p for p in os_ if not p[0][-1].endswith(skip)}
        if ts != os_:
            problems.append(f"step {n} {action}: body shape differs: only Windows {sorted(ts - os_)[:4]}, "
                            f"only stand-in {sorted(os_ - ts)[:4]}")
    for target, seq in theirs_seq.items():
        if target != "pool" and name not in COMPARE_PIPELINE_TYPES and not os.environ.get("REPLAY_COMPARE_ALL"):
            continue
        want = [t for t in seq if t != "PROGRESS_RECORD"]  # Windows reports module loading progress
        got = ours_seq.get(target, [])
        if want != got:
            problems.append(f"PSRP messages for {target.lower()}: stand-in {got} != Windows {want}")
    return problems


def main():
    users = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"standin-replay-users-{os.getpid()}.txt")
    with open(users, "w", encoding="utf-8") as fh:
        fh.write(":replay:Replay0!\n")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "host.py"), "--port", "0", "--scheme", "http", "--auth", "basic",
         "--users", users, "--allow-unencrypted", "--max-receive-wait", "1", "--max-envelope-kb", "150"]
        + (["--log", os.environ["REPLAY_LOG"]] if os.environ.get("REPLAY_LOG") else []),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    passed = failed = 0
    try:
        line = proc.stdout.readline()
        m = re.match(r"ready port=(\d+)$", line.strip())
        if not m:
            print("stand-in did not start:", line, proc.stderr.read())
            return 1
        port = int(m.group(1))
        for name in FILES:
            problems = replay(port, name)
            if problems:
                failed += 1
                print(f"FAIL {name}")
                for p in problems:
                    print("     " + p)
            else:
                passed += 1
                print(f"ok   {name}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(users)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
