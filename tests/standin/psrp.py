"""PSRP (PowerShell remoting) shells of the stand-in host, served by psrpcore.

Owns: one psrpcore ServerRunspacePool per WS-Man shell (resource .../powershell/<config>),
one ServerPipeline per WS-Man CommandId (created before its CREATE_PIPELINE bytes are fed),
routing of outgoing PSRP data to the shell's or the pipeline's Receive, running each
pipeline's commands (pscmds) on a thread, Signal (ctrl_c stops, terminate closes) and the
request-log description of every client PSRP message.
Must not: parse HTTP or authenticate; command behaviour lives in pscmds.
"""

import base64
import datetime
import fnmatch
import threading
import time
import uuid
from xml.sax.saxutils import escape

import os
import sys

import ansible_exec
import psrpcore
import psrpcore._base
from psrpcore.types import (
    CommandMetadataCount,
    CommandTypes,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSDateTime,
    PSEnumBase,
    PSInvocationState,
    PSNoteProperty,
    PSObject,
    PSSecureString,
    PSType,
)

import pscmds
import wsman

# The WinRM xpress framing, shared with the test clients (it shares nothing with hopgate).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
import xpress  # noqa: E402
from wsman import NS_PS, NS_RSP

# MS-PSRP 2.2.1 names by message type value (the spelling tests assert on).
MESSAGE_NAMES = {
    0x00010002: "SESSION_CAPABILITY", 0x00010004: "INIT_RUNSPACEPOOL", 0x00010005: "PUBLIC_KEY",
    0x00010006: "ENCRYPTED_SESSION_KEY", 0x00010007: "PUBLIC_KEY_REQUEST", 0x00010008: "CONNECT_RUNSPACEPOOL",
    0x00021002: "SET_MAX_RUNSPACES", 0x00021003: "SET_MIN_RUNSPACES", 0x00021004: "RUNSPACE_AVAILABILITY",
    0x00021005: "RUNSPACEPOOL_STATE", 0x00021006: "CREATE_PIPELINE", 0x00021007: "GET_AVAILABLE_RUNSPACES",
    0x00021008: "USER_EVENT", 0x00021009: "APPLICATION_PRIVATE_DATA", 0x0002100A: "GET_COMMAND_METADATA",
    0x0002100B: "RUNSPACEPOOL_INIT_DATA", 0x0002100C: "RESET_RUNSPACE_STATE",
    0x00021100: "RUNSPACEPOOL_HOST_CALL", 0x00021101: "RUNSPACEPOOL_HOST_RESPONSE",
    0x00041002: "PIPELINE_INPUT", 0x00041003: "END_OF_PIPELINE_INPUT", 0x00041004: "PIPELINE_OUTPUT",
    0x00041005: "ERROR_RECORD", 0x00041006: "PIPELINE_STATE", 0x00041007: "DEBUG_RECORD",
    0x00041008: "VERBOSE_RECORD", 0x00041009: "WARNING_RECORD", 0x00041010: "PROGRESS_RECORD",
    0x00041011: "INFORMATION_RECORD", 0x00041100: "PIPELINE_HOST_CALL", 0x00041101: "PIPELINE_HOST_RESPONSE",
}

FRAGMENT_SIZE = 32 * 1024
UTF8_BOM = b"\xef\xbb\xbf"

_psrpcore_create_message = psrpcore._base.create_message


def _create_message_with_bom(client, message_type, data, runspace_pool_id, pipeline_id=None):
    """Windows starts every server-to-client PSRP message's data with a UTF-8 BOM (318 of 318
    server messages in the corpus); psrpcore does not, so add it on the server side."""
    if not client and data:
        data = UTF8_BOM + data
    return _psrpcore_create_message(client, message_type, data, runspace_pool_id, pipeline_id)


# This process is only ever a PSRP server, so the module-level hook affects only our messages.
psrpcore._base.create_message = _create_message_with_bom


def _call_id(self):
    """The call id of a pool request: pypsrp writes SET_MAX/MIN_RUNSPACES' `ci` as `CI` (corpus
    test_psrp_set_runspaces.yml, accepted by Windows); psrpcore only reads `ci`."""
    for name in ("ci", "CI"):
        value = getattr(self._ps_object, name, None)
        if value is not None:
            return int(value)
    raise psrpcore.PSRPCoreError("pool request without a ci call id")


