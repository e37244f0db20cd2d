#!/usr/bin/env python3
"""Generate crates/policy/data/cmdlets.json: the parameter-binding metadata of the
cmdlets hopgate's policy engine knows (names, aliases, types, switches, positions,
parameter sets, pipeline binding), from Microsoft's public cmdlet reference.

Sources (markdown cmdlet help, one file per cmdlet, each parameter with a yaml block):
  https://github.com/MicrosoftDocs/PowerShell-Docs
      reference/5.1/{Microsoft.PowerShell.Management, Microsoft.PowerShell.Utility,
      Microsoft.PowerShell.Core, Microsoft.PowerShell.Security, CimCmdlets}
  https://github.com/MicrosoftDocs/windows-powershell-docs
      docset/winserver2025-ps/{ActiveDirectory, Defender, DnsServer, NetAdapter,
      NetSecurity, NetTCPIP, ScheduledTasks, SmbShare, Storage}
  The commits read are recorded in the output's "source" field; the data last committed
  was generated from PowerShell-Docs 27138b21b41de3e2b43cfcac4a56861ca419d5eb and
  windows-powershell-docs f113d6bda7df4bf60fb213c320c12678b40ae571.
  Hand-kept facts the reference does not state are in the override tables below, each
  naming its source; command aliases of the core modules also come from the default
  alias table in crates/pwsh/src/alias.rs.

Rerun (Python 3.8+, stdlib and the git command line only; not run in CI, the output is
committed):
  git clone --bare https://github.com/MicrosoftDocs/PowerShell-Docs ps-docs.git
  git clone --bare https://github.com/MicrosoftDocs/windows-powershell-docs win-docs.git
  python3 scripts/gen-cmdlet-metadata.py --ps-docs ps-docs.git --win-docs win-docs.git
Options: --ps-rev/--win-rev (default HEAD), --out (default crates/policy/data/cmdlets.json).
Doc inconsistencies found while reading are printed to stderr as warnings.

Output shape (what crates/policy/src/metadata.rs parses): {"source": "...", "commands":
[{"name", "module", "aliases"?, "default_set"?, "params": [{"name", "aliases"?, "type",
"switch"?, "sets": [{"name", "position"?, "mandatory"?, "by_value"?,
"by_property_name"?, "remaining"?}]}]}], fields at their default value omitted, commands
sorted by name, one command per line. Types are .NET names without namespaces
(System.String[] -> String[]). Common parameters (-Verbose, -ErrorAction, ...) are left
out; -WhatIf and -Confirm, which exist only on commands that support ShouldProcess, stay.
Positions are 0-based, as in the reference.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ALL_SETS = "__AllParameterSets"

PS_DOCS_ROOT = "reference/5.1"
PS_MODULES = [
    "CimCmdlets",
    "Microsoft.PowerShell.Core",
    "Microsoft.PowerShell.Management",
    "Microsoft.PowerShell.Security",
    "Microsoft.PowerShell.Utility",
]
WIN_DOCS_ROOT = "docset/winserver2025-ps"
WIN_MODULES = [
    "ActiveDirectory",
    "Defender",
    "DnsServer",
    "NetAdapter",
    "NetSecurity",
    "NetTCPIP",
    "ScheduledTasks",
    "SmbShare",
    "Storage",
]

# Parameters every cmdlet gets from [CmdletBinding()] (about_CommonParameters); the
# binder knows them, so they are not repeated per command.
COMMON_PARAMETERS = {
    "Debug", "ErrorAction", "ErrorVariable", "InformationAction", "InformationVariable",
    "OutBuffer", "OutVariable", "PipelineVariable", "ProgressAction", "Verbose",
    "WarningAction", "WarningVariable",
}

# Command aliases defined by module manifests, which the reference does not list.
# CimCmdlets: AliasesToExport of CimCmdlets.psd1 in Windows PowerShell 5.1
# ($PSHOME\Modules\CimCmdlets\CimCmdlets.psd1; `Get-Alias -Definition *-Cim*`).
MODULE_ALIASES = {
    "Get-CimAssociatedInstance": ["gcai"],
    "Get-CimClass": ["gcls"],
    "Get-CimInstance": ["gcim"],
    "Get-CimSession": ["gcms"],
    "Invoke-CimMethod": ["icim"],
    "New-CimInstance": ["ncim"],
    "New-CimSession": ["ncms"],
    "Register-CimIndicationEvent": ["rcie"],
    "Remove-CimInstance": ["rcim"],
    "Remove-CimSession": ["rcms"],
    "Set-CimInstance": ["scim"],
}

# Parameters declared with ValueFromRemainingArguments = true. The platyPS v1 yaml of the
# reference does not carry this flag (only files in the newer schema do, e.g. Write-Host).
# Source: the [Parameter] attributes in https://github.com/PowerShell/PowerShell
# (929903692e550140efb5042ed05d65bfd21ccb5f), restricted to commands that exist in
# Windows PowerShell 5.1 with the same declaration:
#   Write-Object.cs (Write-Output), WriteConsoleCmdlet.cs (Write-Host),
#   ReadConsoleCmdlet.cs (Read-Host), TraceExpressionCommand.cs (Trace-Command, set
#   commandSet), GetCommandCommand.cs (Get-Command), NewModuleCommand.cs (New-Module),
#   InternalCommands.cs (ForEach-Object: ScriptBlockSet, PropertyAndMethodSet).
# (Join-Path -AdditionalChildPath and Switch-Process are PowerShell 7 only.)
# Keys: (command, parameter); value: the sets it applies to, or None for all its sets.
REMAINING_ARGUMENTS = {
    ("Write-Output", "InputObject"): None,
    ("Write-Host", "Object"): None,
    ("Read-Host", "Prompt"): None,
    ("Trace-Command", "ArgumentList"): None,
    ("Get-Command", "ArgumentList"): None,
    ("New-Module", "ArgumentList"): None,
    ("ForEach-Object", "RemainingScripts"): None,
    ("ForEach-Object", "ArgumentList"): None,
}

# Positions the reference gets wrong where it matters: two parameters given the same
# position in one set (the yaml lumps sets whose positions differ). Keys: (command,
# parameter); values: {set: position, or None for named}. Sets not named keep the
# reference's value.
# Source: the [Parameter] attributes in https://github.com/PowerShell/PowerShell
# (929903692e550140efb5042ed05d65bfd21ccb5f, and for Get-WmiObject, removed since, its
# last version 855d94376bc31ee8b12dba6f19e0e49404fa4c04^), except Register-ScheduledTask,
# whose CDXML is not public: there the reference's own numbering (RunLevel 7, Description
# 8 in set User) leaves 5 and 6 for User and Password, matching `Get-Command
# Register-ScheduledTask -Syntax` on Windows Server.
POSITION_FIXES = {
    # InvokeCommandCommand.cs: Position 0 only in InProcess, 1 in every remote set
    ("Invoke-Command", "ScriptBlock"): {
        s: 1 for s in ("Session", "ComputerName", "Uri", "VMId", "VMName", "ContainerId")
    },
    # PushRunspaceCommand.cs: named in ComputerName and Uri, 1 in VMId and VMName
    ("Enter-PSSession", "Credential"): {"ComputerName": None, "Uri": None},
    # ObjectEventRegistrationBase.cs: SourceIdentifier 100, Action 101
    ("Register-CimIndicationEvent", "SourceIdentifier"): {ALL_SETS: 100},
    ("Register-CimIndicationEvent", "Action"): {ALL_SETS: 101},
    # SignatureCommands.cs: FilePath 0 in ByPath, Certificate 1
    ("Set-AuthenticodeSignature", "FilePath"): {"ByPath": 0},
    # GetWMIObjectCommand.cs: Class 0 in query, 1 in list; Property 1 in query
    ("Get-WmiObject", "Class"): {"query": 0, "list": 1},
    # see above
    ("Register-ScheduledTask", "User"): {"User": 5},
    ("Register-ScheduledTask", "Password"): {"User": 6},
}
# Where a collision remains (no source to settle it), positions from the collision on
# are dropped in that set: arguments there are left unbound, which the binder refuses,
# rather than bound to a guess.

# Parameter aliases the reference gives to two parameters of one command; the alias is
# kept on the parameter whose initials it spells and dropped from the other.
# Set-MpPreference: 'dsnf' (DisableScanningNetworkFiles) is also listed on
# DisableRestorePoint; 'scsqst' (ScanScheduleQuickScanTime) also on ScanScheduleTime.
ALIAS_DROPS = {
    ("Set-MpPreference", "DisableRestorePoint"): ["dsnf"],
    ("Set-MpPreference", "ScanScheduleTime"): ["scsqst"],
}

WARNINGS = []
VERBOSE = []


def warn(where, message):
    WARNINGS.append(f"{where}: {message}")


# --- reading the repositories -------------------------------------------------------


def git(repo, *args, stdin=None):
    return subprocess.run(
        ["git", "-C", repo, *args], input=stdin, capture_output=True, check=True
    ).stdout


def read_docs(repo, rev, root, modules):
    """Yields (module, path, text) for each cmdlet page of the modules."""
    commit = git(repo, "rev-parse", rev).decode().strip()
    paths = []
    for module in modules:
        listing = git(repo, "ls-tree", "--name-only", f"{commit}:{root}/{module}/")
        names = [n for n in listing.decode().splitlines() if n.endswith(".md")]
        if not names:
            sys.exit(f"no pages for {module} under {root} at {commit}")
        paths += [(module, f"{root}/{module}/{n}") for n in sorted(names)]
    request = "".join(f"{commit}:{p}\n" for _, p in paths).encode()
    out = git(repo, "cat-file", "--batch", stdin=request)
    pages = []
    pos = 0
    for module, path in paths:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].decode().split()
        if len(header) != 3 or header[1] != "blob":
            sys.exit(f"cannot read {path}: {' '.join(header)}")
        size = int(header[2])
        body = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1
        pages.append((module, path, body.decode("utf-8-sig")))
    return commit, pages


# --- parsing one page -----------------------------------------------------------------


def short_type(t):
    """System.Collections.Generic.List`1[System.String] -> List`1[String]."""
    t = t.strip()
    cim = ""
    if "#" in t:  # CimInstance#root/StandardCimv2/MSFT_NetIPAddress: keep the class
        t, cim = t.split("#", 1)
        cim = "#" + cim
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", t) + cim


def parse_flag(value, where, key):
    v = value.strip().split()[0].lower() if value.strip() else ""
    if v not in ("true", "false"):
        warn(where, f"{key} '{value}' is neither True nor False; read as False")
    return v == "true"


def parse_required(value, where):
    """'True' / 'False' / 'True (A, B), False (C)' -> (default, {set: bool})."""
    per_set = {}
    for flag, names in re.findall(r"(True|False)\s*\(([^)]*)\)", value, re.I):
        for n in names.split(","):
            per_set[n.strip()] = flag.lower() == "true"
    if per_set:
        return False, per_set
    return parse_flag(value, where, "Required"), {}


def parse_position(value, where):
    v = value.strip()
    if re.fullmatch(r"\d+", v):
        return int(v)
    if v.lower() != "named":
        warn(where, f"Position '{v}' read as Named")
    return None


def parse_pipeline(value, where):
    """'True (ByPropertyName, ByValue)' / 'False' / 'ByValue (False), ByName (False)'."""
    v = value.strip()
    explicit = re.findall(r"(ByValue|ByPropertyName|ByName)\s*\((True|False)\)", v, re.I)
    if explicit:
        got = {k.lower(): f.lower() == "true" for k, f in explicit}
        return got.get("byvalue", False), got.get("bypropertyname", got.get("byname", False))
    if v.lower().startswith("false"):
        return False, False
    if v.lower().startswith("true"):
        by_value = "byvalue" in v.lower()
        by_prop = "bypropertyname" in v.lower()
        if not (by_value or by_prop):
            # Unqualified: assume both, the reading under which more can bind.
            warn(where, f"pipeline input '{v}' does not say how; read as ByValue and ByPropertyName")
            return True, True
        return by_value, by_prop
    warn(where, f"pipeline input '{v}' read as False")
    return False, False


def yaml_v1(lines):
    """platyPS v1 block: 'Key: value' lines."""
    d = {}
    for line in lines:
        m = re.match(r"^([A-Za-z][A-Za-z ]*):\s*(.*?)\s*$", line)
        if m:
            d[m.group(1)] = m.group(2)
    return d


def yaml_v2(lines, where):
    """PlatyPS 2024-05-01 block: top-level keys, 'Aliases' a list, 'ParameterSets' a list
    of mappings. Returns blocks in the v1 shape, one per parameter set entry."""
    top = {}
    lists = {}
    key = None
    for line in lines:
        if not line.strip():
            continue
        m = re.match(r"^([A-Za-z]\w*):\s*(.*?)\s*$", line)
        if m:
            key = m.group(1)
            top[key] = m.group(2)
            lists[key] = []
        elif key is not None and line.startswith("- "):
            lists[key].append({"_": line[2:].strip()})
            m2 = re.match(r"^([A-Za-z]\w*):\s*(.*?)\s*$", line[2:])
            if m2:
                lists[key][-1] = {m2.group(1): m2.group(2)}
        elif key is not None and line.startswith("  ") and lists[key]:
            m2 = re.match(r"^\s+([A-Za-z]\w*):\s*(.*?)\s*$", line)
            if m2:
                lists[key][-1][m2.group(1)] = m2.group(2)
    aliases = top.get("Aliases", "")
    if aliases in ("[]", ""):
        aliases = ", ".join(item.get("_", "") for item in lists.get("Aliases", []))
    blocks = []
    for ps in lists.get("ParameterSets", []):
        if "Name" not in ps:
            warn(where, f"parameter set entry without a name: {ps}")
            continue
        by = []
        if ps.get("ValueFromPipelineByPropertyName", "false").lower() == "true":
            by.append("ByPropertyName")
        if ps.get("ValueFromPipeline", "false").lower() == "true":
            by.append("ByValue")
        blocks.append(
            {
                "Type": top.get("Type", ""),
                "Parameter Sets": ps["Name"],
                "Aliases": aliases,
                "Required": ps.get("IsRequired", "false"),
                "Position": ps.get("Position", "Named"),
                "Accept pipeline input": f"True ({', '.join(by)})" if by else "False",
                "_remaining": ps.get("ValueFromRemainingArguments", "false").lower() == "true",
            }
        )
    if not blocks:
        warn(where, "yaml block without parameter sets")
    return blocks


def scan(text):
    """Splits a page into (h2, h3, kind, payload) events: kind 'fence' with (info, lines)
    or 'line' with the line, outside code fences."""
    events = []
    h2 = h3 = None
    fence = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if fence is not None:
            if re.match(r"^\s*```\s*$", line):
                events.append((h2, h3, "fence", fence))
                fence = None
            else:
                fence[1].append(line)
            continue
        m = re.match(r"^\s*```\s*(\S*)", line)
        if m:
            fence = (m.group(1).lower(), [])
            continue
        if line.startswith("## "):
            h2, h3 = line[3:].strip().upper(), None
            continue
        if line.startswith("### "):
            h3 = line[4:].strip()
            continue
        events.append((h2, h3, "line", line))
    return events


def front_matter(text):
    m = re.match(r"^\ufeff?---\s*\n(.*?)\n---\s*\n", text.replace("\r\n", "\n"), re.S)
    d = {}
    if m:
        for line in m.group(1).split("\n"):
            kv = re.match(r"^([^:]+):\s*(.*?)\s*$", line)
            if kv:
                d[kv.group(1).strip().lower()] = kv.group(2)
    return d


def parse_page(module, path, text):
    """One cmdlet page -> a command dict (loader shape), or None for non-cmdlet pages."""
    fm = front_matter(text)
    if "module guid" in fm or fm.get("document type", "") == "module":
        return None
    events = scan(text)
    if not any(h2 in ("PARAMETERS", "SYNTAX") for h2, _, _, _ in events):
        return None
    stem = os.path.basename(path)[:-3]
    name = fm.get("title") or stem
    if name != stem:
        warn(path, f"title '{name}' differs from the file name; using the file name")
        name = stem
    fm_module = fm.get("module name", module)
    if fm_module != module:
        warn(path, f"Module Name '{fm_module}' differs from its folder '{module}'; using the folder")

    # SYNTAX: parameter-set headings, "(Default)" marks the default set.
    syntax_sets = []
    default_set = None
    seen_h3 = set()
    for h2, h3, _, _ in events:
        if h2 == "SYNTAX" and h3 and h3 not in seen_h3:
            seen_h3.add(h3)
            # "Path (Default) - FileSystem provider": one set, shown per provider
            set_name = re.sub(r"\s+-\s+[^-]*providers?$", "", h3, flags=re.I)
            if re.search(r"\s*\(Default\)$", set_name, re.I):
                set_name = re.sub(r"\s*\(Default\)$", "", set_name, flags=re.I)
                if default_set not in (None, set_name):
                    warn(path, f"two default sets: {default_set}, {set_name}")
                default_set = set_name
            if set_name not in syntax_sets:
                syntax_sets.append(set_name)
    # The syntax lines: positional parameters are written "[-Name]", in position order.
    syntax_order = {}
    for h2, h3, kind, payload in events:
        if h2 == "SYNTAX" and kind == "fence":
            set_name = ALL_SETS
            if h3:
                set_name = re.sub(r"\s+-\s+[^-]*providers?$", "", h3, flags=re.I)
                set_name = re.sub(r"\s*\(Default\)$", "", set_name, flags=re.I)
            order = re.findall(r"\[-([A-Za-z_]\w*)\]\s*<", " ".join(payload[1]))
            syntax_order.setdefault(set_name, order)
    if syntax_sets == [ALL_SETS]:
        syntax_sets = []
    if default_set == ALL_SETS:
        default_set = None

    # PARAMETERS: '### -Name' and its yaml block(s).
    params = []
    by_name = {}
    for h2, h3, kind, payload in events:
        if h2 != "PARAMETERS" or kind != "fence" or not h3:
            continue
        info, lines = payload
        if info not in ("yaml", "yml"):
            continue
        if not h3.startswith("-"):
            warn(path, f"yaml block under '{h3}', not a parameter heading; skipped")
            continue
        pname = h3[1:].split()[0]
        where = f"{path} -{pname}"
        if pname in COMMON_PARAMETERS:
            warn(where, "a common parameter documented as a parameter; left out")
            continue
        if any(line.startswith("ParameterSets:") for line in lines):
            blocks = yaml_v2(lines, where)
        else:
            blocks = [yaml_v1(lines)]
        for block in blocks:
            add_block(by_name, params, pname, block, where)

    for p in params:
        check_param(name, p, path)
    fix_remaining(name, params, path)
    all_sets = list(syntax_sets)
    for p in params:
        for s in p["sets"]:
            if s["name"] != ALL_SETS and s["name"] not in all_sets:
                all_sets.append(s["name"])
    fix_positions(name, params, all_sets, path)
    fix_aliases(name, params, path)
    cmd = {"name": name, "module": module}
    aliases = page_aliases(events, name, path)
    if aliases:
        cmd["aliases"] = aliases
    if default_set:
        cmd["default_set"] = default_set
    cmd["params"] = params
    check_sets(cmd, syntax_sets, path)
    check_positions(cmd, syntax_order, path)
    return cmd


def add_block(by_name, params, pname, block, where):
    for key in ("Type", "Parameter Sets", "Required", "Position", "Accept pipeline input"):
        if key not in block:
            warn(where, f"yaml block without '{key}'")
    type_name = short_type(block.get("Type", ""))
    aliases = [a.strip() for a in block.get("Aliases", "").split(",") if a.strip()]
    p = by_name.get(pname.lower())
    if p is None:
        p = {"name": pname, "aliases": aliases, "type": type_name, "switch": False, "sets": []}
        by_name[pname.lower()] = p
        params.append(p)
    else:
        if pname != p["name"]:
            warn(where, f"spelled '{p['name']}' in another block")
        if type_name != p["type"]:
            warn(where, f"type '{type_name}' here, '{p['type']}' in another block; keeping the first")
        for a in aliases:
            if a.lower() not in (x.lower() for x in p["aliases"]):
                p["aliases"].append(a)
    p["switch"] = p["type"] in ("SwitchParameter", "Switch")

    set_names = [s.strip() for s in block.get("Parameter Sets", "(All)").split(",") if s.strip()]
    required, per_set = parse_required(block.get("Required", "False"), where)
    position = parse_position(block.get("Position", "Named"), where)
    by_value, by_prop = parse_pipeline(block.get("Accept pipeline input", "False"), where)
    for unknown in [n for n in per_set if n not in set_names]:
        # Invoke-CimMethod -ResourceUri: the sets are only in the Required line
        warn(where, f"Required names set '{unknown}' which 'Parameter Sets' does not list; added")
        set_names.append(unknown)
    for s in set_names:
        sname = ALL_SETS if s.lower() in ("(all)", ALL_SETS.lower()) else s
        meta = {"name": sname}
        if position is not None:
            meta["position"] = position
        if per_set.get(s, required):
            meta["mandatory"] = True
        if by_value:
            meta["by_value"] = True
        if by_prop:
            meta["by_property_name"] = True
        if block.get("_remaining"):
            meta["remaining"] = True
        old = next((m for m in p["sets"] if m["name"].lower() == sname.lower()), None)
        if old is not None:
            if old != meta:
                warn(where, f"set '{sname}' documented twice, differently: {old} / {meta}; keeping the first")
            continue
        p["sets"].append(meta)


def check_param(command, p, path):
    if not p["aliases"]:
        del p["aliases"]
    if not p["switch"]:
        del p["switch"]
    if not p["type"]:
        warn(f"{path} -{p['name']}", "no type")
    names = [s["name"] for s in p["sets"]]
    if ALL_SETS in names and len(names) > 1:
        warn(f"{path} -{p['name']}", f"in (All) and in {names}; keeping only (All)'s entry and the named ones")


def fix_remaining(command, params, path):
    for (cmd, pname), sets in REMAINING_ARGUMENTS.items():
        if cmd.lower() != command.lower():
            continue
        p = next((x for x in params if x["name"].lower() == pname.lower()), None)
        if p is None:
            warn(path, f"override: no parameter {pname} to mark ValueFromRemainingArguments")
            continue
        for s in p["sets"]:
            if sets is None or s["name"] in sets:
                s["remaining"] = True


def expand_all(p, all_sets):
    """Replaces a parameter's (All) entry by one entry per named set."""
    entry = next((s for s in p["sets"] if s["name"] == ALL_SETS), None)
    if entry is None or not all_sets:
        return
    p["sets"].remove(entry)
    for name in all_sets:
        if not any(s["name"] == name for s in p["sets"]):
            p["sets"].append(dict(entry, name=name))


