//! The emulated WinRS service: cmd shells and their commands (MS-WSMV 3.1.4.5–3.1.4.14).
//!
//! Owns the shell table and turns one decoded request envelope into one response envelope
//! (or a Windows-shaped fault). Commands finish instantly (see `commands`), so a Receive
//! returns all output with `CommandState Done` at once. It does no I/O and never sees
//! HTTP or authentication: the caller passes the authenticated account.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::wsman::{
    self, ns, Action, Body, CommandState, CommandStateKind, Envelope, FaultSpec, FaultSubcode,
    Header, Limits, Selector, Shell, SignalCode, Stream,
};

use super::commands::{self, CommandContext, Interpreter};
use super::psrp::PsrpShell;

/// Shells a single test host keeps open at once (Windows' MaxShellsPerUser default is 30;
/// the test host is shared by all users).
const MAX_SHELLS: usize = 1000;

/// Journal entries kept (oldest dropped first).
const JOURNAL_CAP: usize = 10_000;

/// What reached the host and would have run there: the record a test uses to prove that a
/// denied command never arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Authenticated account.
    pub user: String,
    /// The shell.
    pub shell_id: String,
    /// A command line or stdin data.
    pub kind: JournalKind,
    /// The command line (program and arguments joined by spaces) or the stdin text.
    pub text: String,
}

/// Kind of a [`JournalEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// `rsp:Command` (+ `rsp:Arguments`).
    Command,
    /// `rsp:Send` data on stdin.
    Stdin,
    /// A PSRP pipeline (CREATE_PIPELINE), as script text or command line.
    Pipeline,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 200, or 500 for a fault.
    pub status: http::StatusCode,
    /// The SOAP envelope.
    pub body: Vec<u8>,
    /// A Receive that found nothing to report (answered with `w:TimedOut`); the server
    /// pauses before sending it, as Windows would hold the poll.
    pub idle: bool,
    /// The request's OperationTimeout, how long Windows would hold an idle poll.
    pub hold: Option<std::time::Duration>,
}

/// Most bytes of one stream a Receive carries (Windows bounds a reply by MaxEnvelopeSize,
/// 150 KiB by default for pywinrm: ~110 KiB of data once base64-encoded).
const RECEIVE_CHUNK: usize = 96 * 1024;

struct ShellState {
    owner: String,
    commands: HashMap<String, CommandEntry>,
    /// Set for PowerShell (PSRP) shells.
    psrp: Option<PsrpShell>,
}

struct CommandEntry {
    /// Output not yet handed to a Receive.
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Set when the process ended.
    exit_code: Option<i64>,
    /// `cmd` fed through stdin.
    interpreter: Option<Interpreter>,
    /// The final Receive (End streams + Done) was sent.
    finished: bool,
}

/// The shell table of one test host.
pub struct WinRs {
    hostname: String,
    shells: Mutex<HashMap<String, ShellState>>,
    journal: Mutex<VecDeque<JournalEntry>>,
}

impl std::fmt::Debug for WinRs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinRs")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

// === impl WinRs ===

