//! Programs as Windows starts them: one identity per program however it is written
//! (quotes, cmd carets, case, directory, `%SystemRoot%`/`%windir%`/`%ComSpec%`, the
//! executable extensions, trailing dots and spaces, `net1` for `net`), and the canonical
//! command line `<program> <arguments>` that allow and deny rules are matched against,
//! whichever shell starts the program. Also the pieces of cmd.exe syntax that decide
//! what starts: the first word of a command, `&`/`&&`/`||`/`|` sequences, redirections,
//! and the `start` switches. Text handling only; no decisions here.

use crate::prelude::*;

use super::cmdline::{cmd_launch, powershell_launch, split_args, Launch};
use super::pattern::fold;
use super::role::normalize_line;

/// Directories (folded, after variable expansion) whose programs are the system's own:
/// `C:\Windows\System32\net.exe` is the `net` a bare `net` finds.
const SYSTEM_DIRS: &[&str] = &[
    "c:\\windows",
    "c:\\windows\\system32",
    "c:\\windows\\syswow64",
    "c:\\windows\\sysnative",
    "\\windows",
    "\\windows\\system32",
    "\\windows\\syswow64",
    "c:\\windows\\system32\\windowspowershell\\v1.0",
    "c:\\windows\\syswow64\\windowspowershell\\v1.0",
    "c:\\program files\\powershell\\7",
];

/// Extensions the system runs without being told (PATHEXT's executables; scripts for
/// other hosts keep their extension and so their own identity).
const EXECUTABLE_EXTENSIONS: &[&str] = &[".exe", ".com", ".bat", ".cmd"];

/// Programs that are another program under a second name.
const TWINS: &[(&str, &str)] = &[("net1", "net")];

/// Environment variables whose value on every Windows host is known well enough to
/// identify a program: the others are refused.
const KNOWN_VARIABLES: &[(&str, &str)] = &[
    ("systemroot", "c:\\windows"),
    ("windir", "c:\\windows"),
    ("systemdrive", "c:"),
    ("comspec", "c:\\windows\\system32\\cmd.exe"),
];

/// One program's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    /// The program's name: folded leaf, no executable extension, twins merged (`net`).
    pub(crate) id: String,
    /// The name rules see: `id` for programs found on the path or in a system directory,
    /// `<directory>\<id>` for a program anywhere else (`c:\temp\whoami`), so that a copy
    /// planted elsewhere is not the program a rule names.
    pub(crate) word: String,
    /// The program as written (`n^et`, `"C:\Windows\System32\NET.EXE"`).
    pub(crate) written: String,
}

/// Resolves a program name with quotes and carets already removed; `written` is the
/// form the client sent, for messages. Names that cannot be resolved to one program
/// (other `%VAR%` expansions, `!VAR!`, UNC and device paths, 8.3 short names, wildcards,
/// alternate data streams) are errors.
pub(crate) fn identify(text: &str, written: &str) -> Result<Program, String> {
    let refuse = |why: &str| Err(format!("program '{written}': {why}"));
    let expanded = match expand_variables(text) {
        Ok(e) => e,
        Err(why) => return refuse(&why),
    };
    if expanded.contains('!') {
        return refuse("'!' (delayed variable expansion) cannot be resolved");
    }
    let path = fold(&expanded.replace('/', "\\"));
    if path.starts_with("\\\\") {
        return refuse("UNC and device paths name another machine or cannot be resolved");
    }
    if path.contains(['*', '?', '<', '>', '|', '"']) || path.chars().any(char::is_control) {
        return refuse("wildcard or reserved character in the name");
    }
    let (drive, rest) = match path.as_bytes() {
        [d, b':', ..] if d.is_ascii_alphabetic() => path.split_at(2),
        _ => ("", path.as_str()),
    };
    let rooted = rest.starts_with('\\');
    let mut segments: Vec<String> = Vec::new();
    for raw in rest.split('\\') {
        match raw {
            "" | "." => {}
            ".." => {
                if segments.last().is_some_and(|s| s != "..") {
                    segments.pop();
                } else if !rooted {
                    segments.push("..".into());
                }
            }
            _ => {
                // Win32 drops trailing dots and spaces from a name (`net.exe.`, `net `).
                let trimmed = raw.trim_end_matches(['.', ' ']);
                if trimmed.is_empty() {
                    continue;
                }
                if trimmed.contains(':') {
                    return refuse("':' in a path names a stream or device");
                }
                if is_short_name(trimmed) {
                    return refuse("8.3 short names cannot be resolved");
                }
                segments.push(trimmed.to_string());
            }
        }
    }
    let Some(leaf) = segments.pop() else {
        return refuse("no program name");
    };
    let mut id = leaf.as_str();
    if let Some(stem) = EXECUTABLE_EXTENSIONS
        .iter()
        .find_map(|ext| id.strip_suffix(ext))
        .filter(|s| !s.is_empty())
    {
        id = stem.trim_end_matches(['.', ' ']);
    }
    let id = TWINS
        .iter()
        .find(|(twin, _)| *twin == id)
        .map_or(id, |(_, canon)| canon)
        .to_string();
    // `.\net` names a directory too (the current one), with no segment left.
    let has_dir = !drive.is_empty() || rest.contains('\\');
    let mut dir = format!(
        "{drive}{}{}",
        if rooted { "\\" } else { "" },
        segments.join("\\")
    );
    if has_dir && dir.is_empty() {
        dir.push('.');
    }
    let word = if !has_dir || SYSTEM_DIRS.contains(&dir.as_str()) {
        id.clone()
    } else if dir.ends_with('\\') {
        format!("{dir}{id}")
    } else {
        format!("{dir}\\{id}")
    };
    Ok(Program {
        id,
        word,
        written: written.to_string(),
    })
}

