"""cmd.exe emulation for the stand-in host's WinRS shell.

Owns: turning a WinRS command line into output bytes and an exit code the way cmd.exe
would: hostname, whoami, ipconfig [/all], echo, exit N, ver, type (file not found),
ping [-t] / timeout /t N (long runners that stop on a signal), cmd /c ..., the `&`, `&&`
and `||` operators, powershell[.exe] -EncodedCommand/-Command/stdin (through pscmds), and
the "is not recognized" error for anything else.
Must not: know about WS-Man; output goes through the Io object it is given.
"""

import base64
import binascii
import re

import ansible_exec
import pscmds


class Io:
    """What a running command writes to and waits on (implemented by the WinRS shell)."""

    def __init__(self, out, err, stop_event, read_stdin, hostname, user, environment=None):
        self.environment = {"COMPUTERNAME": hostname, "USERNAME": (user or "").split("\\")[-1],
                            "USERDOMAIN": (user or "").split("\\")[0] if "\\" in (user or "") else hostname,
                            "OS": "Windows_NT", "SYSTEMROOT": "C:\\Windows", "WINDIR": "C:\\Windows"}
        self.environment.update({k.upper(): v for k, v in (environment or {}).items()})
        self.out = out  # callable(str): stdout text (encoded by the shell)
        self.err = err  # callable(str): stderr text
        self.stop_event = stop_event
        self.read_stdin = read_stdin  # callable() -> str: all stdin until End (or stop)
        self.hostname = hostname
        self.user = user

    def sleep(self, seconds):
        return not self.stop_event.wait(seconds)


NOT_RECOGNIZED = "'{}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"


def split_operators(line):
    """Split on unquoted &, &&, || into [(operator_before, part)]."""
    parts = []
    buf = []
    op = None
    i = 0
    quoted = False
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
            buf.append(c)
        elif not quoted and c == "^" and i + 1 < len(line):
            buf.append(line[i + 1])
            i += 1
        elif not quoted and (line.startswith("&&", i) or line.startswith("||", i)):
            parts.append((op, "".join(buf).strip()))
            op = line[i:i + 2]
            buf = []
            i += 1
        elif not quoted and c == "&":
            parts.append((op, "".join(buf).strip()))
            op = "&"
            buf = []
        else:
            buf.append(c)
        i += 1
    parts.append((op, "".join(buf).strip()))
    return [(o, p) for o, p in parts if p]


def split_args(text):
    """Windows-style argument split (double quotes group, quotes removed)."""
    args = []
    buf = []
    quoted = False
    have = False
    for c in text:
        if c == '"':
            quoted = not quoted
            have = True
        elif c in " \t" and not quoted:
            if have:
                args.append("".join(buf))
                buf = []
                have = False
        else:
            buf.append(c)
            have = True
    if have:
        args.append("".join(buf))
    return args