for _event_type in (psrpcore.SetMaxRunspacesEvent, psrpcore.SetMinRunspacesEvent,
                    psrpcore.ResetRunspaceStateEvent, psrpcore.GetAvailableRunspacesEvent):
    _event_type.ci = property(_call_id)


def split_fragments(data):
    """The PSRP fragments (MS-PSRP 2.2.4) packed in data, each as its own bytes."""
    out = []
    i = 0
    while i + 21 <= len(data):
        length = int.from_bytes(data[i + 17:i + 21], "big")
        out.append(bytes(data[i:i + 21 + length]))
        i += 21 + length
    if i < len(data):
        out.append(bytes(data[i:]))  # cannot happen with psrpcore's output; keep the bytes anyway
    return out


def header_pipeline_id(data):
    """The PID in the PSRP message header of the first (start) fragment in data, if any.

    Windows correlates a pipeline by ShellId+CommandId, and an older pypsrp wrote the header
    PID in a different GUID byte order than the CommandId (PROTOCOL.md section 4), so the
    server pipeline must carry the header's PID for psrpcore to find it."""
    if len(data) < 21 + 40:
        return None
    fragment_id = int.from_bytes(data[8:16], "big")
    start = bool(data[16] & 0x1)
    if fragment_id != 0 or not start:
        return None
    blob = data[21:]
    pid = uuid.UUID(bytes_le=bytes(blob[24:40]))
    return pid if pid.int else None
STOP_CODES = ("ctrl_c", "crtl_c")


@PSType(["System.ServiceProcess.ServiceControllerStatus"])
class ServiceControllerStatus(PSEnumBase):
    Stopped = 1
    StartPending = 2
    StopPending = 3
    Running = 4
    ContinuePending = 5
    PausePending = 6
    Paused = 7


def to_ps(value):
    """pscmds values to psrpcore objects, shaped like Windows serializes them."""
    if isinstance(value, pscmds.PSObj):
        obj = PSObject()
        obj.PSObject.type_names = list(value.type_names)
        target = obj.PSObject.adapted_properties if value.adapted else obj.PSObject.extended_properties
        for name, v in value.props.items():
            target.append(PSNoteProperty(name, to_ps(v)))
        obj.PSObject.to_string = value.to_string
        return obj
    if isinstance(value, pscmds.EnumVal):
        if value.type_names[0] == "System.ServiceProcess.ServiceControllerStatus":
            return ServiceControllerStatus[value.name]
        if value.type_names[0] == "System.Management.Automation.CommandTypes":
            return CommandTypes.Cmdlet
        return value.value
    if isinstance(value, datetime.datetime):
        return PSDateTime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                          value.microsecond)
    return value


def from_ps(value):
    """Client-sent values (arguments, pipeline input) to plain Python for the emulation and the log."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, PSSecureString):
        return "<SecureString>"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [from_ps(v) for v in value]
    if isinstance(value, dict):
        return {str(k): from_ps(v) for k, v in value.items()}
    return str(value)


def error_record(err):
    exc = NETException(Message=err.message)
    exc.PSObject.type_names = [err.exception_type, "System.Management.Automation.RuntimeException",
                               "System.SystemException", "System.Exception", "System.Object"]
    category = getattr(ErrorCategory, err.category, ErrorCategory.NotSpecified)
    info = ErrorCategoryInfo(Category=category, Activity=err.activity or "", Reason=err.reason,
                             TargetName=err.target or "", TargetType="String" if err.target else "")
    return exc, info


class PipelineRun:
    def __init__(self, shell, pipeline_id, command_id):
        self.shell = shell
        self.id = pipeline_id
        self.command_id = command_id
        self.server = psrpcore.ServerPipeline(shell.pool, pipeline_id)
        self.queue = []
        self.metadata = None
        self.kind = None
        self.inputs = []
        self.input_ended = False
        self.started = False
        self.finished = False
        self.stop_event = threading.Event()
        self.thread = None


class PsrpShell:
    def __init__(self, shell_id, resource_uri, owner, hostname):
        self.id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.hostname = hostname
        self.pool = psrpcore.ServerRunspacePool()
        self.cond = threading.Condition()
        self.pool_queue = []
        self.pipelines = {}  # psrpcore pipeline id (header PID) -> PipelineRun
        self.by_command = {}  # WS-Man CommandId (upper case) -> PipelineRun
        self.closed = False
        self.state = "Connected"  # or "Disconnected" (rsp:State in an Enumerate)
        self.compressed = False  # the client asked for xpress and the host agreed

    # all methods below run with self.cond held

    def drain(self):
        """Move psrpcore's outgoing data to the pool or pipeline Receive queues."""
        while True:
            payload = self.pool.data_to_send(FRAGMENT_SIZE)
            if payload is None:
                break
            run = self.pipelines.get(payload.pipeline_id) if payload.pipeline_id else None
            queue = run.queue if run is not None else self.pool_queue
            # One rsp:Stream per fragment, as Windows sends them.
            queue.extend(split_fragments(payload.data))
        self.cond.notify_all()