def set_position(p, set_name, position, all_sets):
    if set_name != ALL_SETS and not any(s["name"] == set_name for s in p["sets"]):
        expand_all(p, all_sets)
    for s in p["sets"]:
        if s["name"] == set_name:
            if position is None:
                s.pop("position", None)
            else:
                s["position"] = position
            return True
    return False


def fix_positions(command, params, all_sets, path):
    for (cmd, pname), fixes in POSITION_FIXES.items():
        if cmd.lower() != command.lower():
            continue
        p = next((x for x in params if x["name"].lower() == pname.lower()), None)
        for set_name, position in fixes.items():
            if p is None or not set_position(p, set_name, position, all_sets):
                warn(path, f"position override: no -{pname} in set {set_name}")
    for set_name in all_sets or [ALL_SETS]:
        held = {}
        for p in params:
            for s in p["sets"]:
                if s["name"] in (set_name, ALL_SETS) and "position" in s:
                    held.setdefault(s["position"], []).append(p)
        clash = min((pos for pos, ps in held.items() if len(ps) > 1), default=None)
        if clash is None:
            continue
        names = [f"-{p['name']}" for p in held[clash]]
        warn(path, f"set {set_name}: position {clash} given to {', '.join(names)}; positions from {clash} on dropped in that set")
        for pos, ps in held.items():
            if pos >= clash:
                for p in ps:
                    set_position(p, set_name, None, all_sets)


