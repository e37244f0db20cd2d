//! The emulated cmd.exe commands of the test host: what a WinRS Command produces.
//!
//! Owns the command table (`hostname`, `whoami`, `ipconfig [/all]`, `echo ...`, `exit N`)
//! and cmd.exe's answer to anything else. Pure: it runs nothing and reads no clock; the
//! output is shaped like Windows (CRLF line ends, cmd's error text).

/// Who runs the command and where, for `hostname` / `whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The host's NetBIOS-style name, e.g. `WIN-HOPGATE01`.
    pub hostname: String,
    /// The authenticated account name (without domain).
    pub user: String,
}

/// What an emulated command printed and returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Bytes written to stdout.
    pub stdout: Vec<u8>,
    /// Bytes written to stderr.
    pub stderr: Vec<u8>,
    /// Process exit code.
    pub exit_code: i64,
}

/// Runs an emulated command. `command` is `rsp:Command` and `arguments` the
/// `rsp:Arguments` (pywinrm splits them, pypsrp/Go send one line; both are joined the way
/// cmd.exe would see them).
pub fn run(ctx: &CommandContext, command: &str, arguments: &[String]) -> CommandOutput {
    let mut line = command.trim().to_owned();
    for arg in arguments {
        line.push(' ');
        line.push_str(arg);
    }
    // cmd.exe /c "cmd": clients that do not skip the shell may still wrap the line.
    execute(ctx, strip_cmd_wrapper(line.trim_start())).0
}

/// How two commands on one line are joined (cmd.exe `&`, `&&`, `||`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    Always,
    OnSuccess,
    OnFailure,
}

/// Runs one cmd.exe line: commands joined by `&`, `&&`, `||`, each optionally redirected
/// with `>&2` / `1>&2` (stdout to stderr) or `2>&1`. Returns the output and whether `exit`
/// ended the interpreter.
fn execute(ctx: &CommandContext, line: &str) -> (CommandOutput, bool) {
    let mut out = CommandOutput::default();
    let mut rest = line;
    let mut join = Join::Always;
    loop {
        let (segment, next) = split_operator(rest);
        let run_it = match join {
            Join::Always => true,
            Join::OnSuccess => out.exit_code == 0,
            Join::OnFailure => out.exit_code != 0,
        };
        if run_it {
            let (segment, redirect) = strip_redirect(segment);
            let (result, exited) = simple(ctx, segment.trim_start());
            match redirect {
                Redirect::None => {
                    out.stdout.extend_from_slice(&result.stdout);
                    out.stderr.extend_from_slice(&result.stderr);
                }
                Redirect::StdoutToStderr => {
                    out.stderr.extend_from_slice(&result.stdout);
                    out.stderr.extend_from_slice(&result.stderr);
                }
                Redirect::StderrToStdout => {
                    out.stdout.extend_from_slice(&result.stdout);
                    out.stdout.extend_from_slice(&result.stderr);
                }
            }
            out.exit_code = result.exit_code;
            if exited {
                return (out, true);
            }
        }
        match next {
            Some((j, tail)) => {
                join = j;
                rest = tail;
            }
            None => return (out, false),
        }
    }
}