/// A name with a `~digit` short-name tail (`POWERS~1.EXE`, `WINDOW~1`).
fn is_short_name(name: &str) -> bool {
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && chars.peek().is_some_and(char::is_ascii_digit) {
            return true;
        }
    }
    false
}

/// Replaces the known `%VAR%` references; any other `%` is an error.
fn expand_variables(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 1..).unwrap_or("");
        let Some(end) = after.find('%') else {
            return Err("a lone '%' cannot be resolved".into());
        };
        let name = after.get(..end).unwrap_or("");
        let folded = fold(name);
        let Some((_, value)) = KNOWN_VARIABLES.iter().find(|(n, _)| *n == folded) else {
            return Err(format!("%{name}% cannot be resolved"));
        };
        out.push_str(value);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

/// A program with its canonical command line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProgramLine {
    /// The program, when it could be identified (a whole cmd line with metacharacters
    /// whose first word cannot be resolved has none).
    pub(crate) program: Option<Program>,
    /// `<program word> <arguments>`: what allow and deny rules are matched against.
    pub(crate) line: String,
    /// `line` folded, for exact rules.
    pub(crate) folded: String,
    /// Other forms deny rules are also matched against (line and folded): the line with
    /// the bare program id when the program has a directory, and the line as written.
    pub(crate) deny_forms: Vec<(String, String)>,
}

// === impl ProgramLine ===

impl ProgramLine {
    /// `arguments` as the program receives them (carets already removed for cmd).
    /// `written` is the whole line as the client wrote it.
    pub(crate) fn new(program: Program, arguments: &str, written: &str) -> Self {
        let args = normalize_line(arguments);
        let join = |word: &str| {
            if args.is_empty() {
                word.to_string()
            } else {
                format!("{word} {args}")
            }
        };
        let line = join(&program.word);
        let mut deny_forms = Vec::new();
        if program.word != program.id {
            deny_forms.push(join(&program.id));
        }
        let written = normalize_line(written);
        if written != line && !deny_forms.contains(&written) {
            deny_forms.push(written);
        }
        // The arguments as the program receives them (C runtime rules: `"user"` and
        // `us""er` are `user`), for deny rules written against what runs.
        let received = received_arguments(arguments);
        if received != args {
            let form = if received.is_empty() {
                program.id.clone()
            } else {
                format!("{} {received}", program.id)
            };
            if form != line && !deny_forms.contains(&form) {
                deny_forms.push(form);
            }
        }
        Self {
            folded: fold(&line),
            deny_forms: deny_forms
                .into_iter()
                .map(|l| {
                    let f = fold(&l);
                    (l, f)
                })
                .collect(),
            program: Some(program),
            line,
        }
    }

    /// A line whose program is unknown: matched as written.
    pub(crate) fn unidentified(written: &str) -> Self {
        let line = normalize_line(written);
        Self {
            folded: fold(&line),
            deny_forms: Vec::new(),
            program: None,
            line,
        }
    }

    /// `program 'net' (written 'n^et') line 'net user'`, or `command line '...'`.
    pub(crate) fn describe(&self) -> String {
        match &self.program {
            Some(p) if fold(p.written.trim()) != p.id => format!(
                "program '{}' (written '{}') line '{}'",
                p.id, p.written, self.line
            ),
            Some(p) => format!("program '{}' line '{}'", p.id, self.line),
            None => format!("command line '{}'", self.line),
        }
    }
}