def fix_aliases(command, params, path):
    for (cmd, pname), drops in ALIAS_DROPS.items():
        if cmd.lower() != command.lower():
            continue
        p = next((x for x in params if x["name"].lower() == pname.lower()), None)
        if p is None or not all(a in p.get("aliases", []) for a in drops):
            warn(path, f"alias override: -{pname} has no alias {drops}")
            continue
        p["aliases"] = [a for a in p["aliases"] if a not in drops]
        if not p["aliases"]:
            del p["aliases"]


def page_aliases(events, name, path):
    """'Windows PowerShell includes the following aliases for `X`:' and its list."""
    found = []
    collecting = False
    for h2, _, kind, line in events:
        if kind != "line":
            collecting = False
            continue
        m = re.search(r"following aliases? for `([^`]+)`", line, re.I)
        if m:
            if m.group(1).lower() != name.lower():
                warn(path, f"alias list names `{m.group(1)}`")
            collecting = True
            continue
        if not collecting:
            continue
        # "- `gci`", or "- Windows: `dir`, `gci`"; anything else ends the list
        item = re.match(r"^\s*[-*]\s+(?:[A-Za-z ]+:\s*)?(`[^`\s]+`(?:\s*,\s*`[^`\s]+`)*)\s*$", line)
        if item:
            found += re.findall(r"`([^`\s]+)`", item.group(1))
        elif line.strip():
            collecting = False
    return found


