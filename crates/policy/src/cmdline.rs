//! Windows command lines: splitting into arguments the way the C runtime does, finding
//! cmd.exe metacharacters that would start a second command, and reading the switches of
//! the interpreters whose payload must be judged as code (`cmd /c`, `powershell
//! -Command/-EncodedCommand`). Text handling only; no decisions.

use crate::prelude::*;

use base64::Engine as _;

use super::pattern::fold;

/// One argument with its byte range in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits a command line with the Microsoft C runtime rules: blanks separate arguments
/// outside quotes, `"` toggles quoting, `""` inside quotes is a literal quote, and
/// backslashes are literal unless they precede a quote (2n → n and a toggle, 2n+1 → n and
/// a literal quote).
pub(crate) fn split_args(line: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while chars.get(i).is_some_and(|c| c.1 == ' ' || c.1 == '\t') {
            i += 1;
        }
        let Some(&(start, _)) = chars.get(i) else {
            break;
        };
        let mut value = String::new();
        let mut quoted = false;
        while let Some(&(_, c)) = chars.get(i) {
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            if c == '\\' {
                let mut n = 0;
                while chars.get(i + n).is_some_and(|c| c.1 == '\\') {
                    n += 1;
                }
                if chars.get(i + n).is_some_and(|c| c.1 == '"') {
                    value.extend(core::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        value.push('"');
                        i += n + 1;
                    } else {
                        i += n;
                    }
                } else {
                    value.extend(core::iter::repeat_n('\\', n));
                    i += n;
                }
                continue;
            }
            if c == '"' {
                if quoted && chars.get(i + 1).is_some_and(|c| c.1 == '"') {
                    value.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            value.push(c);
            i += 1;
        }
        let end = chars.get(i).map_or(line.len(), |c| c.0);
        out.push(Token { value, start, end });
    }
    out
}

/// The first cmd.exe metacharacter that is live in `line` when cmd interprets it, or a
/// control character. `%` (variable expansion) and `!` (delayed expansion) count
/// everywhere; `& | < > ^` count outside double quotes. A line that starts with a quote
/// is also checked with cmd /c's quote stripping (first and last quote removed), because
/// that can turn quoted text into live text.
pub(crate) fn cmd_metachar(line: &str) -> Option<char> {
    if let Some(c) = line
        .chars()
        .find(|&c| c == '%' || c == '!' || (c.is_control() && c != '\t'))
    {
        return Some(c);
    }
    if let Some(c) = live_outside_quotes(line) {
        return Some(c);
    }
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix('"') {
        let stripped = match rest.rfind('"') {
            Some(last) => format!(
                "{}{}",
                rest.get(..last).unwrap_or(""),
                rest.get(last + 1..).unwrap_or("")
            ),
            None => rest.to_string(),
        };
        return live_outside_quotes(&stripped);
    }
    None
}

fn live_outside_quotes(line: &str) -> Option<char> {
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            '&' | '|' | '<' | '>' | '^' if !quoted => return Some(c),
            _ => {}
        }
    }
    None
}

/// What an interpreter's command line asks it to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Launch {
    /// Code given on the command line (`cmd /c` line, PowerShell script).
    pub(crate) code: Option<String>,
    /// True when the interpreter then reads commands from stdin.
    pub(crate) reads_stdin: bool,
    /// True when `code` was decoded from `-EncodedCommand`.
    pub(crate) encoded: bool,
}

/// Reads cmd.exe's switches. `tokens` are the line's arguments after the program.
pub(crate) fn cmd_launch(line: &str, tokens: &[Token]) -> Result<Launch, String> {
    let mut strip_quotes = false;
    for t in tokens {
        let raw = line.get(t.start..t.end).unwrap_or("");
        let Some(sw) = raw.strip_prefix('/') else {
            return Err(format!("cmd.exe argument '{raw}' before /c"));
        };
        let lower = sw.to_ascii_lowercase();
        let first = lower.chars().next();
        if matches!(first, Some('c') | Some('k') | Some('r')) {
            // Everything after the two characters of the switch is the command line.
            let rest = line
                .get(t.start + 2..)
                .unwrap_or("")
                .trim_start()
                .to_string();
            return Ok(Launch {
                code: Some(cmd_c_quotes(&rest, strip_quotes)),
                reads_stdin: first == Some('k'),
                encoded: false,
            });
        }
        match lower.as_str() {
            "s" => strip_quotes = true,
            "q" | "d" | "a" | "u" | "e:on" | "e:off" | "f:off" | "v:off" => {}
            "v:on" | "v" | "f:on" => {
                return Err(format!(
                    "cmd.exe switch /{sw} enables expansion the gateway does not model"
                ))
            }
            _ if lower.starts_with("t:") => {}
            _ => return Err(format!("unknown cmd.exe switch /{sw}")),
        }
    }
    Ok(Launch {
        code: None,
        reads_stdin: true,
        encoded: false,
    })
}

