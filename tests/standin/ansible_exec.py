"""The small part of Ansible's Windows exec wrapper the stand-in host needs.

Ansible (ansible-core `executor/powershell/`) runs every module through `bootstrap_wrapper.ps1`,
which reads its input: a JSON line with the exec wrapper, a line of four NUL characters, then
the manifest JSON (`scripts`: name -> base64 code; `actions`: which scripts run with which
parameters). Anything after the manifest line is input for the last action. A real host runs
that PowerShell; this emulation reads the manifest and answers as the modules the tests use
would: `win_ping` returns `pong`, `win_service` reports a change, `winrm_put_file.ps1` hashes
the file it was sent (SHA-1, as the real script prints it), `win_shell`/`win_command` echo.
"""

import base64
import binascii
import hashlib
import json

SEPARATOR = "\0\0\0\0"


def is_bootstrap(script):
    """True for ansible-core's bootstrap_wrapper.ps1 (as sent, whitespace aside)."""
    s = script or ""
    return "$codeJson = foreach ($in in $input)" in s and "ConvertFrom-Json" in s


def split_payload(lines):
    """(exec wrapper JSON, manifest JSON, remaining input lines) from the input lines."""
    lines = list(lines)
    try:
        sep = next(i for i, l in enumerate(lines) if l.strip("\r\n") == SEPARATOR)
    except StopIteration:
        return None, None, []
    head = "\n".join(lines[:sep])
    manifest = lines[sep + 1] if sep + 1 < len(lines) else ""
    return head, manifest, lines[sep + 2:]


def module_name(script_name):
    """`win_ping` from `ansible_collections.ansible.windows.plugins.modules.win_ping.ps1`."""
    base = script_name[:-4] if script_name.lower().endswith(".ps1") else script_name
    return base.rsplit(".", 1)[-1]


def run(lines):
    """Runs a payload given as input lines; returns (stdout text, exit code, what ran)."""
    head, manifest_text, rest = split_payload(lines)
    if head is None:
        return '{"failed":true,"msg":"stand-in: no Ansible manifest in the input"}', 1, None
    try:
        manifest = json.loads(manifest_text)
    except ValueError:
        return '{"failed":true,"msg":"stand-in: manifest is not JSON"}', 1, None
    actions = manifest.get("actions") or []
    last = actions[-1] if actions else {}
    name = last.get("name", "")
    params = last.get("params") or {}
    if name == "winrm_put_file.ps1" or name == "psrp_put_file.ps1":
        digest = hashlib.sha1()
        for line in rest:
            line = line.strip()
            if not line:
                continue
            try:
                digest.update(base64.b64decode(line))
            except (binascii.Error, ValueError):
                return '{"failed":true,"msg":"stand-in: put_file data is not base64"}', 1, name
        return json.dumps({"sha1": digest.hexdigest()}), 0, f"{name} {params.get('Path', '')}"
    if name == "powershell_mkdtemp.ps1":
        # The real script prints the directory it created.
        base = params.get("Directory") or "C:\\Windows\\TEMP"
        return f"{base}\\{params.get('Name', 'ansible-tmp')}", 0, name
    if name == "powershell_expand_user.ps1":
        return params.get("Path", "~").replace("~", "C:\\Users\\svc-gw"), 0, name
    if name != "module_wrapper.ps1":
        return json.dumps({"failed": True, "msg": f"stand-in: cannot emulate {name}"}), 1, name
    module = module_name(params.get("Script", ""))
    args = {}
    for var in params.get("Variables") or []:
        if var.get("Name") == "complex_args":
            args = var.get("Value") or {}
    user_args = {k: v for k, v in args.items() if not k.startswith("_ansible_")}
    check = bool(args.get("_ansible_check_mode"))
    if module == "win_ping":
        data = user_args.get("data", "pong")
        if data == "crash":
            return json.dumps({"failed": True, "msg": "boom"}), 1, module
        result = {"changed": False, "ping": data}
    elif module == "win_service":
        state = user_args.get("state")
        result = {"changed": bool(state) and not check, "name": user_args.get("name"),
                  "exists": True, "state": "running" if state in ("started", "restarted") else "stopped"}
    elif module in ("win_shell", "win_command"):
        cmd = user_args.get("_raw_params", "")
        result = {"changed": True, "rc": 0, "stdout": f"ran: {cmd}\r\n", "stderr": "", "cmd": cmd}
    elif module == "win_stat":
        result = {"changed": False, "stat": {"exists": False}}
    elif module == "win_copy" and args.get("_copy_mode") == "query":
        # Every file is reported as needing a copy.
        result = {"changed": False, "files": user_args.get("files") or [], "directories": [],
                  "symlinks": []}
    elif module == "win_copy":
        result = {"changed": True, "dest": user_args.get("dest"), "operation": "file_copy"}
    else:
        result = {"failed": True, "msg": f"stand-in: module {module} is not emulated"}
        return json.dumps(result), 1, module
    result["invocation"] = {"module_args": user_args}
    return json.dumps(result), 0, module