/// The first word of a command and the rest, split the way one shell reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The program word as written.
    pub(crate) written: String,
    /// The program word with quotes and carets removed.
    pub(crate) text: String,
    /// The arguments as the program receives them.
    pub(crate) rest: String,
    /// The arguments as written (carets kept).
    pub(crate) raw_rest: String,
}

/// Reads one cmd.exe command (no `&`, `|`, redirection left): leading blanks and `@ ; , =`
/// are skipped, the program word ends at a blank or `/ ; , = ( +` outside quotes, and
/// carets outside quotes escape the next character everywhere.
pub(crate) fn cmd_command(line: &str) -> Result<Parsed, String> {
    let body = line.trim_start_matches([' ', '\t', '@', ';', ',', '=']);
    if body.starts_with('(') {
        return Err("a parenthesised command block cannot be analysed".into());
    }
    let mut text = String::new();
    let mut quoted = false;
    let mut end = body.len();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '^' if !quoted => {
                if let Some((_, e)) = chars.next() {
                    text.push(e);
                }
            }
            ' ' | '\t' | '/' | ';' | ',' | '=' | '(' | '+' if !quoted => {
                end = i;
                break;
            }
            _ => text.push(c),
        }
    }
    let written = body.get(..end).unwrap_or(body).to_string();
    let mut raw_rest = body.get(end..).unwrap_or("").to_string();
    if raw_rest.starts_with([';', ',', '=']) {
        raw_rest.replace_range(..1, " ");
    }
    Ok(Parsed {
        written,
        text,
        rest: remove_carets(&raw_rest),
        raw_rest,
    })
}

/// Reads a command line the way CreateProcess does (no cmd.exe in between): the program
/// is the first blank-separated word, or the text between the first two quotes.
pub(crate) fn process_command(line: &str) -> Parsed {
    let body = line.trim_start_matches([' ', '\t']);
    let (written, text, rest) = match body.strip_prefix('"') {
        Some(inner) => match inner.find('"') {
            Some(close) => (
                body.get(..close + 2).unwrap_or(body),
                inner.get(..close).unwrap_or(""),
                inner.get(close + 1..).unwrap_or(""),
            ),
            None => (body, inner, ""),
        },
        None => {
            let end = body.find([' ', '\t']).unwrap_or(body.len());
            let word = body.get(..end).unwrap_or(body);
            (word, word, body.get(end..).unwrap_or(""))
        }
    };
    Parsed {
        written: written.to_string(),
        text: text.to_string(),
        rest: rest.to_string(),
        raw_rest: rest.to_string(),
    }
}

/// Removes cmd.exe's escape carets outside double quotes (`^^` is a literal caret, `^"`
/// a quote that does not start quoting).
pub(crate) fn remove_carets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '^' if !quoted => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// True when cmd.exe could expand a variable in `text` (a pair of `%` or of `!`).
pub(crate) fn has_expansion(text: &str) -> bool {
    text.matches('%').count() >= 2 || text.matches('!').count() >= 2
}

/// The commands cmd.exe runs for a line with operators: split at `&`, `&&`, `||`, `|`
/// and line breaks outside quotes (a caret escapes), with redirections removed. Each
/// command keeps its carets (for [`cmd_command`]). Parenthesised blocks are errors.
pub(crate) fn cmd_commands(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let c = current.trim();
        if !c.is_empty() {
            out.push(c.to_string());
        }
        current.clear();
    };
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                quoted = false;
            }
            if c == '\r' || c == '\n' {
                quoted = false;
                flush(&mut current, &mut out);
            } else {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                current.push(c);
            }
            '^' => {
                current.push(c);
                if let Some(e) = chars.next() {
                    current.push(e);
                }
            }
            '&' | '|' | '\r' | '\n' => flush(&mut current, &mut out),
            '(' | ')' => return Err("a parenthesised command block cannot be analysed".into()),
            '>' | '<' => {
                // `2>` and `1>`: the handle number belongs to the redirection.
                let bytes = current.as_bytes();
                if let [.., b' ' | b'\t', d] | [d] = bytes {
                    if d.is_ascii_digit() {
                        current.pop();
                    }
                }
                if chars.peek() == Some(&'>') {
                    chars.next();
                }
                if chars.peek() == Some(&'&') {
                    chars.next();
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                    continue;
                }
                while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                    chars.next();
                }
                // The file name: one word, quoted or not.
                let mut in_quotes = false;
                while let Some(&n) = chars.peek() {
                    if !in_quotes && matches!(n, ' ' | '\t' | '&' | '|' | '<' | '>' | '\r' | '\n') {
                        break;
                    }
                    if n == '"' {
                        in_quotes = !in_quotes;
                    }
                    chars.next();
                }
                current.push(' ');
            }
            _ => current.push(c),
        }
    }
    flush(&mut current, &mut out);
    Ok(out)
}

