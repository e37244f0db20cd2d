"""A tiny emulation of a handful of PowerShell commands for the stand-in Windows host.

Owns: a small script reader (statements, pipelines, quoted words, -Parameters, script
blocks), the emulated commands (Get-Service, Get-Process, Write-Output, Get-Date,
Invoke-Expression, Out-String, Start-Sleep, ...) as streaming generators, variables and
preference handling. The objects and their text live in psformat.
Must not: touch PSRP framing or WS-Man; it returns plain Python objects (PSObj, str, int,
datetime) and reports errors through the context. It is an emulation for tests, not a
PowerShell implementation: anything it does not know is "not recognized", like Windows.
"""

import ast
import datetime
import fnmatch
import re

from psformat import EnumVal, PSObj, display_user, format_objects, ipconfig_text  # noqa: F401 - re-exported


class PSError:
    """An error record to report: message, category, ids (CommandNotFoundException etc.)."""

    def __init__(self, message, exception_type, category, reason, fqid, target=None,
                 activity=None):
        self.message = message
        self.exception_type = exception_type
        self.category = category  # psrpcore ErrorCategory name, e.g. "ObjectNotFound"
        self.reason = reason
        self.fqid = fqid
        self.target = target
        self.activity = activity


class TerminatingError(Exception):
    """A terminating error: the pipeline fails with this error record."""

    def __init__(self, error):
        super().__init__(error.message)
        self.error = error


class ScriptExit(Exception):
    """`exit N` inside a script."""

    def __init__(self, code):
        super().__init__(f"exit {code}")
        self.code = code


def command_not_found(name):
    return PSError(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. "
        "Check the spelling of the name, or if a path was included, verify that the path is correct and try again.",
        "System.Management.Automation.CommandNotFoundException",
        "ObjectNotFound",
        "CommandNotFoundException",
        "CommandNotFoundException",
        target=name,
    )


class Context:
    """What a running command can see and do: identity, output hooks, variables, cancellation.

    write_stream(kind, message) receives "warning", "verbose" and "debug" records that the
    preference variables let through."""

    def __init__(self, hostname, user, stop_event, write_error, write_information=None, write_stream=None):
        self.hostname = hostname
        self.user = user
        self.stop_event = stop_event
        self.write_error = write_error
        self.write_information = write_information or (lambda msg: None)
        self.write_stream = write_stream or (lambda kind, msg: None)
        self.vars = {
            "env:computername": hostname,
            "env:username": (user or "").split("\\")[-1],
            "erroractionpreference": "Continue",
            "warningpreference": "Continue",
            "verbosepreference": "SilentlyContinue",
            "debugpreference": "SilentlyContinue",
            "true": True,
            "false": False,
            "null": None,
        }

    def error(self, err):
        """A non-terminating error, or a terminating one under $ErrorActionPreference = 'Stop'."""
        if str(self.vars.get("erroractionpreference", "")).lower() == "stop":
            raise TerminatingError(err)
        self.write_error(err)

    def stream(self, kind, message):
        pref = str(self.vars.get(f"{kind}preference", "SilentlyContinue")).lower()
        if pref == "stop":
            raise TerminatingError(PSError(
                f"The running command stopped because the preference variable \"{kind.capitalize()}Preference\" "
                f"or common parameter is set to Stop: {message}",
                "System.Management.Automation.ActionPreferenceStopException", "OperationStopped",
                "ActionPreferenceStopException", "ActionPreferenceStop"))
        if pref in ("continue", "inquire"):
            self.write_stream(kind, message)

    def sleep(self, seconds):
        """Sleep unless stopped; True when the full time passed."""
        return not self.stop_event.wait(seconds)


# ---------------------------------------------------------------------------------------
# Data the emulated host "has".