/// Splits at the first `&&`, `||` or `&`.
fn split_operator(line: &str) -> (&str, Option<(Join, &str)>) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // `>&2` / `2>&1` are redirections, not separators.
        let after_gt = i > 0 && bytes.get(i - 1) == Some(&b'>');
        match b {
            b'&' if !after_gt => {
                let (join, len) = if bytes.get(i + 1) == Some(&b'&') {
                    (Join::OnSuccess, 2)
                } else {
                    (Join::Always, 1)
                };
                return (
                    line.get(..i).unwrap_or_default(),
                    Some((join, line.get(i + len..).unwrap_or_default())),
                );
            }
            b'|' if bytes.get(i + 1) == Some(&b'|') => {
                return (
                    line.get(..i).unwrap_or_default(),
                    Some((Join::OnFailure, line.get(i + 2..).unwrap_or_default())),
                );
            }
            _ => {}
        }
        i += 1;
    }
    (line, None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redirect {
    None,
    StdoutToStderr,
    StderrToStdout,
}

/// Removes one stream redirection; cmd.exe drops it from the command text.
fn strip_redirect(segment: &str) -> (String, Redirect) {
    for (pattern, redirect) in [
        ("1>&2", Redirect::StdoutToStderr),
        ("2>&1", Redirect::StderrToStdout),
        (">&2", Redirect::StdoutToStderr),
    ] {
        if let Some(pos) = segment.find(pattern) {
            let mut text = segment.get(..pos).unwrap_or_default().to_owned();
            text.push_str(segment.get(pos + pattern.len()..).unwrap_or_default());
            return (text, redirect);
        }
    }
    (segment.to_owned(), Redirect::None)
}

/// One command without operators; true when it was `exit`.
fn simple(ctx: &CommandContext, text: &str) -> (CommandOutput, bool) {
    let (program, rest) = match text.split_once(char::is_whitespace) {
        // cmd keeps trailing spaces in `echo` output (`echo out && ...` prints "out ").
        Some((p, r)) => (p, r),
        None => (text, ""),
    };
    let program_lc = program.to_ascii_lowercase();
    let program_lc = program_lc.strip_suffix(".exe").unwrap_or(&program_lc);
    let out = match program_lc {
        "hostname" => ok(format!("{}\r\n", ctx.hostname)),
        "whoami" => ok(format!(
            "{}\\{}\r\n",
            ctx.hostname.to_ascii_lowercase(),
            ctx.user.to_ascii_lowercase()
        )),
        "ipconfig" => ok(ipconfig(ctx, rest.trim().eq_ignore_ascii_case("/all"))),
        "echo" if rest.trim().is_empty() => ok("ECHO is on.\r\n".to_owned()),
        "echo" => ok(format!("{}\r\n", rest.trim_start())),
        "echo." => ok("\r\n".to_owned()),
        // Not a Windows program: the benchmarks' output generator (`bench-output BYTES`),
        // lines of 98 letters and CRLF, capped so one command cannot exhaust the host.
        "bench-output" => bench_output(rest.trim()),
        "exit" => return (exit(rest), true),
        "" => CommandOutput::default(),
        _ => CommandOutput {
            stdout: Vec::new(),
            stderr: format!(
                "'{program}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
            )
            .into_bytes(),
            exit_code: 1,
        },
    };
    (out, false)
}

/// Most bytes `bench-output` writes.
const BENCH_OUTPUT_MAX: usize = 256 * 1024 * 1024;

fn bench_output(arg: &str) -> CommandOutput {
    let Ok(n) = arg.parse::<usize>() else {
        return CommandOutput {
            stdout: Vec::new(),
            stderr: b"usage: bench-output BYTES\r\n".to_vec(),
            exit_code: 1,
        };
    };
    let n = n.min(BENCH_OUTPUT_MAX);
    let line: Vec<u8> = (0..98u8).map(|i| b'a' + i % 26).chain(*b"\r\n").collect();
    let stdout = line.iter().copied().cycle().take(n).collect();
    CommandOutput {
        stdout,
        stderr: Vec::new(),
        exit_code: 0,
    }
}

/// `cmd` started with no arguments: reads command lines from stdin (what `winrs cmd` and
/// clients that feed an interpreter through Send do) and exits at end of input or `exit`.
#[derive(Debug, Clone)]
pub struct Interpreter {
    ctx: CommandContext,
    partial: Vec<u8>,
    last_code: i64,
    exited: Option<i64>,
}

// === impl Interpreter ===

impl Interpreter {
    /// Whether `command`/`arguments` start an interactive interpreter.
    pub fn wanted(command: &str, arguments: &[String]) -> bool {
        let program = command.trim().to_ascii_lowercase();
        matches!(program.as_str(), "cmd" | "cmd.exe")
            && arguments.iter().all(|a| a.trim().is_empty())
    }

    /// A fresh interpreter.
    pub fn new(ctx: CommandContext) -> Self {
        Self {
            ctx,
            partial: Vec::new(),
            last_code: 0,
            exited: None,
        }
    }

    /// Feeds stdin bytes; runs every complete line. `end` closes stdin (the interpreter
    /// runs what is left and exits). Returns what the lines printed.
    pub fn feed(&mut self, data: &[u8], end: bool) -> CommandOutput {
        let mut out = CommandOutput::default();
        if self.exited.is_some() {
            return out;
        }
        self.partial.extend_from_slice(data);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            if self.run_line(&line, &mut out) {
                return out;
            }
        }
        if end {
            let rest = std::mem::take(&mut self.partial);
            if !self.run_line(&rest, &mut out) {
                self.exited = Some(self.last_code);
            }
        }
        out
    }

    /// The exit code once the interpreter ended.
    pub fn exited(&self) -> Option<i64> {
        self.exited
    }

    /// Runs one line; true when it ended the interpreter (`exit`).
    fn run_line(&mut self, line: &[u8], out: &mut CommandOutput) -> bool {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            return false;
        }
        let (result, exited) = execute(&self.ctx, text.trim_start());
        out.stdout.extend_from_slice(&result.stdout);
        out.stderr.extend_from_slice(&result.stderr);
        self.last_code = result.exit_code;
        out.exit_code = result.exit_code;
        if exited {
            self.exited = Some(result.exit_code);
        }
        exited
    }
}