/// The command `start` runs: its switches and an optional quoted title skipped.
pub(crate) fn start_payload(rest: &str) -> Result<String, String> {
    let tokens = split_args(rest);
    let mut iter = tokens.iter();
    let mut first = true;
    while let Some(t) = iter.next() {
        let raw = rest.get(t.start..t.end).unwrap_or("");
        if first && raw.starts_with('"') {
            first = false;
            continue;
        }
        first = false;
        let Some(switch) = raw.strip_prefix('/') else {
            return Ok(rest.get(t.start..).unwrap_or("").to_string());
        };
        let s = fold(switch);
        match s.as_str() {
            "b" | "i" | "min" | "max" | "wait" | "low" | "normal" | "high" | "realtime"
            | "abovenormal" | "belownormal" | "separate" | "shared" => {}
            "d" | "node" | "affinity" => {
                if iter.next().is_none() {
                    return Err(format!("start /{switch} without a value"));
                }
            }
            _ if s.starts_with('d') => {}
            _ => return Err(format!("unknown start switch /{switch}")),
        }
    }
    Err("start without a program opens an interactive shell".into())
}

/// A whole cmd line with metacharacters, for allow rules: the first program in canonical
/// form and the rest as written (carets kept, so escaped operators stay visible).
pub(crate) fn whole_line(line: &str) -> ProgramLine {
    let Ok(parsed) = cmd_command(line) else {
        return ProgramLine::unidentified(line);
    };
    match identify(&parsed.text, &parsed.written) {
        Ok(p) => ProgramLine::new(p, &parsed.raw_rest, line),
        Err(_) => ProgramLine::unidentified(line),
    }
}

/// True for the programs whose arguments are code: cmd, powershell, pwsh.
pub(crate) fn is_interpreter(id: &str) -> bool {
    matches!(id, "cmd" | "powershell" | "pwsh")
}

/// When `program` is an interpreter: whether it is PowerShell and what it was asked to do.
pub(crate) fn interpreter_launch(
    program: &Program,
    rest: &str,
) -> Option<Result<(bool, Launch), String>> {
    match program.id.as_str() {
        "cmd" => Some(cmd_launch(rest, &split_args(rest)).map(|l| (false, l))),
        p @ ("powershell" | "pwsh") => {
            let args: Vec<String> = split_args(rest).into_iter().map(|t| t.value).collect();
            Some(powershell_launch(&args, p == "pwsh").map(|l| (true, l)))
        }
        _ => None,
    }
}

/// When a cmd line starts an interpreter: whether it is PowerShell and what it was asked
/// to do.
pub(crate) fn launch(line: &str) -> Option<Result<(bool, Launch), String>> {
    let parsed = cmd_command(line).ok()?;
    let program = identify(&parsed.text, &parsed.written).ok()?;
    interpreter_launch(&program, &parsed.rest)
}

/// How one cmd rule names its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mention {
    /// The rule is about these programs (ids).
    Programs(Vec<String>),
    /// The rule's program cannot be read from it (`.*`, `(net|sc) ...`): it may be about
    /// any program.
    Any,
}

/// An exact cmd rule in canonical form (the same form a cmd line takes), with the
/// program it names. A rule whose first word cannot be identified stays as written.
pub(crate) fn canonical_rule(text: &str) -> (String, Mention) {
    match cmd_command(text)
        .ok()
        .and_then(|p| identify(&p.text, &p.written).ok().map(|id| (p, id)))
    {
        Some((parsed, program)) => {
            let id = program.id.clone();
            let line = ProgramLine::new(program, &parsed.rest, text);
            (line.line, Mention::Programs(vec![id]))
        }
        None => (normalize_line(text), Mention::Any),
    }
}