SERVICES = [
    ("BITS", "Background Intelligent Transfer Service", "Running"),
    ("Dhcp", "DHCP Client", "Running"),
    ("Dnscache", "DNS Client", "Running"),
    ("EventLog", "Windows Event Log", "Running"),
    ("LanmanServer", "Server", "Running"),
    ("Spooler", "Print Spooler", "Running"),
    ("W32Time", "Windows Time", "Stopped"),
    ("WinRM", "Windows Remote Management (WS-Management)", "Running"),
    ("wuauserv", "Windows Update", "Stopped"),
]
SERVICE_STATUS = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4}

PROCESSES = [
    # Handles, NPM(K), PM(K), WS(K), CPU(s), Id, SI, ProcessName
    (420, 23, 6120, 18844, 1.25, 612, 0, "lsass"),
    (1203, 52, 28412, 64220, 12.5, 1024, 0, "svchost"),
    (331, 18, 4410, 15012, 0.31, 2216, 0, "spoolsv"),
    (612, 37, 61840, 78512, 4.02, 3312, 0, "wsmprovhost"),
    (1820, 0, 192, 140, 310.77, 4, 0, "System"),
]


def service_obj(name, display, status):
    return PSObj(
        ["System.ServiceProcess.ServiceController", "System.ComponentModel.Component",
         "System.MarshalByRefObject", "System.Object"],
        {
            "Name": name,
            "DisplayName": display,
            "Status": EnumVal("System.ServiceProcess.ServiceControllerStatus", status, SERVICE_STATUS[status]),
            "ServiceName": name,
            "MachineName": ".",
            "CanStop": status == "Running",
        },
        to_string="System.ServiceProcess.ServiceController",
    )


def process_obj(row):
    handles, npm, pm, ws, cpu, pid, si, name = row
    return PSObj(
        ["System.Diagnostics.Process", "System.ComponentModel.Component", "System.MarshalByRefObject",
         "System.Object"],
        {"Name": name, "Id": pid, "Handles": handles, "NPM": npm * 1024, "PM": pm * 1024, "WS": ws * 1024,
         "CPU": cpu, "SI": si, "ProcessName": name},
        to_string=f"System.Diagnostics.Process ({name})",
    )


# ---------------------------------------------------------------------------------------
# Script reading.

class Block:
    """A `{ ... }` script block token (or a `( ... )` group when paren is set)."""

    def __init__(self, text, paren=False):
        self.text = text
        self.paren = paren


class Word:
    """A token: its text, whether it was quoted, whether it is a -Parameter."""

    def __init__(self, text, quoted=False):
        self.text = text
        self.quoted = quoted

    @property
    def is_param(self):
        return (not self.quoted) and len(self.text) > 1 and self.text[0] == "-" and self.text[1].isalpha()


def _expand(text, ctx_vars):
    def repl(m):
        name = m.group(1)
        value = ctx_vars.get(name.lower(), "")
        return "" if value is None else str(value)

    return re.sub(r"\$(env:[A-Za-z_]+|[A-Za-z_]+)", repl, text)


