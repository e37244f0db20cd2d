#!/usr/bin/env python3
"""Runs one Ansible ad-hoc module (real ansible-core, its winrm or psrp connection) against one
host through hopgate and prints one JSON object: {"rc", "status", "result"}.

    python3 tests/clients/ansible_client.py --connection winrm|psrp --port N --path wsman/HOST \
        --user U --password TOKEN --ca CA.pem --module ansible.windows.win_ping [--args "k=v ..."] \
        [--check] [--module-dir DIR]

The gateway takes Basic `user:token`, over https: the inventory is written as README.md's
"Ansible through hopgate" section describes it. `result` is the host's entry of the json
stdout callback (`changed`, `failed`, `msg`, the module's own keys); `status` is "ok",
"failed" or "unreachable". `--module-dir` puts a directory of modules first on the module
path (a changed copy of a module, for the tests). Exit 0 when Ansible ran (whatever the task
did), 1 when it could not be run at all.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def inventory(a):
    common = {
        "ansible_host": "127.0.0.1",
        "ansible_port": a.port,
        "ansible_user": a.user,
        "ansible_password": a.password,
        "ansible_connection": a.connection,
    }
    if a.connection == "winrm":
        common |= {
            "ansible_winrm_transport": "basic",
            "ansible_winrm_scheme": "https",
            "ansible_winrm_path": "/" + a.path.lstrip("/"),
            "ansible_winrm_ca_trust_path": a.ca,
            "ansible_winrm_server_cert_validation": "validate",
        }
    else:
        common |= {
            "ansible_psrp_auth": "basic",
            "ansible_psrp_protocol": "https",
            "ansible_psrp_path": a.path.lstrip("/"),
            "ansible_psrp_ca_cert": a.ca,
            "ansible_psrp_cert_validation": "validate",
        }
    return {"all": {"hosts": {"target": common}}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--connection", choices=["winrm", "psrp"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--module", required=True)
    p.add_argument("--args", default="")
    p.add_argument("--check", action="store_true")
    p.add_argument("--module-dir")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inv = os.path.join(tmp, "inventory.json")
        with open(inv, "w") as f:
            json.dump(inventory(a), f)
        env = dict(os.environ)
        env |= {
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ANSIBLE_LOCAL_TEMP": tmp,
            "ANSIBLE_HOME": tmp,
            "ANSIBLE_NOCOLOR": "1",
        }
        if a.module_dir:
            env["ANSIBLE_LIBRARY"] = a.module_dir
        # The ad hoc CLI of the ansible-core this Python has (no PATH lookup needed).
        cmd = [sys.executable, "-m", "ansible.cli.adhoc", "-i", inv, "target", "-m", a.module]
        if a.args:
            cmd += ["-a", a.args]
        if a.check:
            cmd.append("--check")
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=110)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(json.dumps({"error": str(e), "type": type(e).__name__}))
            return 1
    try:
        doc = json.loads(out.stdout)
        result = doc["plays"][0]["tasks"][0]["hosts"]["target"]
    except (ValueError, KeyError, IndexError):
        print(json.dumps({"error": "ansible printed no result", "rc": out.returncode,
                          "stdout": out.stdout[-4000:], "stderr": out.stderr[-4000:]}))
        return 1
    status = "unreachable" if result.get("unreachable") else "failed" if result.get("failed") else "ok"
    print(json.dumps({"rc": out.returncode, "status": status, "result": result,
                      "stderr": out.stderr[-2000:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