def check_sets(cmd, syntax_sets, path):
    """Warns where the yaml names sets the SYNTAX section does not list."""
    if not syntax_sets:
        return
    known = {s.lower() for s in syntax_sets} | {ALL_SETS.lower()}
    for p in cmd["params"]:
        for s in p["sets"]:
            if s["name"].lower() not in known:
                warn(f"{path} -{p['name']}", f"set '{s['name']}' is not in SYNTAX {syntax_sets}")


def check_positions(cmd, syntax_order, path):
    """Compares each set's positional order in the yaml with its syntax line."""
    for set_name, order in syntax_order.items():
        held = []
        for p in cmd["params"]:
            for s in p["sets"]:
                if s["name"] in (set_name, ALL_SETS) and "position" in s:
                    held.append((s["position"], p["name"]))
        yaml_order = [n for _, n in sorted(held)]
        if [n.lower() for n in yaml_order] != [n.lower() for n in order]:
            VERBOSE.append(f"{path}: set {set_name}: positional order {sorted(held)} in the yaml, {order} in SYNTAX")


# --- checks over a command -----------------------------------------------------------


def validate(cmd):
    """The invariants metadata_tests.rs holds the data to; returns problems."""
    problems = []
    seen = {}
    for p in cmd["params"]:
        if not p["sets"]:
            problems.append(f"-{p['name']} has no set")
        for n in [p["name"]] + p.get("aliases", []):
            k = n.lower()
            if k in seen and seen[k] != p["name"]:
                problems.append(f"'{n}' names both -{seen[k]} and -{p['name']}")
            elif k in seen:
                problems.append(f"'{n}' twice on -{p['name']}")
            seen[k] = p["name"]
    named = {s["name"] for p in cmd["params"] for s in p["sets"]} - {ALL_SETS}
    for set_name in sorted(named) or [ALL_SETS]:
        taken = {}
        for p in cmd["params"]:
            for s in p["sets"]:
                if s["name"] in (set_name, ALL_SETS) and "position" in s:
                    pos = s["position"]
                    if pos in taken and taken[pos] != p["name"]:
                        problems.append(
                            f"set {set_name}: position {pos} held by -{taken[pos]} and -{p['name']}"
                        )
                    taken[pos] = p["name"]
    return problems