def program_name(word):
    name = word.strip('"').replace("/", "\\").split("\\")[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def is_runnable_without_shell(line):
    """Whether CreateProcess (WINRS_SKIP_CMD_SHELL=TRUE) could start this: a program given with a path."""
    words = split_args(line)
    return bool(words) and ("\\" in words[0] or "/" in words[0] or ":" in words[0])


def expand_vars(line, env):
    """cmd.exe %VAR% expansion (unknown variables stay as written)."""
    def repl(m):
        return env.get(m.group(1).upper(), m.group(0))

    return re.sub(r"%([A-Za-z_][A-Za-z0-9_()]*)%", repl, line)


def run_line(line, io):
    """Run a whole cmd line (with & / && / ||); returns the exit code."""
    line = expand_vars(line, io.environment)
    code = 0
    for op, part in split_operators(line):
        if op == "&&" and code != 0:
            continue
        if op == "||" and code == 0:
            continue
        code = run_simple(part, io)
        if io.stop_event.is_set():
            break
    return code


def run_simple(part, io):
    part = part.strip()
    if part.startswith("@"):
        part = part[1:]
    head, _, rest = part.partition(" ")
    rest = rest.strip()
    # `echo.` and `echo,` are cmd idioms for an empty line
    lower_head = head.lower()
    if lower_head in ("echo.", "echo,"):
        io.out("\r\n")
        return 0
    name = program_name(head)
    if name == "cmd":
        args = split_args(rest)
        for i, a in enumerate(args):
            if a.lower() in ("/c", "/k"):
                inner = rest.split(a, 1)[1].strip() if a in rest else " ".join(args[i + 1:])
                if len(inner) >= 2 and inner.startswith('"') and inner.endswith('"') and inner.count('"') == 2:
                    inner = inner[1:-1]
                return run_line(inner, io)
        # cmd without /c reads its commands from stdin
        return run_stdin_interpreter(io, powershell=False)
    if name == "hostname":
        io.out(io.hostname + "\r\n")
        return 0
    if name == "whoami":
        io.out(pscmds.display_user(io.user, io.hostname) + "\r\n")
        return 0
    if name == "ipconfig":
        args = [a.lower() for a in split_args(rest)]
        io.out(pscmds.ipconfig_text(all_="/all" in args, hostname=io.hostname))
        return 0
    if name == "echo":
        if not rest:
            io.out("ECHO is on.\r\n")
        else:
            io.out(rest + "\r\n")
        return 0
    if name == "exit":
        args = split_args(rest)
        if args and args[0].lower() == "/b":
            args = args[1:]
        try:
            return int(args[0]) if args else 0
        except ValueError:
            return 0
    if name == "ver":
        io.out("\r\nMicrosoft Windows [Version 10.0.17763.5830]\r\n")
        return 0
    if name == "type":
        io.err("The system cannot find the file specified.\r\n")
        return 1
    if name == "ping":
        return run_ping(split_args(rest), io)
    if name == "bigout":
        return run_bigout(split_args(rest), io)
    if name == "timeout":
        return run_timeout(split_args(rest), io)
    if name in ("powershell", "pwsh"):
        return run_powershell(split_args(rest), io)
    io.err(NOT_RECOGNIZED.format(head))
    return 1


# A test-only program with no Windows counterpart: `bigout N` prints exactly N bytes of
# BIGOUT_LINE repeated (the last copy cut), so a test knows the byte count and digest of a
# large output without receiving it twice.
BIGOUT_LINE = "hopgate large output test line 0123456789 abcdefghijklmnopqrst\r\n"
assert len(BIGOUT_LINE) == 64


def run_bigout(args, io):
    try:
        n = int(args[0])
    except (IndexError, ValueError):
        io.err("usage: bigout BYTES\r\n")
        return 1
    piece = BIGOUT_LINE * 16384  # 1 MiB
    while n > 0:
        chunk = piece[:n]
        io.out(chunk)
        n -= len(chunk)
    return 0


def run_ping(args, io):
    target = next((a for a in args if not a.startswith("-") and not a.startswith("/") and not a.isdigit()),
                  "127.0.0.1")
    forever = any(a.lower() in ("-t", "/t") for a in args)
    count = 4
    for i, a in enumerate(args):
        if a.lower() in ("-n", "/n") and i + 1 < len(args):
            try:
                count = int(args[i + 1])
            except ValueError:
                pass
    io.out(f"\r\nPinging {target} with 32 bytes of data:\r\n")
    sent = 0
    while forever or sent < count:
        io.out(f"Reply from {target}: bytes=32 time<1ms TTL=128\r\n")
        sent += 1
        if (forever or sent < count) and not io.sleep(1.0 if forever else 0.05):
            break
    io.out(f"\r\nPing statistics for {target}:\r\n"
           f"    Packets: Sent = {sent}, Received = {sent}, Lost = 0 (0% loss),\r\n"
           "Approximate round trip times in milli-seconds:\r\n"
           "    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n")
    if io.stop_event.is_set():
        io.out("Control-C\r\n^C")
        return -1073741510  # STATUS_CONTROL_C_EXIT
    return 0


def run_timeout(args, io):
    seconds = 10
    for i, a in enumerate(args):
        if a.lower() in ("/t", "-t") and i + 1 < len(args):
            try:
                seconds = int(args[i + 1])
            except ValueError:
                io.err("ERROR: Invalid value for timeout (/T) specified. Valid range is -1 to 99999.\r\n")
                return 1
    if seconds < 0:
        seconds = 10 ** 6  # -1 waits for a key press: until signalled here
    io.out(f"\r\nWaiting for {seconds} seconds, press a key to continue ...")
    remaining = seconds
    while remaining > 0:
        if not io.sleep(1.0):
            io.out("\r\n")
            return -1073741510
        remaining -= 1
        io.out(f"\rWaiting for {remaining:>2} seconds, press a key to continue ...")
    io.out("\r\n")
    return 0


PS_VALUE_FLAGS = {"-executionpolicy", "-ep", "-ex", "-inputformat", "-outputformat", "-of", "-if",
                  "-windowstyle", "-w", "-version", "-v", "-configurationname", "-workingdirectory", "-wd"}
PS_ENCODED = {"-encodedcommand", "-enc", "-e", "-ec", "-en", "-enco", "-encod", "-encode", "-encodedc"}


def decode_encoded_command(value):
    """Base64 of UTF-16LE script text, as powershell.exe -EncodedCommand takes it."""
    try:
        raw = base64.b64decode(value, validate=False)
        return raw.decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def run_powershell(args, io):
    script = None
    i = 0
    while i < len(args):
        a = args[i]
        low = a.lower()
        if low in PS_ENCODED and i + 1 < len(args):
            script = decode_encoded_command(args[i + 1])
            if script is None:
                io.err("Cannot process the command because the value specified with -EncodedCommand is not "
                       "properly encoded. The value must be Base64 encoded.\r\n")
                return 1
            break
        if low in ("-command", "-c"):
            rest = args[i + 1:]
            script = " ".join(rest) if rest != ["-"] else None
            break
        if low in PS_VALUE_FLAGS:
            i += 2
            continue
        if low.startswith("-"):
            if low == "-":
                break
            i += 1
            continue
        script = " ".join(args[i:])
        break
    if script is None:
        return run_stdin_interpreter(io, powershell=True)
    if ansible_exec.is_bootstrap(script):
        # Ansible's winrm connection: the payload arrives on stdin (see ansible_exec).
        out, code, _ = ansible_exec.run(io.read_stdin().replace("\r\n", "\n").split("\n"))
        io.out(out + "\r\n")
        return code
    return run_ps_text(script, io)


def run_ps_text(script, io):
    """Run a PowerShell script as powershell.exe would, printing formatted text."""
    errors = []

    def write_error(err):
        errors.append(err)
        io.err(format_ps_error(err))

    ctx = pscmds.Context(io.hostname, io.user, io.stop_event, write_error,
                         write_information=lambda msg: io.out(msg + "\r\n"),
                         write_stream=lambda kind, msg: io.out(f"{kind.upper()}: {msg}\r\n"))
    objs = []
    code = 0
    try:
        for obj in pscmds.run_script(script, ctx):
            objs.append(obj)
    except pscmds.TerminatingError as exc:
        write_error(exc.error)
        code = 1
    except pscmds.ScriptExit as exc:
        code = exc.code
    text = pscmds.format_objects(objs) if objs else ""
    if text:
        io.out(text.replace("\n", "\r\n"))
    if errors and code == 0:
        code = 1
    return code


def format_ps_error(err):
    target = err.target or ""
    return (f"{target} : {err.message}\r\n"
            f"    + CategoryInfo          : {err.category}: ({target}:String) [], {err.reason}\r\n"
            f"    + FullyQualifiedErrorId : {err.fqid}\r\n"
            " \r\n")


def run_stdin_interpreter(io, powershell):
    """`cmd` or `powershell -` fed through stdin: run each line it receives."""
    text = io.read_stdin()
    code = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        if powershell:
            if line.lower() == "exit":
                break
            code = run_ps_text(line, io)
        else:
            io.out(f"\r\nC:\\Users\\{(io.user or 'user').split(chr(92))[-1]}>{line}\r\n")
            if program_name(line.split(" ", 1)[0]) == "exit":
                return run_simple(line, io)
            code = run_line(line, io)
    return code