impl WinRs {
    /// An empty service for host `hostname`.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            shells: Mutex::new(HashMap::new()),
            journal: Mutex::new(VecDeque::new()),
        }
    }

    /// Commands and stdin that reached this host, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.journal
            .lock()
            .map(|j| j.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&self, user: &str, env: &Envelope, kind: JournalKind, text: String) {
        tracing::info!(user = %user, kind = ?kind, text = %text, "Test host received a command");
        let entry = JournalEntry {
            user: user.to_owned(),
            shell_id: env.shell_id().unwrap_or_default().to_owned(),
            kind,
            text,
        };
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if journal.len() >= JOURNAL_CAP {
            journal.pop_front();
        }
        journal.push_back(entry);
    }

    /// Open shells (for tests and the demo's status line).
    pub fn shell_count(&self) -> usize {
        self.shells.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Handles one plaintext SOAP request from authenticated `user` at `client_ip`.
    pub fn handle(&self, user: &str, client_ip: &str, request: &[u8]) -> Reply {
        let env = match wsman::parse(request, &Limits::default()) {
            Ok(env) => env,
            Err(error) => {
                tracing::debug!(error = %error, "Test host got an undecodable envelope");
                return self.fault(None, FaultSubcode::SchemaValidationError, "The WS-Management service cannot process the request because the XML is invalid.");
            }
        };
        let relates = env.header.message_id.clone();
        let result = match env.header.action {
            Action::Create => self.create(user, client_ip, &env),
            Action::Command => self.command(user, &env),
            Action::Send => self.send(user, &env),
            Action::Receive => self.receive(user, &env),
            Action::Signal => self.signal(user, &env),
            Action::Delete => self.delete(user, &env),
            _ => Err((
                FaultSubcode::ActionNotSupported,
                "The action is not supported by the service.",
            )),
        };
        match result {
            Ok(body) => {
                let Some(action) = env.header.action.response() else {
                    return self.fault(relates, FaultSubcode::InternalError, "no response action");
                };
                let mut header = Header::new(action);
                header.message_id = Some(new_uuid());
                header.relates_to = relates;
                header.to = Some(ns::ANONYMOUS.to_owned());
                Reply {
                    status: http::StatusCode::OK,
                    body: wsman::build(&Envelope::new(header, body)),
                    idle: false,
                    hold: None,
                }
            }
            Err((subcode, message)) => {
                let mut reply = self.fault(relates, subcode, message);
                reply.idle = subcode == FaultSubcode::TimedOut;
                reply.hold = env
                    .header
                    .operation_timeout
                    .as_deref()
                    .and_then(wsman::parse_xs_duration);
                reply
            }
        }
    }

    fn fault(&self, relates_to: Option<String>, subcode: FaultSubcode, message: &str) -> Reply {
        let mut spec = FaultSpec::new(subcode, message);
        spec.relates_to = relates_to;
        spec.machine = Some(self.hostname.clone());
        Reply {
            status: http::StatusCode::INTERNAL_SERVER_ERROR,
            body: wsman::build_fault(&spec),
            idle: false,
            hold: None,
        }
    }

    fn create(&self, user: &str, client_ip: &str, env: &Envelope) -> Result<Body, Failure> {
        let resource_uri = env.header.resource_uri.clone().unwrap_or_default();
        let is_psrp = resource_uri.starts_with(ns::RESOURCE_POWERSHELL_PREFIX);
        if resource_uri != ns::RESOURCE_CMD && !is_psrp {
            return Err((
                FaultSubcode::DestinationUnreachable,
                "The WS-Management service cannot process the request because the resource URI is not supported by this test host.",
            ));
        }
        let Body::Shell(requested) = &env.body else {
            return Err((
                FaultSubcode::SchemaValidationError,
                "Create needs an rsp:Shell body.",
            ));
        };
        let psrp = if is_psrp {
            let Some(creation_xml) = &requested.creation_xml else {
                return Err((
                    FaultSubcode::InvalidParameter,
                    "The parameter is incorrect.",
                ));
            };
            let ctx = CommandContext {
                hostname: self.hostname.clone(),
                user: user.to_owned(),
            };
            Some(PsrpShell::open(ctx, creation_xml)?)
        } else {
            None
        };
        // PSRP clients choose the ShellId (the RunspacePool id).
        let shell_id = match (&psrp, &requested.shell_id) {
            (Some(_), Some(id)) => id.to_ascii_uppercase(),
            _ => new_guid(),
        };
        {
            let mut shells = self.shells.lock().unwrap_or_else(|p| p.into_inner());
            if shells.len() >= MAX_SHELLS {
                return Err((
                    FaultSubcode::QuotaLimit,
                    "The maximum number of concurrent shells has been reached.",
                ));
            }
            if shells.contains_key(&shell_id) {
                return Err((FaultSubcode::InvalidParameter, "The shell already exists."));
            }
            shells.insert(
                shell_id.clone(),
                ShellState {
                    owner: user.to_owned(),
                    commands: HashMap::new(),
                    psrp,
                },
            );
        }
        let (inputs, outputs) = if is_psrp {
            ("stdin pr", "stdout")
        } else {
            ("stdin", "stdout stderr")
        };
        let echoed = Shell {
            shell_id: Some(shell_id.clone()),
            resource_uri: Some(resource_uri.clone()),
            owner: Some(user.to_owned()),
            client_ip: Some(client_ip.to_owned()),
            idle_timeout: Some("PT7200.000S".to_owned()),
            input_streams: requested.input_streams.clone().or(Some(inputs.into())),
            output_streams: requested.output_streams.clone().or(Some(outputs.into())),
            // Compression is never negotiated here (PROTOCOL.md §9).
            compression_mode: is_psrp.then(|| "NoCompression".to_owned()),
            ..Shell::default()
        };
        Ok(Body::ResourceCreated {
            address: env.header.to.clone(),
            resource_uri: Some(resource_uri),
            selectors: vec![Selector {
                name: "ShellId".into(),
                value: shell_id,
            }],
            shell: Some(Box::new(echoed)),
        })
    }

    fn command(&self, user: &str, env: &Envelope) -> Result<Body, Failure> {
        let Body::CommandLine(line) = &env.body else {
            return Err((
                FaultSubcode::SchemaValidationError,
                "Command needs an rsp:CommandLine body.",
            ));
        };
        let ctx = CommandContext {
            hostname: self.hostname.clone(),
            user: user.to_owned(),
        };
        if !self.owns_shell(user, env) {
            return Err(INVALID_SELECTORS);
        }
        if let Some(result) = self.with_psrp(user, env, |psrp| {
            let command_id = line.command_id.clone().unwrap_or_else(new_guid);
            let ran = psrp.command(&command_id, &line.arguments)?;
            Ok((ran, Body::CommandResponse { command_id }))
        }) {
            return self.journal_pipelines(user, env, result);
        }
        let mut text = line.command.trim().to_owned();
        for arg in &line.arguments {
            text.push(' ');
            text.push_str(arg);
        }
        self.record(user, env, JournalKind::Command, text);
        let entry = if Interpreter::wanted(&line.command, &line.arguments) {
            CommandEntry {
                stdout: Vec::new(),
                stderr: Vec::new(),
                exit_code: None,
                interpreter: Some(Interpreter::new(ctx)),
                finished: false,
            }
        } else {
            let output = commands::run(&ctx, &line.command, &line.arguments);
            CommandEntry {
                stdout: output.stdout,
                stderr: output.stderr,
                exit_code: Some(output.exit_code),
                interpreter: None,
                finished: false,
            }
        };
        let command_id = line.command_id.clone().unwrap_or_else(new_guid);
        self.with_shell(user, env, |shell| {
            shell.commands.insert(command_id.clone(), entry);
            Ok(Body::CommandResponse { command_id })
        })
    }

    fn receive(&self, user: &str, env: &Envelope) -> Result<Body, Failure> {
        let Body::Receive(desired) = &env.body else {
            return Err((
                FaultSubcode::SchemaValidationError,
                "Receive needs an rsp:Receive body.",
            ));
        };
        let Some(want) = desired.first() else {
            return Err((FaultSubcode::InvalidParameter, "Receive names no stream."));
        };
        if let Some(result) = self.with_psrp(user, env, |psrp| {
            let (streams, command_state) = psrp.receive(want.command_id.as_deref())?;
            Ok((
                Vec::new(),
                Body::ReceiveResponse {
                    streams,
                    command_state,
                },
            ))
        }) {
            return result.map(|(_, body)| body);
        }
        let Some(command_id) = want.command_id.clone() else {
            // What Windows answers a cmd-shell Receive without CommandId
            // (corpus test_winrs_fail_poll_process.yml).
            return Err((
                FaultSubcode::InvalidParameter,
                "The parameter is incorrect.",
            ));
        };
        let names: Vec<&str> = want.streams.split_whitespace().collect();
        self.with_shell(user, env, |shell| {
            let entry = shell.commands.get_mut(&command_id).ok_or(UNKNOWN_COMMAND)?;
            let mut streams = Vec::new();
            for (name, data) in [("stdout", &mut entry.stdout), ("stderr", &mut entry.stderr)] {
                if !data.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    streams.push(Stream {
                        name: name.into(),
                        command_id: Some(command_id.clone()),
                        end: false,
                        // At most one chunk per Receive, as Windows bounds a reply by
                        // MaxEnvelopeSize; the rest waits for the next Receive.
                        data: data.drain(..data.len().min(RECEIVE_CHUNK)).collect(),
                    });
                }
            }
            // Only streams the client asks for hold back Done (what it never reads, it
            // never gets).
            let pending = [("stdout", &entry.stdout), ("stderr", &entry.stderr)]
                .iter()
                .any(|(name, data)| {
                    !data.is_empty() && names.iter().any(|n| n.eq_ignore_ascii_case(name))
                });
            let state = match entry.exit_code {
                Some(_) if pending => CommandState {
                    command_id: Some(command_id.clone()),
                    state: CommandStateKind::Running,
                    exit_code: None,
                },
                Some(code) => {
                    if !entry.finished {
                        // Windows closes each stream with an empty element carrying End="true".
                        for name in ["stdout", "stderr"] {
                            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                                streams.push(Stream {
                                    name: name.into(),
                                    command_id: Some(command_id.clone()),
                                    end: true,
                                    data: Vec::new(),
                                });
                            }
                        }
                        entry.finished = true;
                    }
                    CommandState {
                        command_id: Some(command_id.clone()),
                        state: CommandStateKind::Done,
                        exit_code: Some(code),
                    }
                }
                // Still running with nothing new: the long poll times out (MS-WSMV 3.1.4.14).
                None if streams.is_empty() => {
                    return Err((
                        FaultSubcode::TimedOut,
                        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
                    ));
                }
                None => CommandState {
                    command_id: Some(command_id.clone()),
                    state: CommandStateKind::Running,
                    exit_code: None,
                },
            };
            Ok(Body::ReceiveResponse {
                streams,
                command_state: Some(state),
            })
        })
    }

    fn send(&self, user: &str, env: &Envelope) -> Result<Body, Failure> {
        let Body::Send(streams) = &env.body else {
            return Err((
                FaultSubcode::SchemaValidationError,
                "Send needs an rsp:Send body.",
            ));
        };
        if let Some(result) = self.with_psrp(user, env, |psrp| {
            let mut ran = Vec::new();
            for stream in streams {
                ran.extend(psrp.send(&stream.data)?);
            }
            Ok((ran, Body::SendResponse))
        }) {
            return self.journal_pipelines(user, env, result);
        }
        if self.owns_shell(user, env) {
            for stream in streams
                .iter()
                .filter(|s| s.name.eq_ignore_ascii_case("stdin"))
            {
                let text = String::from_utf8_lossy(&stream.data).into_owned();
                self.record(user, env, JournalKind::Stdin, text);
            }
        }
        self.with_shell(user, env, |shell| {
            for stream in streams {
                let Some(id) = &stream.command_id else {
                    return Err((FaultSubcode::InvalidParameter, "Send names no command."));
                };
                let entry = shell.commands.get_mut(id).ok_or(UNKNOWN_COMMAND)?;
                // Input to a command that reads no stdin is dropped, as cmd.exe /c does.
                if let Some(interp) = entry.interpreter.as_mut() {
                    if stream.name.eq_ignore_ascii_case("stdin") {
                        let out = interp.feed(&stream.data, stream.end);
                        entry.stdout.extend_from_slice(&out.stdout);
                        entry.stderr.extend_from_slice(&out.stderr);
                        entry.exit_code = interp.exited();
                    }
                }
            }
            Ok(Body::SendResponse)
        })
    }

    fn signal(&self, user: &str, env: &Envelope) -> Result<Body, Failure> {
        let Body::Signal { command_id, code } = &env.body else {
            return Err((
                FaultSubcode::SchemaValidationError,
                "Signal needs an rsp:Signal body.",
            ));
        };
        self.with_shell(user, env, |shell| {
            if let (Some(psrp), Some(id)) = (shell.psrp.as_mut(), command_id) {
                psrp.signal(id);
            }
            if let Some(id) = command_id {
                if matches!(
                    code,
                    SignalCode::Terminate | SignalCode::CtrlC | SignalCode::CtrlBreak
                ) {
                    shell.commands.remove(id);
                }
            }
            Ok(Body::SignalResponse)
        })
    }

    fn delete(&self, user: &str, env: &Envelope) -> Result<Body, Failure> {
        let id = env.shell_id().ok_or(INVALID_SELECTORS)?;
        let mut shells = self.shells.lock().unwrap_or_else(|p| p.into_inner());
        match shells.get(id) {
            Some(shell) if shell.owner == user => {
                shells.remove(id);
                Ok(Body::Empty)
            }
            _ => Err(INVALID_SELECTORS),
        }
    }

    /// Runs `f` on the PSRP state when the named shell is `user`'s PowerShell shell;
    /// `None` for cmd shells and unknown shells (handled by the cmd path).
    fn with_psrp(
        &self,
        user: &str,
        env: &Envelope,
        f: impl FnOnce(&mut PsrpShell) -> Result<(Vec<String>, Body), Failure>,
    ) -> Option<Result<(Vec<String>, Body), Failure>> {
        let id = env.shell_id()?;
        let mut shells = self.shells.lock().unwrap_or_else(|p| p.into_inner());
        match shells.get_mut(id) {
            Some(shell) if shell.owner == user => shell.psrp.as_mut().map(f),
            _ => None,
        }
    }

    fn journal_pipelines(
        &self,
        user: &str,
        env: &Envelope,
        result: Result<(Vec<String>, Body), Failure>,
    ) -> Result<Body, Failure> {
        let (ran, body) = result?;
        for text in ran {
            self.record(user, env, JournalKind::Pipeline, text);
        }
        Ok(body)
    }

    fn owns_shell(&self, user: &str, env: &Envelope) -> bool {
        self.with_shell(user, env, |_| Ok(())).is_ok()
    }

    /// Runs `f` on the shell named by the ShellId selector, if `user` owns it.
    fn with_shell<T>(
        &self,
        user: &str,
        env: &Envelope,
        f: impl FnOnce(&mut ShellState) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let id = env.shell_id().ok_or(INVALID_SELECTORS)?;
        let mut shells = self.shells.lock().unwrap_or_else(|p| p.into_inner());
        match shells.get_mut(id) {
            // Another user's shell looks exactly like a missing one.
            Some(shell) if shell.owner == user => f(shell),
            _ => Err(INVALID_SELECTORS),
        }
    }
}

type Failure = (FaultSubcode, &'static str);

/// Windows' answer for an unknown CommandId (corpus test_winrs_bad_cmd_id.yml).
const UNKNOWN_COMMAND: Failure = (
    FaultSubcode::InvalidSelectors,
    "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier.",
);

const INVALID_SELECTORS: Failure = (
    FaultSubcode::InvalidSelectors,
    "The WS-Management service cannot process the request because the request contained invalid selectors for the resource.",
);

/// Windows writes shell and command ids as upper-case GUIDs.
fn new_guid() -> String {
    uuid::Uuid::new_v4()
        .hyphenated()
        .to_string()
        .to_ascii_uppercase()
}

fn new_uuid() -> String {
    format!("uuid:{}", new_guid())
}