/// The command line `cmd /c` (or `/k`) runs, after its quote rule (`cmd /?`): the quotes
/// are kept when there is no `/s`, exactly two quotes, no `& < > ( ) @ ^ |` and a blank
/// between them, and the quoted text names an executable file (read here as a path or a
/// name with an executable extension); otherwise a leading quote and the last quote are
/// removed.
pub(crate) fn cmd_c_quotes(rest: &str, strip: bool) -> String {
    let Some(body) = rest.strip_prefix('"') else {
        return rest.to_string();
    };
    if !strip && rest.matches('"').count() == 2 {
        let inner = body.split('"').next().unwrap_or("");
        let lower = inner.to_ascii_lowercase();
        let executable = inner.contains('\\')
            || [".exe", ".com", ".bat", ".cmd"]
                .iter()
                .any(|e| lower.ends_with(e));
        if !inner.contains(['&', '<', '>', '(', ')', '@', '^', '|'])
            && inner.contains([' ', '\t'])
            && executable
        {
            return rest.to_string();
        }
    }
    match body.rfind('"') {
        Some(last) => format!(
            "{}{}",
            body.get(..last).unwrap_or(""),
            body.get(last + 1..).unwrap_or("")
        ),
        None => body.to_string(),
    }
}

/// powershell.exe / pwsh parameters: (canonical name, shortest accepted prefix, takes a
/// value). Checked in order, as the console host does.
const PS_PARAMS: &[(&str, &str, bool)] = &[
    ("psconsolefile", "psc", true),
    ("version", "v", true),
    ("nologo", "nol", false),
    ("noexit", "noe", false),
    ("sta", "s", false),
    ("mta", "mta", false),
    ("noprofile", "nop", false),
    ("noninteractive", "noni", false),
    ("inputformat", "in", true),
    ("outputformat", "o", true),
    ("windowstyle", "w", true),
    ("file", "f", false),
    ("command", "c", false),
    ("encodedcommand", "e", false),
    ("executionpolicy", "ex", true),
    ("encodedarguments", "encodeda", false),
    ("configurationname", "config", true),
    ("workingdirectory", "wo", true),
    ("settingsfile", "settings", true),
    ("login", "l", false),
    ("commandwithargs", "commandwithargs", false),
];

const PS_ALIASES: &[(&str, &str)] = &[
    ("ec", "encodedcommand"),
    ("ep", "executionpolicy"),
    ("cwa", "commandwithargs"),
    ("wd", "workingdirectory"),
];

fn ps_param(name: &str) -> Option<(&'static str, bool)> {
    if let Some((_, canon)) = PS_ALIASES.iter().find(|(a, _)| *a == name) {
        return PS_PARAMS.iter().find(|p| p.0 == *canon).map(|p| (p.0, p.2));
    }
    PS_PARAMS
        .iter()
        .find(|(canon, min, _)| canon.starts_with(name) && name.len() >= min.len())
        .map(|p| (p.0, p.2))
}

/// Decodes `-EncodedCommand`: base64 of UTF-16LE text.
pub(crate) fn decode_encoded_command(b64: &str) -> Result<String, String> {
    let trimmed = b64.trim();
    // Strict padding, as .NET's Convert.FromBase64String requires.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .map_err(|e| format!("-EncodedCommand is not base64: {e}"))?;
    if bytes.len() % 2 != 0 {
        return Err("-EncodedCommand is not UTF-16 (odd length)".into());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16(&units).map_err(|_| "-EncodedCommand is not valid UTF-16".to_string())
}

/// Reads powershell.exe (or pwsh when `pwsh`) arguments, already split.
pub(crate) fn powershell_launch(args: &[String], pwsh: bool) -> Result<Launch, String> {
    let mut launch = Launch::default();
    let mut noexit = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let mut chars = arg.chars();
        let is_param = matches!(
            chars.next(),
            Some('-' | '/' | '\u{2013}' | '\u{2014}' | '\u{2015}')
        );
        if !is_param {
            if pwsh {
                return Err("pwsh script file argument cannot be inspected".into());
            }
            // powershell.exe treats the rest of the line as -Command.
            launch.code = Some(args.get(i - 1..).unwrap_or_default().join(" "));
            break;
        }
        let name = fold(chars.as_str());
        if name.is_empty() {
            launch.reads_stdin = true;
            continue;
        }
        let Some((canon, takes_value)) = ps_param(&name) else {
            return Err(format!("unknown PowerShell parameter '{arg}'"));
        };
        match canon {
            "command" => {
                let rest = args.get(i..).unwrap_or_default();
                if rest.first().is_some_and(|r| r == "-") {
                    launch.reads_stdin = true;
                } else if rest.is_empty() {
                    return Err("-Command without a command".into());
                } else {
                    launch.code = Some(rest.join(" "));
                    launch.encoded = false;
                }
                break;
            }
            "encodedcommand" => {
                let value = args.get(i).ok_or("-EncodedCommand without a value")?;
                i += 1;
                launch.code = Some(decode_encoded_command(value)?);
                launch.encoded = true;
            }
            "file" => {
                if args.get(i).is_some_and(|f| f == "-") {
                    launch.reads_stdin = true;
                    break;
                }
                return Err("-File runs a script file the gateway cannot inspect".into());
            }
            "encodedarguments" | "commandwithargs" => {
                return Err(format!("-{canon} cannot be inspected"))
            }
            "noexit" => noexit = true,
            _ => {
                if takes_value {
                    if args.get(i).is_none() {
                        return Err(format!("-{canon} without a value"));
                    }
                    i += 1;
                }
            }
        }
    }
    if launch.code.is_none() || noexit {
        // With no command PowerShell reads commands from (redirected) stdin.
        launch.reads_stdin = true;
    }
    Ok(launch)
}