def split_statements(script):
    """Statements of a script: lists of pipeline elements, each a list of tokens."""
    statements = []
    pipeline = []
    tokens = []
    i = 0
    n = len(script)

    def end_element():
        nonlocal tokens
        if tokens:
            pipeline.append(tokens)
        tokens = []

    def end_statement():
        nonlocal pipeline
        end_element()
        if pipeline:
            statements.append(pipeline)
        pipeline = []

    while i < n:
        c = script[i]
        if c in " \t":
            i += 1
        elif c in ";\r\n":
            end_statement()
            i += 1
        elif c == "#":
            while i < n and script[i] not in "\r\n":
                i += 1
        elif c == "|":
            end_element()
            i += 1
        elif c == "'":
            j = i + 1
            buf = []
            while j < n:
                if script[j] == "'":
                    if j + 1 < n and script[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(script[j])
                j += 1
            tokens.append(Word("".join(buf), quoted=True))
            i = j + 1
        elif c == '"':
            j = i + 1
            buf = []
            while j < n and script[j] != '"':
                if script[j] == "`" and j + 1 < n:
                    buf.append(script[j + 1])
                    j += 2
                    continue
                buf.append(script[j])
                j += 1
            tokens.append(Word("".join(buf), quoted="expand"))
            i = j + 1
        elif c in "{(":
            close = "}" if c == "{" else ")"
            depth = 0
            j = i
            while j < n:
                if script[j] == c:
                    depth += 1
                elif script[j] == close:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            inner = script[i + 1:j]
            tokens.append(Block(inner, paren=(c == "(")))
            i = j + 1
        else:
            j = i
            while j < n and script[j] not in " \t;\r\n|'\"{}()":
                j += 1
            tokens.append(Word(script[i:j]))
            i = j if j > i else i + 1
    end_statement()
    return statements


def parse_element(tokens, ctx_vars):
    """One pipeline element: (command name or literal, [(param name or None, value)])."""
    if tokens and isinstance(tokens[0], Word) and tokens[0].text == "&":
        tokens = tokens[1:]
    if not tokens:
        return None, []
    head = tokens[0]
    params = []
    i = 1
    while i < len(tokens):
        t = tokens[i]
        if isinstance(t, Word) and t.is_param:
            name = t.text[1:]
            if ":" in name:
                name, value = name.split(":", 1)
                params.append((name, value))
            elif i + 1 < len(tokens) and not (isinstance(tokens[i + 1], Word) and tokens[i + 1].is_param):
                value, i = _array_value(tokens, i + 1, ctx_vars)
                params.append((name, value))
            else:
                params.append((name, True))
        else:
            value, i = _array_value(tokens, i, ctx_vars)
            params.append((None, value))
        i += 1
    return head, params


def _array_value(tokens, i, ctx_vars):
    """The value starting at tokens[i]: `a, b ,c` (an array) or one token; returns (value, last index)."""
    items = []
    while True:
        t = tokens[i]
        if isinstance(t, Word) and not t.quoted and "," in t.text:
            parts = t.text.split(",")
            items.extend(_token_value(Word(p), ctx_vars) for p in parts if p)
            more = t.text.endswith(",")
        else:
            items.append(_token_value(t, ctx_vars))
            more = False
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and isinstance(nxt, Word) and not nxt.quoted and nxt.text.startswith(","):
            more = True
            if nxt.text == ",":
                i += 1
        if not more or i + 1 >= len(tokens):
            break
        i += 1
    return (items[0] if len(items) == 1 else items), i


def _token_value(t, ctx_vars):
    if isinstance(t, Block):
        return t
    if t.quoted == "expand":
        return _expand(t.text, ctx_vars)
    if t.quoted:
        return t.text
    if re.fullmatch(r"-?\d+", t.text):
        return int(t.text)
    if t.text.lower() in ("$true", "$false"):
        return t.text.lower() == "$true"
    if t.text.startswith("$"):
        name = t.text[1:].lower()
        if name in ctx_vars:
            return ctx_vars[name]
        return _expand(t.text, ctx_vars)
    return t.text


# ---------------------------------------------------------------------------------------
# Commands: generators taking (input iterator, params, ctx).

def _param(params, *names, position=None, default=None):
    lowered = [n.lower() for n in names]
    for name, value in params:
        if name is not None and any(n.startswith(name.lower()) or name.lower() == n for n in lowered):
            return value
    if position is not None:
        positional = [v for n, v in params if n is None]
        if len(positional) > position:
            return positional[position]
    return default


def _names(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def cmd_get_service(inp, params, ctx):
    names = _names(_param(params, "Name", "ServiceName", position=0))
    if not names:
        for svc in SERVICES:
            yield service_obj(*svc)
        return
    for pattern in names:
        matched = [s for s in SERVICES if fnmatch.fnmatch(s[0].lower(), pattern.lower())]
        if not matched and not any(ch in pattern for ch in "*?["):
            ctx.error(PSError(
                f"Cannot find any service with service name '{pattern}'.",
                "Microsoft.PowerShell.Commands.ServiceCommandException",
                "ObjectNotFound", "ServiceCommandException",
                "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                target=pattern, activity="Get-Service"))
        for svc in matched:
            yield service_obj(*svc)


def cmd_get_process(inp, params, ctx):
    names = _names(_param(params, "Name", "ProcessName", position=0))
    for row in PROCESSES:
        if names and not any(fnmatch.fnmatch(row[7].lower(), p.lower()) for p in names):
            continue
        yield process_obj(row)
    if names:
        for pattern in names:
            if not any(ch in pattern for ch in "*?[") and not any(r[7].lower() == pattern.lower() for r in PROCESSES):
                ctx.error(PSError(
                    f"Cannot find a process with the name \"{pattern}\". Verify the process name and call the "
                    "cmdlet again.",
                    "Microsoft.PowerShell.Commands.ProcessCommandException",
                    "ObjectNotFound", "ProcessCommandException",
                    "NoProcessFoundForGivenName,Microsoft.PowerShell.Commands.GetProcessCommand",
                    target=pattern, activity="Get-Process"))


def cmd_hostname(inp, params, ctx):
    yield ctx.hostname


def cmd_whoami(inp, params, ctx):
    yield display_user(ctx.user, ctx.hostname)


def cmd_write_output(inp, params, ctx):
    values = [v for n, v in params if n is None or n.lower().startswith("inputobj")]
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from v
        else:
            yield v
    yield from inp


def cmd_write_host(inp, params, ctx):
    values = [str(v) for n, v in params if n is None or n.lower() == "object"]
    ctx.write_information(" ".join(values))
    return
    yield  # pragma: no cover - makes this a generator


def cmd_write_error(inp, params, ctx):
    msg = _param(params, "Message", position=0, default="")
    ctx.error(PSError(str(msg), "Microsoft.PowerShell.Commands.WriteErrorException", "NotSpecified",
                      "WriteErrorException", "Microsoft.PowerShell.Commands.WriteErrorException"))
    return
    yield  # pragma: no cover


def _stream_cmd(kind):
    def cmd(inp, params, ctx):
        msg = _param(params, "Message", position=0, default="")
        ctx.stream(kind, str(msg))
        return
        yield  # pragma: no cover

    return cmd


def cmd_write_information(inp, params, ctx):
    msg = _param(params, "MessageData", "Message", position=0, default="")
    ctx.write_information(str(msg))
    return
    yield  # pragma: no cover


def cmd_get_date(inp, params, ctx):
    yield datetime.datetime.now()


def cmd_noop(inp, params, ctx):
    for _ in inp:
        pass
    return
    yield  # pragma: no cover


def cmd_prompt(inp, params, ctx):
    # Windows' default prompt function, in the user's home (no nesting).
    name = ctx.user.split("@")[0].split("\\")[-1]
    yield "PS C:\\Users\\" + name + "\\Documents> "


def cmd_tabexpansion2(inp, params, ctx):
    # Completion of a command name at the cursor; a real host returns a CommandCompletion.
    script = str(_param(params, "inputScript", position=0, default=""))
    word = script.split()[-1] if script.split() else ""
    for name in COMMANDS_DISPLAY:
        if name.lower().startswith(word.lower()):
            yield name


def cmd_start_sleep(inp, params, ctx):
    seconds = _param(params, "Seconds", position=0, default=None)
    millis = _param(params, "Milliseconds", default=None)
    total = float(seconds) if seconds is not None else (float(millis) / 1000.0 if millis is not None else 1.0)
    ctx.sleep(total)
    return
    yield  # pragma: no cover


def cmd_get_command(inp, params, ctx):
    names = _names(_param(params, "Name", position=0))
    for name in sorted(COMMANDS_DISPLAY):
        if names and not any(fnmatch.fnmatch(name.lower(), p.lower()) for p in names):
            continue
        yield PSObj(["System.Management.Automation.CmdletInfo", "System.Management.Automation.CommandInfo",
                     "System.Object"],
                    {"Name": name, "CommandType": EnumVal("System.Management.Automation.CommandTypes", "Cmdlet", 8),
                     "Source": "Microsoft.PowerShell.Management", "Version": "3.1.0.0"},
                    to_string=name)


def cmd_select_object(inp, params, ctx):
    first = _param(params, "First", default=None)
    props = _names(_param(params, "Property", position=0))
    count = 0
    for obj in inp:
        if first is not None and count >= int(first):
            break
        count += 1
        if props and isinstance(obj, PSObj):
            yield PSObj(["Selected." + obj.type_names[0], "System.Management.Automation.PSCustomObject",
                         "System.Object"],
                        {p: obj.props.get(p) for p in props}, to_string="", adapted=False)
        else:
            yield obj


def cmd_measure_object(inp, params, ctx):
    count = sum(1 for _ in inp)
    yield PSObj(["Microsoft.PowerShell.Commands.GenericMeasureInfo",
                 "Microsoft.PowerShell.Commands.MeasureInfo", "System.Object"],
                {"Count": count, "Average": None, "Sum": None, "Maximum": None, "Minimum": None,
                 "Property": None},
                to_string="Microsoft.PowerShell.Commands.GenericMeasureInfo")


def cmd_out_string(inp, params, ctx):
    stream = bool(_param(params, "Stream", default=False))
    objs = list(inp)
    text = format_objects(objs)
    if stream:
        for line in text.split("\n"):
            yield line.rstrip("\r")
    else:
        yield text


def cmd_invoke_expression(inp, params, ctx):
    script = _param(params, "Command", position=0, default="")
    if isinstance(script, Block):
        script = script.text
    yield from run_script(str(script), ctx)


def cmd_ipconfig(inp, params, ctx):
    text = ipconfig_text(all_="/all" in [str(v).lower() for _, v in params], hostname=ctx.hostname)
    for line in text.split("\r\n")[:-1]:
        yield line


def cmd_stop_computer(inp, params, ctx):
    # "Would run": a real host would shut down; the stand-in records and outputs nothing.
    return
    yield  # pragma: no cover


def cmd_exit(inp, params, ctx):
    code = _param(params, "code", position=0, default=0)
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = 0
    raise ScriptExit(code)
    yield  # pragma: no cover


COMMANDS = {
    "get-service": cmd_get_service,
    "gsv": cmd_get_service,
    "get-process": cmd_get_process,
    "gps": cmd_get_process,
    "ps": cmd_get_process,
    "hostname": cmd_hostname,
    "hostname.exe": cmd_hostname,
    "whoami": cmd_whoami,
    "whoami.exe": cmd_whoami,
    "write-output": cmd_write_output,
    "echo": cmd_write_output,
    "write": cmd_write_output,
    "write-host": cmd_write_host,
    "write-error": cmd_write_error,
    "write-warning": _stream_cmd("warning"),
    "write-verbose": _stream_cmd("verbose"),
    "write-debug": _stream_cmd("debug"),
    "write-information": cmd_write_information,
    "get-date": cmd_get_date,
    "stop-computer": cmd_stop_computer,
    "restart-computer": cmd_stop_computer,
    "out-default": cmd_noop,
    "out-null": cmd_noop,
    "out-string": cmd_out_string,
    "select-object": cmd_select_object,
    "select": cmd_select_object,
    "measure-object": cmd_measure_object,
    "measure": cmd_measure_object,
    "get-command": cmd_get_command,
    "gcm": cmd_get_command,
    "start-sleep": cmd_start_sleep,
    "sleep": cmd_start_sleep,
    "invoke-expression": cmd_invoke_expression,
    "iex": cmd_invoke_expression,
    "ipconfig": cmd_ipconfig,
    "ipconfig.exe": cmd_ipconfig,
    "exit": cmd_exit,
    "prompt": cmd_prompt,
    "tabexpansion2": cmd_tabexpansion2,
}

COMMANDS_DISPLAY = [
    "Get-Command", "Get-Date", "Get-Process", "Get-Service", "Invoke-Expression", "Measure-Object",
    "Out-Default", "Out-Null", "Out-String", "Restart-Computer", "Select-Object", "Start-Sleep",
    "Stop-Computer", "Write-Debug", "Write-Error", "Write-Host", "Write-Information", "Write-Output",
    "Write-Verbose", "Write-Warning",
]


def find_command(name):
    return COMMANDS.get(name.lower())


def run_pipeline(elements, ctx, first_input=None):
    """Run [(name, params)] as one pipeline; yields the last element's output."""
    stream = iter(first_input or [])
    for name, params in elements:
        if isinstance(name, Block):
            stream = run_script(name.text, ctx)
            continue
        func = find_command(name)
        if func is None:
            raise TerminatingError(command_not_found(name))
        stream = func(stream, params, ctx)
    yield from stream


_ARITH_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div,
                ast.Mod, ast.USub, ast.UAdd)


def arithmetic(text):
    """The value of a plain integer arithmetic statement such as `1+1` (PowerShell prints 2), or None."""
    if not re.fullmatch(r"[\d\s+\-*/%().]+", text) or not re.search(r"\d", text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, _ARITH_NODES) for node in ast.walk(tree)):
        return None
    try:
        value = eval(compile(tree, "<arith>", "eval"), {"__builtins__": {}}, {})  # only numbers and operators
    except (ArithmeticError, ValueError):
        return None
    if isinstance(value, float) and value.is_integer() and "/" not in text:
        value = int(value)
    return value


def run_script(script, ctx):
    """Run script text: each statement's pipeline, streaming the output objects."""
    ctx_vars = ctx.vars
    for statement in split_statements(script):
        first = statement[0]
        if (len(statement) == 1 and len(first) >= 3 and isinstance(first[0], Word) and not first[0].quoted
                and first[0].text.startswith("$") and isinstance(first[1], Word) and first[1].text == "="):
            # `$name = value`: a literal, or the output of the rest of the statement.
            name = first[0].text[1:].lower()
            rest = first[2:]
            if len(rest) == 1 and not isinstance(rest[0], Block):
                ctx_vars[name] = _token_value(rest[0], ctx_vars)
            else:
                values = list(run_script_tokens([rest], ctx))
                ctx_vars[name] = values[0] if len(values) == 1 else values
            continue
        yield from run_script_tokens(statement, ctx)


def run_script_tokens(statement, ctx):
    """Run one statement given as pipeline elements of tokens."""
    ctx_vars = ctx.vars
    if len(statement) == 1 and all((isinstance(t, Word) and not t.quoted) or (isinstance(t, Block) and t.paren)
                                   for t in statement[0]):
        value = arithmetic("".join(t.text if isinstance(t, Word) else f"({t.text})" for t in statement[0]))
        if value is not None:
            yield value
            return
    elements = []
    for tokens in statement:
        head, params = parse_element(tokens, ctx_vars)
        if head is None:
            continue
        if isinstance(head, Block):
            elements.append((head, params))
        elif isinstance(head, Word) and head.quoted:
            elements.append(("write-output", [(None, _token_value(head, ctx_vars))]))
        elif isinstance(head, Word) and re.fullmatch(r"-?\d+", head.text):
            elements.append(("write-output", [(None, int(head.text))]))
        elif isinstance(head, Word) and head.text.startswith("$"):
            elements.append(("write-output", [(None, _token_value(head, ctx_vars))]))
        else:
            elements.append((head.text, params))
    if elements:
        yield from run_pipeline(elements, ctx)