/// A cmd pattern with the literal program at the start of each alternative written in
/// canonical form (`C:\\Windows\\System32\\net\.exe user.*` becomes `net user.*`), and
/// the programs it names. A pattern whose program is not a literal word followed by a
/// blank (or the end) is kept as written and may be about any program.
pub(crate) fn canonical_pattern(source: &str) -> (String, Mention) {
    let Some(alternatives) = top_level_alternatives(source) else {
        return (source.to_string(), Mention::Any);
    };
    let mut ids = Vec::new();
    let mut rewritten = Vec::new();
    for alt in alternatives {
        let Some((literal, consumed)) = literal_program(alt) else {
            return (source.to_string(), Mention::Any);
        };
        let Ok(program) = identify(&literal, &literal) else {
            return (source.to_string(), Mention::Any);
        };
        rewritten.push(format!(
            "{}{}",
            regex::escape(&program.word),
            alt.get(consumed..).unwrap_or("")
        ));
        if !ids.contains(&program.id) {
            ids.push(program.id);
        }
    }
    (rewritten.join("|"), Mention::Programs(ids))
}

/// Splits a regular expression at `|` outside groups and classes; `None` when it is
/// unbalanced (the regex compiler reports that).
fn top_level_alternatives(source: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut class = false;
    let mut start = 0;
    let mut chars = source.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => depth = depth.checked_sub(1)?,
            '|' if !class && depth == 0 => {
                out.push(source.get(start..i)?);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(source.get(start..)?);
    Some(out)
}

/// The literal program word at the start of a regex alternative and the bytes it takes,
/// when it is followed by a blank, the end, or a group starting with a blank.
fn literal_program(alt: &str) -> Option<(String, usize)> {
    let mut literal = String::new();
    let mut chars = alt.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            '\\' => {
                let mut probe = chars.clone();
                probe.next();
                match probe.next() {
                    Some((_, e)) if "\\.-_$:%\"'~#&".contains(e) => {
                        literal.push(e);
                        chars = probe;
                    }
                    Some((_, 's')) => return boundary(literal, i),
                    _ => return None,
                }
            }
            '.' => {
                // An unescaped dot inside a word (`net.exe`) is meant as a dot.
                let mut probe = chars.clone();
                probe.next();
                if probe.peek().is_some_and(|(_, n)| n.is_alphanumeric()) && !literal.is_empty() {
                    literal.push('.');
                    chars.next();
                } else {
                    return None;
                }
            }
            ' ' => return boundary(literal, i),
            '(' => {
                let inner = alt.get(i + 1..)?;
                let inner = inner.strip_prefix("?:").unwrap_or(inner);
                if inner.starts_with(' ') || inner.starts_with("\\s") {
                    return boundary(literal, i);
                }
                return None;
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '%' | '"' | '~' | '#') => {
                literal.push(c);
                chars.next();
            }
            _ => return None,
        }
    }
    boundary(literal, alt.len())
}

fn boundary(literal: String, at: usize) -> Option<(String, usize)> {
    (!literal.is_empty()).then_some((literal, at))
}

/// Arguments split by the C runtime rules and joined again, quoted only where a value
/// holds blanks (or is empty): what the program's `argv` holds, as one line.
fn received_arguments(arguments: &str) -> String {
    split_args(arguments)
        .into_iter()
        .map(|t| {
            if t.value.is_empty() || t.value.contains([' ', '\t']) {
                format!("\"{}\"", t.value)
            } else {
                t.value
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Programs that start another program named in their own arguments, with the argument
/// that does it (`None`: any use). Deny rules cannot see what they start.
const LAUNCHERS: &[(&str, Option<&str>, &str)] = &[
    ("wmic", Some("create"), "wmic process call create"),
    ("schtasks", Some("/tr"), "schtasks /tr"),
    ("forfiles", Some("/c"), "forfiles /c"),
    ("runas", None, "runas"),
    ("conhost", None, "conhost"),
    ("mshta", None, "mshta"),
    ("rundll32", None, "rundll32"),
    ("wsl", None, "wsl"),
    ("bash", None, "bash"),
    ("at", None, "at"),
    ("psexec", None, "psexec"),
    ("psexec64", None, "psexec"),
    ("cmstp", None, "cmstp"),
    ("msiexec", None, "msiexec"),
    ("regsvr32", None, "regsvr32"),
    ("wscript", None, "wscript"),
    ("cscript", None, "cscript"),
];

/// When `program` (an identity) with `arguments` starts programs its arguments name:
/// how it does it.
pub(crate) fn launches_from_arguments(program: &str, arguments: &str) -> Option<&'static str> {
    let (_, needs, how) = LAUNCHERS.iter().find(|(p, _, _)| *p == program)?;
    match needs {
        None => Some(how),
        Some(switch) => split_args(arguments)
            .iter()
            .any(|t| fold(&t.value).starts_with(switch))
            .then_some(*how),
    }
}