def describe_event(event):
    """The request-log entry for one client PSRP message."""
    entry = {"type": MESSAGE_NAMES.get(int(event.message_type), str(event.message_type))}
    if event.pipeline_id:
        entry["pipeline_id"] = str(event.pipeline_id).upper()
    if isinstance(event, psrpcore.CreatePipelineEvent):
        statements = [[]]
        for cmd in event.pipeline.commands:
            statements[-1].append({
                "name": str(cmd.command_text),
                "is_script": bool(cmd.is_script),
                "args": [{"name": None if n is None else str(n), "value": from_ps(v)} for n, v in cmd.parameters],
            })
            if cmd.end_of_statement:
                statements.append([])
        entry["commands"] = [s for s in statements if s]
    elif isinstance(event, psrpcore.GetCommandMetadataEvent):
        entry["names"] = [str(n) for n in (event.pipeline.name or [])]
    elif isinstance(event, psrpcore.PipelineInputEvent):
        entry["data"] = from_ps(event.data)
    return entry


class PsrpHost:
    """All PSRP shells (runspace pools) of the host."""

    def __init__(self, hostname, max_wait, compression=False):
        self.hostname = hostname
        self.max_wait = max_wait
        self.compression = compression
        self.shells = {}
        self.lock = threading.Lock()

    def _shell(self, req):
        with self.lock:
            shell = self.shells.get((req.shell_id or "").upper())
        if shell is None:
            raise wsman.invalid_selectors()
        return shell

    # -- event processing -------------------------------------------------------------

    def _feed(self, shell, data, pipeline_id, stream, ctx):
        stream_type = psrpcore.StreamType.prompt_response if stream == "pr" else psrpcore.StreamType.default
        shell.pool.receive_data(psrpcore.PSRPPayload(data, stream_type, pipeline_id))
        while True:
            try:
                event = shell.pool.next_event()
            except psrpcore.PSRPCoreError as exc:
                raise wsman.invalid_parameter(f"PSRP error: {exc}") from None
            if event is None:
                break
            ctx.log["psrp"].append(describe_event(event))
            self._on_event(shell, event, ctx)
        shell.drain()

    def _on_event(self, shell, event, ctx):
        pool = shell.pool
        if isinstance(event, (psrpcore.CreatePipelineEvent, psrpcore.GetCommandMetadataEvent)):
            run = shell.pipelines.get(event.pipeline_id)
            if run is None:
                return
            run.metadata = event.pipeline
            run.kind = "metadata" if isinstance(event, psrpcore.GetCommandMetadataEvent) else "pipeline"
            no_input = True if run.kind == "metadata" else bool(event.pipeline.no_input)
            if no_input:
                run.input_ended = True
            if run.input_ended:
                self._start(shell, run, ctx.user)
        elif isinstance(event, psrpcore.PipelineInputEvent):
            run = shell.pipelines.get(event.pipeline_id)
            if run is not None:
                run.inputs.append(from_ps(event.data))
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
            run = shell.pipelines.get(event.pipeline_id)
            if run is not None:
                run.input_ended = True
                if run.metadata is not None:
                    self._start(shell, run, ctx.user)
        elif isinstance(event, (psrpcore.SetMaxRunspacesEvent, psrpcore.SetMinRunspacesEvent,
                                psrpcore.ResetRunspaceStateEvent)):
            pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            pool.runspace_availability_response(event.ci, max(pool.max_runspaces - len(shell.pipelines), 1))

    def _start(self, shell, run, user):
        if run.started:
            return
        run.started = True
        # Windows sends no PIPELINE_STATE Running (psrpcore's start() would): change state silently.
        run.server._change_state(PSInvocationState.Running, emit=False)
        run.thread = threading.Thread(target=self._execute, args=(shell, run, user),
                                      name=f"psrp-{run.id}", daemon=True)
        run.thread.start()

    def _execute(self, shell, run, user):
        def locked(fn):
            with shell.cond:
                if run.server.state == PSInvocationState.Running:
                    fn()
                shell.drain()

        def write_error(err):
            exc, info = error_record(err)
            locked(lambda: run.server.write_error(exc, info, err.target, err.fqid))

        def write_information(msg):
            locked(lambda: run.server.write_information(msg, "Write-Host"))

        def write_stream(kind, msg):
            writer = {"warning": run.server.write_warning, "verbose": run.server.write_verbose,
                      "debug": run.server.write_debug}[kind]
            locked(lambda: writer(msg))

        ctx = pscmds.Context(self.hostname, user, run.stop_event, write_error, write_information, write_stream)
        failure = None
        try:
            if run.kind == "metadata":
                self._metadata(run, locked)
            else:
                for obj in self._objects(run, ctx):
                    if run.stop_event.is_set():
                        break
                    value = to_ps(obj)
                    locked(lambda v=value: run.server.write_output(v))
        except pscmds.TerminatingError as exc:
            failure = exc.error
        except pscmds.ScriptExit:
            pass
        except Exception as exc:  # an emulation bug fails the pipeline visibly
            failure = pscmds.PSError(f"stand-in host error: {exc!r}", "System.Exception", "NotSpecified",
                                     "Exception", "StandInError")
        with shell.cond:
            if run.server.state == PSInvocationState.Running:
                if run.stop_event.is_set():
                    run.server.stop()
                elif failure is not None:
                    exc, info = error_record(failure)
                    record = ErrorRecord(Exception=exc, CategoryInfo=info, TargetObject=failure.target,
                                         FullyQualifiedErrorId=failure.fqid)
                    run.server._change_state(PSInvocationState.Failed, error=record)
                else:
                    run.server.complete()
            run.finished = True
            shell.drain()

    def _objects(self, run, ctx):
        cmds = run.metadata.commands
        if len(cmds) == 1 and cmds[0].is_script and ansible_exec.is_bootstrap(str(cmds[0].command_text)):
            # Ansible's psrp connection: the payload is the pipeline input (see ansible_exec).
            out, _, _ = ansible_exec.run([str(i) for i in run.inputs])
            yield out
            return
        statements = [[]]
        for cmd in run.metadata.commands:
            params = [(None if n is None else str(n), True if (v is None and n is not None) else from_ps(v))
                      for n, v in cmd.parameters]
            head = pscmds.Block(str(cmd.command_text)) if cmd.is_script else str(cmd.command_text)
            statements[-1].append((head, params))
            if cmd.end_of_statement:
                statements.append([])
        for elements in statements:
            if elements:
                yield from pscmds.run_pipeline(elements, ctx, first_input=run.inputs)

    def _metadata(self, run, locked):
        names = [str(n) for n in (run.metadata.name or ["*"])]
        matched = [c for c in pscmds.COMMANDS_DISPLAY
                   if any(fnmatch.fnmatch(c.lower(), n.lower()) for n in names)]
        locked(lambda: run.server.write_output(CommandMetadataCount(Count=len(matched))))
        for name in matched:
            obj = PSObject()
            obj.PSObject.type_names = ["Selected.System.Management.Automation.CmdletInfo",
                                       "System.Management.Automation.PSCustomObject", "System.Object"]
            for prop, value in (("Name", name), ("Namespace", "Microsoft.PowerShell.Management"),
                                ("HelpUri", ""), ("CommandType", CommandTypes.Cmdlet),
                                ("ResolvedCommandName", None), ("OutputType", []), ("Parameters", None)):
                obj.PSObject.extended_properties.append(PSNoteProperty(prop, value))
            locked(lambda o=obj: run.server.write_output(o))

    # -- WS-Man actions ---------------------------------------------------------------

    def create(self, req, ctx, address):
        shell_el = req.body_child(NS_RSP, "Shell")
        if shell_el is None:
            raise wsman.invalid_parameter("the Create body has no rsp:Shell")
        shell_id = (shell_el.get("ShellId") or wsman.new_uuid()).upper()
        creation = shell_el.find(f"{{{NS_PS}}}creationXml")
        if creation is None or not (creation.text or "").strip():
            raise wsman.invalid_parameter("the PowerShell Create has no creationXml")
        ins = (_child_text(shell_el, "InputStreams") or "stdin pr").strip()
        outs = (_child_text(shell_el, "OutputStreams") or "stdout").strip()
        shell = PsrpShell(shell_id, req.resource_uri, ctx.user, self.hostname)
        shell.compressed = self.compression and (req.compression or "").strip().lower() == "xpress"
        ctx.log["shell_id"] = shell_id
        with shell.cond:
            self._feed(shell, base64.b64decode(creation.text), None, "stdin", ctx)
        with self.lock:
            self.shells[shell_id] = shell
        uri = escape(req.resource_uri)
        body = (
            f"<x:ResourceCreated><a:Address>{escape(address)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{uri}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f'</x:ResourceCreated><rsp:Shell xmlns:rsp="{NS_RSP}"><rsp:ShellId>{shell_id}</rsp:ShellId>'
            f"<rsp:ResourceUri>{uri}</rsp:ResourceUri><rsp:Owner>{escape(ctx.owner_name)}</rsp:Owner>"
            f"<rsp:ClientIP>{escape(ctx.client_ip)}</rsp:ClientIP><rsp:ProcessId>5316</rsp:ProcessId>"
            "<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(ins)}</rsp:InputStreams><rsp:OutputStreams>{escape(outs)}</rsp:OutputStreams>"
            "<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>"
            "<rsp:DataLocale>en-US</rsp:DataLocale>"
            f"<rsp:CompressionMode>{'XpressCompression' if shell.compressed else 'NoCompression'}"
            "</rsp:CompressionMode>"
            "<rsp:ProfileLoaded>Yes</rsp:ProfileLoaded><rsp:Encoding>UTF8</rsp:Encoding>"
            "<rsp:BufferMode>Block</rsp:BufferMode><rsp:State>Connected</rsp:State>"
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
        ctx.log["command_id"] = command_id
        data = b"".join(base64.b64decode(a.text or "") for a in cmdline.findall(f"{{{NS_RSP}}}Arguments"))
        pipeline_id = header_pipeline_id(data)
        if pipeline_id is None:
            try:
                pipeline_id = uuid.UUID(command_id)
            except ValueError:
                raise wsman.invalid_parameter(f"CommandId {command_id} is not a GUID") from None
        with shell.cond:
            for old in (shell.pipelines.pop(pipeline_id, None), shell.by_command.pop(command_id, None)):
                # A finished pipeline id may be reused (pypsrp invokes the same PowerShell again).
                if old is not None:
                    shell.pipelines.pop(old.id, None)
                    shell.pool.pipeline_table.pop(old.id, None)
            run = PipelineRun(shell, pipeline_id, command_id)
            shell.pipelines[pipeline_id] = run
            shell.by_command[command_id] = run
            self._feed(shell, data, pipeline_id, "stdin", ctx)
        body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
        return wsman.ACTION_COMMAND + "Response", body

    def send(self, req, ctx):
        shell = self._shell(req)
        send = req.body_child(NS_RSP, "Send")
        if send is None:
            raise wsman.invalid_parameter("the Send body has no rsp:Send")
        with shell.cond:
            for stream in send.findall(f"{{{NS_RSP}}}Stream"):
                command_id = (stream.get("CommandId") or "").upper()
                pipeline_id = None
                if command_id:
                    ctx.log["command_id"] = command_id
                    pipeline_id = self._run(shell, command_id).id
                data = base64.b64decode(stream.text or "")
                if shell.compressed:
                    ctx.log["host_compressed"] = True
                    try:
                        data = xpress.decompress_stream(data)
                    except xpress.XpressError as exc:
                        raise wsman.invalid_parameter(f"compressed stream: {exc}") from None
                self._feed(shell, data, pipeline_id, stream.get("Name", "stdin"), ctx)
        return wsman.ACTION_SEND + "Response", "<rsp:SendResponse/>"

    def _run(self, shell, command_id):
        run = shell.by_command.get(command_id.upper())
        if run is None:
            raise wsman.unknown_command_id()
        return run

    def receive(self, req, ctx):
        shell = self._shell(req)
        receive = req.body_child(NS_RSP, "Receive")
        desired = receive.find(f"{{{NS_RSP}}}DesiredStream") if receive is not None else None
        if desired is None:
            raise wsman.invalid_parameter("the Receive body has no rsp:DesiredStream")
        command_id = (desired.get("CommandId") or "").upper()
        ctx.log["command_id"] = command_id or None
        timeout = min(req.operation_timeout or 60.0, self.max_wait)
        deadline = time.monotonic() + timeout
        budget = max(int(req.max_envelope_size * 0.6), 8192)
        with shell.cond:
            run = self._run(shell, command_id) if command_id else None
            queue_owner = run if run is not None else shell
            queue_name = "queue" if run is not None else "pool_queue"
            while not getattr(queue_owner, queue_name) and not (run is not None and run.finished):
                if shell.closed or (run is not None and shell.by_command.get(command_id) is not run):
                    raise wsman.invalid_selectors()  # deleted or terminated while this Receive waited
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise wsman.timed_out()
                shell.cond.wait(remaining)
            # Like Windows, let a pipeline that is about to end put its last messages (and its
            # PIPELINE_STATE) into this answer instead of the next one.
            settle = time.monotonic() + 0.05
            while run is not None and not run.finished and time.monotonic() < settle:
                shell.cond.wait(settle - time.monotonic())
            queue = getattr(queue_owner, queue_name)
            chunks = []
            size = 0
            while queue and (not chunks or size + len(queue[0]) * 4 // 3 < budget):
                data = queue.pop(0)
                size += len(data) * 4 // 3
                chunks.append(data)
            done = run is not None and run.finished and not queue
        attr = f' CommandId="{command_id}"' if command_id else ""
        if shell.compressed:
            ctx.log["host_compressed"] = True
            chunks = [xpress.compress_stream(c) for c in chunks]
        parts = [f'<rsp:Stream Name="stdout"{attr}>{base64.b64encode(c).decode()}</rsp:Stream>' for c in chunks]
        if run is not None and done:
            # Windows adds CommandState to a PSRP Receive only once the pipeline is done
            # (corpus test_psrp_small_msg_size.yml); the PSRP messages carry the rest.
            parts.append(f'<rsp:CommandState CommandId="{command_id}" State="{wsman.STATE_DONE}">'
                         "<rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>")
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
        short = code.lower().rsplit("/", 1)[-1]
        with shell.cond:
            run = self._run(shell, command_id)
        run.stop_event.set()
        if run.thread is not None:
            run.thread.join(timeout=5.0)
        if short == "terminate":
            with shell.cond:
                shell.pipelines.pop(run.id, None)
                shell.by_command.pop(run.command_id, None)
                shell.pool.pipeline_table.pop(run.id, None)
                shell.cond.notify_all()
        elif short not in STOP_CODES:
            raise wsman.invalid_parameter(f"unknown signal code {code}")
        return wsman.ACTION_SIGNAL + "Response", "<rsp:SignalResponse/>"

    def delete(self, req, ctx):
        shell = self._shell(req)
        with self.lock:
            self.shells.pop(shell.id, None)
        with shell.cond:
            shell.closed = True
            runs = list(shell.pipelines.values())
            for run in runs:
                run.stop_event.set()
            shell.pipelines.clear()
            shell.by_command.clear()
            shell.cond.notify_all()
        return wsman.ACTION_DELETE + "Response", ""

    # -- disconnected sessions (MS-PSRP 3.1.4.11-3.1.4.13) ----------------------------------

    def disconnect(self, req, ctx):
        shell = self._shell(req)
        with shell.cond:
            if shell.state == "Disconnected":
                raise wsman.invalid_parameter("the shell is already disconnected")
            shell.state = "Disconnected"
            shell.pool._change_state(psrpcore.types.RunspacePoolState.Disconnected, emit=False)
            shell.cond.notify_all()
        return wsman.SHELL + "DisconnectResponse", ""

    def reconnect(self, req, ctx):
        shell = self._shell(req)
        with shell.cond:
            if shell.state != "Disconnected":
                raise wsman.invalid_parameter("the shell is not disconnected")
            shell.state = "Connected"
            shell.pool._change_state(psrpcore.types.RunspacePoolState.Opened, emit=False)
        return wsman.SHELL + "ReconnectResponse", ""

    def connect(self, req, ctx):
        shell = self._shell(req)
        connect = req.body_child(NS_RSP, "Connect")
        if connect is None:
            raise wsman.invalid_parameter("the Connect body has no rsp:Connect")
        command_id = (connect.get("CommandId") or "").upper()
        if command_id:
            # A new client takes over a command that kept running while nobody listened.
            ctx.log["command_id"] = command_id
            with shell.cond:
                self._run(shell, command_id)
            return wsman.SHELL + "ConnectResponse", "<rsp:ConnectResponse/>"
        data = connect.find(f"{{{NS_PS}}}connectXml")
        if data is None or not (data.text or "").strip():
            raise wsman.invalid_parameter("the Connect has no connectXml")
        with shell.cond:
            if shell.state != "Disconnected":
                raise wsman.invalid_parameter("the shell is not disconnected")
            shell.pool.connect()
            # Windows answers a Connect with its SESSION_CAPABILITY first (psrpcore only
            # does so on a pool's first open), then RUNSPACEPOOL_INIT_DATA and
            # APPLICATION_PRIVATE_DATA.
            shell.pool.prepare_message(shell.pool.our_capability)
            self._feed(shell, base64.b64decode(data.text), None, "stdin", ctx)
            answer = [f for f in shell.pool_queue if _message_type(f) != _RUNSPACEPOOL_STATE]
            shell.pool_queue = [f for f in shell.pool_queue if _message_type(f) == _RUNSPACEPOOL_STATE]
            shell.state = "Connected"
        xml = base64.b64encode(b"".join(answer)).decode()
        return wsman.SHELL + "ConnectResponse", (
            f'<rsp:ConnectResponse><pwsh:connectResponseXml xmlns:pwsh="{NS_PS}">{xml}'
            "</pwsh:connectResponseXml></rsp:ConnectResponse>"
        )

    def enumerate(self, req, ctx):
        uri = (req.resource_uri or "").lower()
        items = []
        if uri == wsman.RESOURCE_SHELL_COMMANDS.lower():
            wanted = None
            for sel in req.body.iter(f"{{{wsman.NS_WSMAN}}}Selector"):
                if (sel.get("Name") or "").lower() == "shellid":
                    wanted = (sel.text or "").strip().upper()
            with self.lock:
                shell = self.shells.get(wanted or "")
            if shell is None:
                raise wsman.invalid_selectors()
            with shell.cond:
                for run in shell.by_command.values():
                    # Running or finished but not yet received: both can be connected to.
                    if run.started:
                        items.append(f"<rsp:Command><rsp:CommandId>{run.command_id}</rsp:CommandId></rsp:Command>")
        else:
            with self.lock:
                shells = list(self.shells.values())
            for shell in shells:
                items.append(
                    f'<rsp:Shell xmlns:rsp="{NS_RSP}"><rsp:ShellId>{shell.id}</rsp:ShellId>'
                    f"<rsp:ResourceUri>{escape(shell.resource_uri or '')}</rsp:ResourceUri>"
                    f"<rsp:Owner>{escape(shell.owner or '')}</rsp:Owner>"
                    f"<rsp:State>{shell.state}</rsp:State></rsp:Shell>"
                )
        ctx.log["enumerated"] = len(items)
        return wsman.ACTION_ENUMERATE + "Response", (
            f'<n:EnumerateResponse xmlns:n="{wsman.NS_ENUMERATION}"><n:EnumerationContext></n:EnumerationContext>'
            f"<w:Items>{''.join(items)}</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
        )


def _child_text(el, name):
    child = el.find(f"{{{NS_RSP}}}{name}")
    return child.text if child is not None else None


# RUNSPACEPOOL_STATE (MS-PSRP 2.2.1): after a Connect, Windows answers it to the client's
# next Receive rather than inside connectResponseXml.
_RUNSPACEPOOL_STATE = 0x00021005


def _message_type(fragment):
    """The PSRP message type of a start fragment (21-byte header, then destination, type)."""
    if len(fragment) < 29:
        return None
    return int.from_bytes(fragment[25:29], "little")
