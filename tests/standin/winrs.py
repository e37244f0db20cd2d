"""WinRS cmd shells of the stand-in host: Create, Command, Send, Receive, Signal, Delete.

Owns: the shell and command state (output buffers, exit codes, stdin), running each
emulated command on its own thread (so long runners such as `ping -t` produce output
over time and stop on a signal), the Receive long poll with the Windows w:TimedOut fault,
and the Windows-shaped response bodies.
Must not: parse HTTP or do authentication; cmd semantics live in cmdemu.
"""

import base64
import threading
import time
from xml.sax.saxutils import escape

import cmdemu
import wsman
from wsman import NS_RSP

SIGNAL_PREFIX = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/"


class CmdCommand:
    def __init__(self, shell, command_id, line):
        self.shell = shell
        self.id = command_id
        self.line = line
        self.cond = threading.Condition()
        self.chunks = []  # [(stream, bytes)]
        self.done = False
        self.exit_code = None
        self.stop_event = threading.Event()
        self.stdin = bytearray()
        self.stdin_ended = False
        self.delivered_done = False
        self.codepage = shell.codepage

    def _encode(self, text):
        enc = "utf-8" if self.codepage == "65001" else "cp437"
        return text.encode(enc, errors="replace")

    def write(self, stream, text):
        data = self._encode(text)
        if not data:
            return
        with self.cond:
            self.chunks.append((stream, data))
            self.cond.notify_all()

    def read_stdin(self):
        with self.cond:
            while not self.stdin_ended and not self.stop_event.is_set():
                self.cond.wait(0.5)
            return self._decode_stdin()

    def _decode_stdin(self):
        data = bytes(self.stdin)
        for enc in ("utf-8", "cp437"):
            try:
                return data.decode(enc)
            except UnicodeDecodeError:
                continue
        return data.decode("latin-1")

    def start(self, hostname, user):
        env = dict(self.shell.environment)
        io = cmdemu.Io(
            out=lambda t: self.write("stdout", t),
            err=lambda t: self.write("stderr", t),
            stop_event=self.stop_event,
            read_stdin=self.read_stdin,
            hostname=hostname,
            user=user,
            environment=env,
        )

        def run():
            try:
                code = cmdemu.run_line(self.line, io)
            except Exception as exc:  # an emulation bug must still end the command
                self.write("stderr", f"stand-in internal error: {exc!r}\r\n")
                code = 1
            with self.cond:
                self.done = True
                self.exit_code = code
                self.cond.notify_all()

        threading.Thread(target=run, name=f"cmd-{self.id}", daemon=True).start()

    def receive(self, streams, timeout, budget):
        """Wait for output (or the end) up to timeout; None means timed out with nothing.

        At most `budget` bytes of output are returned (the answer must fit the client's
        MaxEnvelopeSize); the rest waits for the next Receive, and Done is only reported once
        everything has been delivered."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.chunks and not self.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
            # Give a just-started command a moment to finish so short commands come back in one response.
            if not self.done:
                self.cond.wait(0.05)
            chunks = []
            size = 0
            while self.chunks and size < budget:
                stream, data = self.chunks.pop(0)
                if stream not in streams:
                    continue
                room = budget - size
                if len(data) > room:
                    self.chunks.insert(0, (stream, data[room:]))
                    data = data[:room]
                chunks.append((stream, data))
                size += len(data)
            done = self.done and not self.chunks
            if done:
                self.delivered_done = True
            return chunks, done, self.exit_code


class CmdShell:
    def __init__(self, shell_id, owner, client_ip, input_streams, output_streams, codepage, environment=None,
                 working_directory=None):
        self.environment = dict(environment or {})
        self.working_directory = working_directory
        self.id = shell_id
        self.owner = owner
        self.client_ip = client_ip
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.codepage = codepage
        self.commands = {}
        self.lock = threading.Lock()


def command_line_text(cmdline_el):
    """The whole command line a WinRS Command carries: Command plus each Arguments."""
    command = cmdline_el.find(f"{{{NS_RSP}}}Command")
    parts = [(command.text or "").strip()] if command is not None and command.text else []
    for arg in cmdline_el.findall(f"{{{NS_RSP}}}Arguments"):
        if arg.text is not None:
            parts.append(arg.text)
    return " ".join(p for p in parts if p != "")


class WinRS:
    """All cmd shells of the host."""

    def __init__(self, hostname, machine, max_wait):
        self.hostname = hostname
        self.machine = machine
        self.max_wait = max_wait
        self.shells = {}
        self.lock = threading.Lock()

    def _shell(self, req):
        with self.lock:
            shell = self.shells.get((req.shell_id or "").upper())
        if shell is None:
            raise wsman.invalid_selectors()
        return shell

    def create(self, req, ctx, address):
        shell_el = req.body_child(NS_RSP, "Shell")
        if shell_el is None:
            raise wsman.invalid_parameter("the Create body has no rsp:Shell")
        ins = (_child_text(shell_el, "InputStreams") or "stdin").strip()
        outs = (_child_text(shell_el, "OutputStreams") or "stdout stderr").strip()
        codepage = req.options.get("WINRS_CODEPAGE", "437")
        env = {}
        env_el = shell_el.find(f"{{{NS_RSP}}}Environment")
        if env_el is not None:
            for var in env_el.findall(f"{{{NS_RSP}}}Variable"):
                env[var.get("Name", "")] = var.text or ""
        workdir = _child_text(shell_el, "WorkingDirectory")
        idle = wsman.parse_duration(_child_text(shell_el, "IdleTimeOut"))
        shell_id = wsman.new_uuid()
        shell = CmdShell(shell_id, ctx.user, ctx.client_ip, ins, outs, codepage, env, workdir)
        with self.lock:
            self.shells[shell_id] = shell
        ctx.log["shell_id"] = shell_id
        body = (
            f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{wsman.RESOURCE_CMD}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f'</x:ResourceCreated><rsp:Shell xmlns:rsp="{NS_RSP}"><rsp:ShellId>{shell_id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{wsman.RESOURCE_CMD}</rsp:ResourceUri><rsp:Owner>{escape(ctx.owner_name)}</rsp:Owner>"
            f"<rsp:ClientIP>{escape(ctx.client_ip)}</rsp:ClientIP>"
            + (f"<rsp:WorkingDirectory>{escape(workdir)}</rsp:WorkingDirectory>" if workdir else "")
            + ("<rsp:Environment>" + "".join(
                f'<rsp:Variable Name="{escape(k, {chr(34): "&quot;"})}">{escape(v)}</rsp:Variable>'
                for k, v in env.items()) + "</rsp:Environment>" if env else "")
            + f"<rsp:IdleTimeOut>PT{idle if idle is not None else 7200:.3f}S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(ins)}</rsp:InputStreams><rsp:OutputStreams>{escape(outs)}</rsp:OutputStreams>"
            "<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            "</rsp:Shell>"
        )
        return wsman.ACTION_CREATE + "Response", body

    def command(self, req, ctx):
        shell = self._shell(req)
        cmdline = req.body_child(NS_RSP, "CommandLine")
        if cmdline is None:
            raise wsman.invalid_parameter("the Command body has no rsp:CommandLine")
        command_id = (cmdline.get("CommandId") or wsman.new_uuid()).upper()
        line = command_line_text(cmdline)
        ctx.log["command_id"] = command_id
        ctx.log["command_line"] = line
        if req.options.get("WINRS_SKIP_CMD_SHELL", "").lower() == "true" and not cmdemu.is_runnable_without_shell(line):
            # Without cmd.exe, Windows' CreateProcess finds neither builtins nor programs named
            # without a path (corpus test_winrs_no_cmd_shell.yml).
            raise wsman.WsmanError(
                "w:InternalError", "The system cannot find the file specified. ", 2147942402, sender=False,
                message_xml='<f:ProviderFault provider="Shell cmd plugin" path="%systemroot%\\system32\\winrscmd.dll">'
                            "The system cannot find the file specified. </f:ProviderFault>")
        cmd = CmdCommand(shell, command_id, line)
        with shell.lock:
            shell.commands[command_id] = cmd
        cmd.start(self.hostname, ctx.user)
        body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
        return wsman.ACTION_COMMAND + "Response", body

    def _command(self, shell, command_id):
        with shell.lock:
            cmd = shell.commands.get((command_id or "").upper())
        if cmd is None:
            raise wsman.unknown_command_id()
        return cmd

    def send(self, req, ctx):
        shell = self._shell(req)
        send = req.body_child(NS_RSP, "Send")
        if send is None:
            raise wsman.invalid_parameter("the Send body has no rsp:Send")
        texts = []
        for stream in send.findall(f"{{{NS_RSP}}}Stream"):
            command_id = stream.get("CommandId")
            ctx.log["command_id"] = (command_id or "").upper() or None
            cmd = self._command(shell, command_id)
            data = base64.b64decode(stream.text or "")
            with cmd.cond:
                cmd.stdin += data
                if (stream.get("End") or "").lower() == "true":
                    cmd.stdin_ended = True
                cmd.cond.notify_all()
            texts.append(data.decode("utf-8", errors="replace"))
        ctx.log["stdin"] = "".join(texts)
        return wsman.ACTION_SEND + "Response", "<rsp:SendResponse/>"

    def receive(self, req, ctx):
        shell = self._shell(req)
        receive = req.body_child(NS_RSP, "Receive")
        desired = receive.find(f"{{{NS_RSP}}}DesiredStream") if receive is not None else None
        if desired is None:
            raise wsman.invalid_parameter("the Receive body has no rsp:DesiredStream")
        command_id = (desired.get("CommandId") or "").upper()
        ctx.log["command_id"] = command_id or None
        streams = (desired.text or "stdout stderr").split()
        if not command_id:
            # A cmd shell has no shell-level output (corpus test_winrs_fail_poll_process.yml).
            raise wsman.WsmanError(
                "w:InvalidParameter", "The parameter is incorrect. ", 87,
                detail="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue",
                message_xml='<f:ProviderFault provider="Shell cmd plugin" path="%systemroot%\\system32\\winrscmd.dll">'
                            "The parameter is incorrect. </f:ProviderFault>")
        cmd = self._command(shell, command_id)
        timeout = min(req.operation_timeout or 60.0, self.max_wait)
        # base64 grows 4/3; leave room for the envelope and the per-stream elements.
        budget = max(4096, (req.max_envelope_size - 8192) * 3 // 4)
        result = cmd.receive(streams, timeout, budget)
        if result is None:
            raise wsman.timed_out()
        chunks, done, code = result
        parts = []
        for stream, data in chunks:
            parts.append(f'<rsp:Stream Name="{stream}" CommandId="{command_id}">'
                         f"{base64.b64encode(data).decode()}</rsp:Stream>")
        if done:
            for stream in streams:
                parts.append(f'<rsp:Stream Name="{stream}" CommandId="{command_id}" End="true"></rsp:Stream>')
            parts.append(f'<rsp:CommandState CommandId="{command_id}" State="{wsman.STATE_DONE}">'
                         f"<rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>")
        else:
            parts.append(f'<rsp:CommandState CommandId="{command_id}" State="{wsman.STATE_RUNNING}">'
                         "</rsp:CommandState>")
        return wsman.ACTION_RECEIVE + "Response", "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"

    def signal(self, req, ctx):
        shell = self._shell(req)
        sig = req.body_child(NS_RSP, "Signal")
        if sig is None:
            raise wsman.invalid_parameter("the Signal body has no rsp:Signal")
        command_id = (sig.get("CommandId") or "").upper()
        code = (_child_text(sig, "Code") or "").strip()
        ctx.log["command_id"] = command_id or None
        ctx.log["signal"] = code
        cmd = self._command(shell, command_id)
        short = code.lower().rsplit("/", 1)[-1]
        if short not in ("terminate", "ctrl_c", "ctrl_break"):
            raise wsman.invalid_parameter(f"unknown signal code {code}")
        cmd.stop_event.set()
        with cmd.cond:
            cmd.cond.notify_all()
        if short == "terminate":
            # Terminate ends the command; a later Receive on it is for an unknown command.
            deadline = time.monotonic() + 2.0
            with cmd.cond:
                while not cmd.done and time.monotonic() < deadline:
                    cmd.cond.wait(0.1)
                # Tests assert on this: the command really stopped before the answer left.
                ctx.log["command_done"] = bool(cmd.done)
            with shell.lock:
                shell.commands.pop(command_id, None)
        return wsman.ACTION_SIGNAL + "Response", "<rsp:SignalResponse/>"

    def delete(self, req, ctx):
        shell = self._shell(req)
        with self.lock:
            self.shells.pop(shell.id, None)
        with shell.lock:
            for cmd in shell.commands.values():
                cmd.stop_event.set()
            shell.commands.clear()
        return wsman.ACTION_DELETE + "Response", ""


def _child_text(el, name):
    child = el.find(f"{{{NS_RSP}}}{name}")
    return child.text if child is not None else None