# --- aliases from crates/pwsh/src/alias.rs -------------------------------------------


def default_aliases(repo_root):
    path = os.path.join(repo_root, "crates", "pwsh", "src", "alias.rs")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    table = {}
    for alias, command in re.findall(r'\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)', text):
        table.setdefault(command.lower(), []).append(alias)
    return table


# --- output ----------------------------------------------------------------------------


def write(out, source, commands):
    lines = [json.dumps(c, separators=(",", ":"), ensure_ascii=False) for c in commands]
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write('{"source":' + json.dumps(source) + ',"commands":[\n')
        f.write(",\n".join(lines))
        f.write("\n]}\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo_root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ps-docs", required=True, help="a clone (bare or not) of MicrosoftDocs/PowerShell-Docs")
    ap.add_argument("--win-docs", required=True, help="a clone of MicrosoftDocs/windows-powershell-docs")
    ap.add_argument("--ps-rev", default="HEAD")
    ap.add_argument("--win-rev", default="HEAD")
    ap.add_argument("--verbose", action="store_true", help="also print where SYNTAX and yaml positions disagree")
    ap.add_argument("--out", default=os.path.join(repo_root, "crates", "policy", "data", "cmdlets.json"))
    args = ap.parse_args()

    ps_commit, ps_pages = read_docs(args.ps_docs, args.ps_rev, PS_DOCS_ROOT, PS_MODULES)
    win_commit, win_pages = read_docs(args.win_docs, args.win_rev, WIN_DOCS_ROOT, WIN_MODULES)
    aliases_rs = default_aliases(repo_root)

    commands = {}
    for module, path, text in ps_pages + win_pages:
        cmd = parse_page(module, path, text)
        if cmd is None:
            continue
        key = cmd["name"].lower()
        if key in commands:
            warn(path, f"{cmd['name']} already read from module {commands[key]['module']}; keeping that")
            continue
        extra = MODULE_ALIASES.get(cmd["name"], []) + aliases_rs.pop(key, [])
        doc_aliases = {a.lower() for a in cmd.get("aliases", [])}
        for a in extra:
            if a.lower() not in doc_aliases:
                doc_aliases.add(a.lower())
                cmd.setdefault("aliases", []).append(a)
        if "aliases" in cmd:
            cmd["aliases"] = sorted(cmd["aliases"], key=str.lower)
            # keep the key order of the loader's struct
            cmd = {k: cmd[k] for k in ("name", "module", "aliases", "default_set", "params") if k in cmd}
        for problem in validate(cmd):
            warn(path, problem)
        commands[key] = cmd
    for command, aliases in sorted(aliases_rs.items()):
        warn("crates/pwsh/src/alias.rs", f"{aliases} stand for {command}, which no page read documents")
    alias_owner = {}
    for c in commands.values():
        for a in c.get("aliases", []):
            if a.lower() in alias_owner:
                warn(c["name"], f"alias '{a}' also names {alias_owner[a.lower()]}")
            alias_owner[a.lower()] = c["name"]

    source = (
        f"https://github.com/MicrosoftDocs/PowerShell-Docs {ps_commit} {PS_DOCS_ROOT}/"
        f"{{{','.join(PS_MODULES)}}}; "
        f"https://github.com/MicrosoftDocs/windows-powershell-docs {win_commit} {WIN_DOCS_ROOT}/"
        f"{{{','.join(WIN_MODULES)}}}; "
        "overrides in scripts/gen-cmdlet-metadata.py and crates/pwsh/src/alias.rs"
    )
    ordered = sorted(commands.values(), key=lambda c: c["name"].lower())
    write(args.out, source, ordered)

    counts = {}
    for c in ordered:
        counts[c["module"]] = counts.get(c["module"], 0) + 1
    for w in WARNINGS:
        print("warning:", w, file=sys.stderr)
    if args.verbose:
        for w in VERBOSE:
            print("note:", w, file=sys.stderr)
    else:
        print(f"{len(VERBOSE)} parameter sets whose SYNTAX line orders positional parameters unlike the yaml (the yaml is used); --verbose lists them", file=sys.stderr)
    print(f"{len(ordered)} commands, {os.path.getsize(args.out)} bytes -> {args.out}", file=sys.stderr)
    for m, n in sorted(counts.items()):
        print(f"  {m}: {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