fn ok(stdout: String) -> CommandOutput {
    CommandOutput {
        stdout: stdout.into_bytes(),
        stderr: Vec::new(),
        exit_code: 0,
    }
}

/// `exit [/b] N`: cmd.exe treats a non-number as 0.
fn exit(rest: &str) -> CommandOutput {
    let mut words = rest.split_whitespace();
    let mut code = words.next().unwrap_or("0");
    if code.eq_ignore_ascii_case("/b") {
        code = words.next().unwrap_or("0");
    }
    CommandOutput {
        exit_code: code.parse().unwrap_or(0),
        ..CommandOutput::default()
    }
}

fn strip_cmd_wrapper(line: &str) -> &str {
    let lower = line.to_ascii_lowercase();
    for prefix in ["cmd.exe /c ", "cmd /c "] {
        if lower.starts_with(prefix) {
            let inner = line.get(prefix.len()..).unwrap_or_default().trim_start();
            return inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(inner);
        }
    }
    line
}

fn ipconfig(ctx: &CommandContext, all: bool) -> String {
    let mut out = String::from("\r\nWindows IP Configuration\r\n\r\n");
    if all {
        out.push_str(&format!(
            "   Host Name . . . . . . . . . . . . : {}\r\n   Primary Dns Suffix  . . . . . . . : \r\n   Node Type . . . . . . . . . . . . : Hybrid\r\n   IP Routing Enabled. . . . . . . . : No\r\n   WINS Proxy Enabled. . . . . . . . : No\r\n\r\n",
            ctx.hostname
        ));
    }
    out.push_str("Ethernet adapter Ethernet:\r\n\r\n   Connection-specific DNS Suffix  . : \r\n");
    if all {
        out.push_str(
            "   Description . . . . . . . . . . . : Microsoft Hyper-V Network Adapter\r\n   Physical Address. . . . . . . . . : 00-15-5D-01-02-03\r\n   DHCP Enabled. . . . . . . . . . . : No\r\n   Autoconfiguration Enabled . . . . : Yes\r\n",
        );
    }
    out.push_str("   IPv4 Address. . . . . . . . . . . : 192.0.2.10");
    out.push_str(if all { "(Preferred) \r\n" } else { "\r\n" });
    out.push_str("   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r\n   Default Gateway . . . . . . . . . : 192.0.2.1\r\n");
    if all {
        out.push_str("   DNS Servers . . . . . . . . . . . : 192.0.2.53\r\n   NetBIOS over Tcpip. . . . . . . . : Enabled\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn ctx() -> CommandContext {
        CommandContext {
            hostname: "WIN-HOPGATE01".into(),
            user: "Alice".into(),
        }
    }

    #[test]
    fn emulates_the_command_table() {
        assert_eq!(run(&ctx(), "hostname", &[]).stdout, b"WIN-HOPGATE01\r\n");
        assert_eq!(
            run(&ctx(), "whoami", &[]).stdout,
            b"win-hopgate01\\alice\r\n"
        );
        // pywinrm splits program and arguments; pypsrp sends one line.
        assert_eq!(
            run(&ctx(), "echo", &["hello".into(), "world".into()]).stdout,
            b"hello world\r\n"
        );
        assert_eq!(
            run(&ctx(), "echo hello world", &[]).stdout,
            b"hello world\r\n"
        );
        assert_eq!(run(&ctx(), "exit 3", &[]).exit_code, 3);
        assert_eq!(run(&ctx(), "exit", &["/b".into(), "7".into()]).exit_code, 7);
        assert_eq!(run(&ctx(), "cmd.exe /c \"exit 5\"", &[]).exit_code, 5);
        let all = String::from_utf8(run(&ctx(), "ipconfig", &["/all".into()]).stdout).unwrap();
        assert!(all.contains("Host Name . . . . . . . . . . . . : WIN-HOPGATE01"));
        let short = String::from_utf8(run(&ctx(), "IPCONFIG.EXE", &[]).stdout).unwrap();
        assert!(short.contains("IPv4 Address") && !short.contains("Host Name"));
    }

    #[test]
    fn interpreter_runs_stdin_lines_until_exit_or_end() {
        assert!(Interpreter::wanted("cmd", &[]));
        assert!(!Interpreter::wanted("cmd", &["/c".into(), "dir".into()]));
        let mut i = Interpreter::new(ctx());
        let out = i.feed(b"hostname\r\nech", false);
        assert_eq!(out.stdout, b"WIN-HOPGATE01\r\n");
        assert_eq!(i.exited(), None);
        let out = i.feed(b"o hi\r\nexit 9\r\nhostname\r\n", false);
        assert_eq!(out.stdout, b"hi\r\n");
        assert_eq!(i.exited(), Some(9));
        let mut i = Interpreter::new(ctx());
        let out = i.feed(b"whoami", true);
        assert_eq!(out.stdout, b"win-hopgate01\\alice\r\n");
        assert_eq!(i.exited(), Some(0));
    }

    #[test]
    fn cmd_operators_and_redirections() {
        // The line pypsrp's test_winrs_stderr_rc.yml sent to Windows, and what came back.
        let out = run(
            &ctx(),
            "cmd.exe",
            &["/c echo out && echo err>&2 && exit 1".into()],
        );
        assert_eq!(out.stdout, b"out \r\n");
        assert_eq!(out.stderr, b"err \r\n");
        assert_eq!(out.exit_code, 1);
        let out = run(&ctx(), "nope || echo fallback & echo always", &[]);
        assert_eq!(out.stdout, b"fallback \r\nalways\r\n");
        let out = run(&ctx(), "nope && echo skipped", &[]);
        assert!(out.stdout.is_empty());
        assert_eq!(out.exit_code, 1);
        let out = run(&ctx(), "nope 2>&1", &[]);
        assert!(out.stderr.is_empty() && !out.stdout.is_empty());
        let mut i = Interpreter::new(ctx());
        let out = i.feed(b"echo a & exit 4\r\necho never\r\n", false);
        assert_eq!(out.stdout, b"a \r\n");
        assert_eq!(i.exited(), Some(4));
    }

    #[test]
    fn unknown_command_writes_cmd_error_to_stderr() {
        let out = run(&ctx(), "format", &["c:".into()]);
        assert_eq!(out.exit_code, 1);
        assert!(out.stdout.is_empty());
        assert_eq!(
            out.stderr,
            b"'format' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
        );
    }
}
