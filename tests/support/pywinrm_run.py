#!/usr/bin/env python3
"""Runs commands through pywinrm's low-level Protocol API and prints the results as JSON.

Usage: pywinrm_run.py ENDPOINT TRANSPORT USER PASSWORD 'CMD ARG..' ['CMD ARG..' ...]

Each command runs in one shared shell (open_shell / run_command / get_command_output /
cleanup_command / close_shell). pywinrm encrypts messages by default over http with NTLM
("auto"). Output: {"results": [{"stdout", "stderr", "code"}...]} or {"error": "<type>: <msg>"}.
"""

import json
import sys

from winrm.protocol import Protocol


def main():
    endpoint, transport, user, password, *commands = sys.argv[1:]
    try:
        p = Protocol(
            endpoint=endpoint,
            transport=transport,
            username=user,
            password=password,
            server_cert_validation="ignore",
        )
        shell = p.open_shell()
        results = []
        for line in commands:
            program, *args = line.split(" ")
            cid = p.run_command(shell, program, args)
            out, err, code = p.get_command_output(shell, cid)
            p.cleanup_command(shell, cid)
            results.append({"stdout": out.decode(), "stderr": err.decode(), "code": code})
        p.close_shell(shell)
        print(json.dumps({"results": results}))
    except Exception as e:  # report, do not traceback: the Rust test asserts on it
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))


if __name__ == "__main__":
    main()
