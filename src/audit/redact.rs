//! Redaction at the source: secrets in command lines never become part of an event.
//!
//! Callers pass a command (cmd argv, or PSRP statements rendered one per element) before the
//! event is built; every value that looks like a secret is replaced by [`REDACTED`]:
//! - parameters named like `*Password*`, `*Credential*`, `*Secret*`, `*Token*` (and `Pwd`,
//!   `Passphrase`, `ApiKey`), case-insensitive, followed by their value (`-Password x`,
//!   `-Password:x`, `--password=x`, `/password:x`), and the short `/p:x`, `-p=x`, `/pw:x`;
//! - `name=value` pairs with such names inside a word (connection and query strings);
//! - the password in `scheme://user:password@host`;
//! - positional passwords of `net user NAME PASSWORD`, `net use [DEV] \\SHARE PASSWORD`,
//!   `schtasks … /p PASSWORD` and `ConvertTo-SecureString PLAIN`.
//!
//! A denial reason quoting the command is scrubbed token-wise ([`scrub_words`]): only
//! whole-token occurrences of the secrets found change, so the engine's own words stay
//! whole. Command output is scrubbed by substring ([`SecretMemory::scrub`]): there a
//! secret glued into longer text must still go.
//!
//! PSRP SecureStrings are redacted earlier, by the codec. Over-redaction (a harmless value
//! after `-TokenType`) is accepted; a missed secret is a bug. The functions are pure;
//! [`SecretMemory`] remembers each session's secrets so that a command echoing its own
//! password (`echo -Password x`) does not leak it through the `output` event.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use regex::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Name fragments that mark a parameter as secret (lower case).
const SECRET_WORDS: &str = r"[a-z0-9_.-]*(?:password|passwd|passphrase|pwd|credential|secret|token|apikey|api_key)[a-z0-9_.-]*";

#[allow(
    clippy::expect_used,
    reason = "constant patterns, exercised by the tests"
)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid constant pattern")
}

/// `-Password`, `--token`, `/password`, `-Password:` alone: the value is the next word.
static SWITCH: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"(?i)^(?:--?|/){SECRET_WORDS}:?$")));
/// `-Password:x`, `--password=x`, `/p:x`, `-pw=x`: the value is attached.
static ATTACHED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)^(?:--?|/)(?:{SECRET_WORDS}|p|pw|pass|rp)[:=](?P<v>.+)$"
    ))
});
/// `Password=x` inside a word (`Server=db;Password=x;`, `?token=x&`).
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:^|[;&?,])\s*{SECRET_WORDS}\s*=\s*(?P<v>[^;&,\s]+)"
    ))
});
/// `https://user:password@host`.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)://[^/\s:@]+:(?P<v>[^@\s/]+)@"));

/// A command with its secrets replaced, and the secret texts found (to scrub free text,
/// such as a denial reason that quotes the command, with [`scrub`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub command: Vec<String>,
    pub secrets: Vec<String>,
}

/// Redacts a command: each element is one argv entry (cmd) or one statement (PSRP).
pub fn command(parts: &[String]) -> Redacted {
    // Words of all parts in order, as (part index, byte range).
    let mut words: Vec<Word> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        words.extend(split_words(p).into_iter().map(|r| (i, r)));
    }
    let text = |w: &Word| word(parts, w);
    // Byte ranges to replace, per part.
    let mut cuts: Vec<Word> = Vec::new();
    let whole = |k: usize, cuts: &mut Vec<Word>| {
        if let Some(w) = words.get(k) {
            cuts.push(w.clone());
        }
    };
    for seg in segments(parts, &words) {
        program_rules(&seg, parts, &words, &mut |k| whole(k, &mut cuts));
    }
    for (k, w) in words.iter().enumerate() {
        let t = text(w);
        let bare = unquote(t);
        if SWITCH.is_match(bare) {
            let next_is_value = words
                .get(k + 1)
                .is_some_and(|n| !unquote(text(n)).starts_with('-') && !is_separator(text(n)));
            if next_is_value {
                whole(k + 1, &mut cuts);
            }
            continue;
        }
        for r in [&*ATTACHED, &*PAIR, &*URL_PASSWORD] {
            for c in r.captures_iter(t) {
                if let Some(v) = c.name("v") {
                    cuts.push((w.0, w.1.start + v.start()..w.1.start + v.end()));
                }
            }
        }
    }
    apply(parts, cuts)
}

/// Replaces every secret of `r` found in `text` (e.g. a policy reason quoting the command).
pub fn scrub(text: &str, r: &Redacted) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret containing a shorter one is replaced whole.
    let mut secrets: Vec<&String> = r.secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        out = out.replace(s.as_str(), REDACTED);
    }
    out
}

/// A denied command and its reason, both redacted.
pub fn denial(parts: &[String], reason: &str) -> (Vec<String>, String) {
    let r = command(parts);
    let reason = scrub_words(reason, &r);
    (r.command, reason)
}

/// Replaces the secrets of `r` in `text` only where they stand as whole tokens: not glued
/// to a letter, digit or `_` on a side where the secret itself begins or ends with one.
///
/// For reasons the policy engine writes: they quote the command (`line 'net user x y
/// /add'`), so each secret appears there as a token, while the engine's own words around
/// it must stay whole. Plain substring replacement turned "not allowed by role" into "not
/// allowed b[redacted] role" for the password `y` (issue #14). A secret that is itself
/// one of the reason's words (a password `role`) is still replaced: never leaking wins.
pub fn scrub_words(text: &str, r: &Redacted) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // Longest first, so a secret containing a shorter one is replaced whole.
    let mut secrets: Vec<&String> = r.secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let mut out = text.to_string();
    for secret in secrets {
        let starts_word = secret.chars().next().is_some_and(is_word);
        let ends_word = secret.chars().next_back().is_some_and(is_word);
        let mut next = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let mut before: Option<char> = None;
        while let Some(at) = rest.find(secret.as_str()) {
            let (head, tail) = rest.split_at(at);
            let prev = head.chars().next_back().or(before);
            let after = tail.get(secret.len()..).unwrap_or_default();
            let glued_before = starts_word && prev.is_some_and(is_word);
            let glued_after = ends_word && after.chars().next().is_some_and(is_word);
            let bounded = !glued_before && !glued_after;
            next.push_str(head);
            if bounded {
                next.push_str(REDACTED);
                before = secret.chars().next_back();
                rest = after;
            } else {
                // Not a token here: keep one character and look again from the next.
                let keep = tail.chars().next().map_or(0, char::len_utf8);
                next.push_str(tail.get(..keep).unwrap_or_default());
                before = tail.chars().next();
                rest = tail.get(keep..).unwrap_or_default();
            }
        }
        next.push_str(rest);
        out = next;
    }
    out
}

/// A word: (index of the part it is in, byte range in that part).
type Word = (usize, std::ops::Range<usize>);

fn word<'a>(parts: &'a [String], w: &Word) -> &'a str {
    parts
        .get(w.0)
        .and_then(|p| p.get(w.1.clone()))
        .unwrap_or_default()
}

/// Shortest secret scrubbed from command output: shorter ones would garble the transcript
/// (every `a` replaced) for little protection.
const MIN_OUTPUT_SECRET: usize = 3;
/// Most secrets remembered per session.
const MAX_SECRETS_PER_SESSION: usize = 64;

/// The secrets seen in each session's commands, to scrub that session's output.
/// Bounded in sessions and per session; forgotten when the session ends or idles out.
#[derive(Clone)]
pub struct SecretMemory {
    by_session: moka::sync::Cache<String, Arc<Vec<String>>>,
}

impl std::fmt::Debug for SecretMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("SecretMemory")
            .field("sessions", &self.by_session.entry_count())
            .finish()
    }
}

impl Default for SecretMemory {
    fn default() -> Self {
        Self {
            by_session: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
        }
    }
}

// === impl SecretMemory ===

impl SecretMemory {
    /// Remembers what `r` found for `session`.
    pub fn remember(&self, session: &str, r: &Redacted) {
        let fresh: Vec<&String> = r
            .secrets
            .iter()
            .filter(|s| s.chars().count() >= MIN_OUTPUT_SECRET)
            .collect();
        if fresh.is_empty() {
            return;
        }
        let mut all: Vec<String> = self
            .by_session
            .get(session)
            .map(|v| v.as_ref().clone())
            .unwrap_or_default();
        for s in fresh {
            if !all.contains(s) && all.len() < MAX_SECRETS_PER_SESSION {
                all.push(s.clone());
            }
        }
        self.by_session.insert(session.to_string(), Arc::new(all));
    }

    /// `text` with every remembered secret of `session` replaced.
    pub fn scrub(&self, session: &str, text: String) -> String {
        match self.by_session.get(session) {
            Some(secrets) => scrub(
                &text,
                &Redacted {
                    command: Vec::new(),
                    secrets: secrets.as_ref().clone(),
                },
            ),
            None => text,
        }
    }

    /// Forgets a session (it ended).
    pub fn forget(&self, session: &str) {
        self.by_session.invalidate(session);
    }
}

fn apply(parts: &[String], mut cuts: Vec<Word>) -> Redacted {
    cuts.sort_by_key(|(i, r)| (*i, r.start, std::cmp::Reverse(r.end)));
    let mut out: Vec<String> = parts.to_vec();
    let mut secrets = Vec::new();
    // Per part, from the end, skipping ranges inside one already replaced.
    for (i, part) in parts.iter().enumerate() {
        let mut mine: Vec<std::ops::Range<usize>> = Vec::new();
        for (_, r) in cuts.iter().filter(|(j, _)| *j == i) {
            match mine.last_mut() {
                Some(last) if r.start < last.end => last.end = last.end.max(r.end),
                _ => mine.push(r.clone()),
            }
        }
        let mut s = part.clone();
        for r in mine.iter().rev() {
            if let Some(secret) = part.get(r.clone()) {
                secrets.push(secret.to_string());
                let inner = unquote(secret);
                if inner != secret {
                    secrets.push(inner.to_string());
                }
                s.replace_range(r.clone(), REDACTED);
            }
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = s;
        }
    }
    Redacted {
        command: out,
        secrets,
    }
}

/// Word boundaries in one part: whitespace separates, quotes (`"`, `'`) group.
fn split_words(s: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_whitespace() => {
                if let Some(st) = start.take() {
                    out.push(st..i);
                }
            }
            None => {
                if start.is_none() {
                    start = Some(i);
                }
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if let Some(st) = start {
        out.push(st..s.len());
    }
    out
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn is_separator(w: &str) -> bool {
    matches!(w, "|" | "||" | "&" | "&&" | ";")
}

/// Indices of words grouped into simple commands (split at `|`, `&`, `&&`, `||`, `;`).
fn segments(parts: &[String], words: &[Word]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for (k, w) in words.iter().enumerate() {
        let text = word(parts, w);
        if is_separator(text) {
            out.push(Vec::new());
            continue;
        }
        // A subexpression starts a command of its own:
        // `-Password (ConvertTo-SecureString 'x' -AsPlainText -Force)`.
        let opens = ["(", "$(", "@("].iter().any(|o| text.starts_with(o));
        if opens && !program_name(text).is_empty() {
            out.push(Vec::new());
        }
        if let Some(cur) = out.last_mut() {
            cur.push(k);
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// A command word's program name, lower case: without a leading `(`, `$(`, `@(`, a path,
/// `.exe`.
fn program_name(word: &str) -> String {
    let w = word.trim_start_matches(['(', '$', '@']).to_lowercase();
    let w = w.rsplit(['\\', '/']).next().unwrap_or_default();
    w.strip_suffix(".exe").unwrap_or(w).to_string()
}

/// Positional passwords of programs known to take them.
fn program_rules(seg: &[usize], parts: &[String], words: &[Word], cut: &mut dyn FnMut(usize)) {
    let w = |k: usize| -> String {
        words
            .get(k)
            .map(|x| unquote(word(parts, x)).to_lowercase())
            .unwrap_or_default()
    };
    let Some(&first) = seg.first() else { return };
    let program = w(first);
    let program = program_name(&program);
    let program = program.as_str();
    let positional: Vec<usize> = seg
        .iter()
        .skip(1)
        .copied()
        .filter(|&k| !w(k).starts_with('/'))
        .collect();
    match program {
        "net" | "net1" => match positional.first().map(|&k| w(k)).as_deref() {
            Some("user" | "users") => {
                // net user NAME PASSWORD
                if let Some(&k) = positional.get(2) {
                    cut(k);
                }
            }
            Some("use") => {
                // net use [DEVICE] \\SERVER\SHARE PASSWORD
                let share = positional.iter().position(|&k| w(k).starts_with(r"\\"));
                if let Some(&k) = share.and_then(|i| positional.get(i + 1)) {
                    cut(k);
                }
            }
            _ => {}
        },
        "schtasks" => {
            for pair in seg.windows(2) {
                if let [flag, value] = pair {
                    if matches!(w(*flag).as_str(), "/p" | "/rp") {
                        cut(*value);
                    }
                }
            }
        }
        "convertto-securestring" => {
            // The plain text is -String's value or the first positional argument, wherever
            // the switches (-AsPlainText, -Force) put it; -Key/-SecureKey take a value.
            let mut args = seg.iter().skip(1).copied();
            let mut positional_seen = false;
            while let Some(k) = args.next() {
                let flag = w(k);
                let flag = flag.trim_end_matches(')');
                match flag {
                    "-string" => {
                        if let Some(v) = args.next() {
                            cut(v);
                        }
                    }
                    "-key" | "-securekey" => {
                        args.next();
                    }
                    f if f.starts_with('-') => {}
                    _ if !positional_seen => {
                        positional_seen = true;
                        cut(k);
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn red(s: &[&str]) -> Vec<String> {
        command(&argv(s)).command
    }

    #[test]
    fn named_parameters_in_every_form() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["New-LocalUser", "-Name", "bob", "-Password", "hunter2"],
                &["New-LocalUser", "-Name", "bob", "-Password", REDACTED],
            ),
            (
                &["tool", "-password:hunter2"],
                &["tool", "-password:[redacted]"],
            ),
            (
                &["tool", "--password=hunter2"],
                &["tool", "--password=[redacted]"],
            ),
            (
                &["tool", "/p:hunter2", "/u:bob"],
                &["tool", "/p:[redacted]", "/u:bob"],
            ),
            (&["tool", "/PW:hunter2"], &["tool", "/PW:[redacted]"]),
            (
                &["tool", "--api-token", "abc"],
                &["tool", "--api-token", REDACTED],
            ),
            (
                &["tool", "-ClientSecret", "abc"],
                &["tool", "-ClientSecret", REDACTED],
            ),
            (&["tool", "/TOKEN", "abc"], &["tool", "/TOKEN", REDACTED]),
            // A switch followed by another switch has no value to hide.
            (
                &["tool", "-Credential", "-Force"],
                &["tool", "-Credential", "-Force"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(red(input), argv(want), "{input:?}");
        }
    }

    #[test]
    fn whole_command_lines_in_one_string() {
        assert_eq!(
            red(&["cmd /c mytool -Password hunter2 -Verbose"]),
            ["cmd /c mytool -Password [redacted] -Verbose"]
        );
        assert_eq!(
            red(&["net user bob P@ss /add"]),
            ["net user bob [redacted] /add"]
        );
        assert_eq!(
            red(&[r#"tool -Password "two words" -x"#]),
            ["tool -Password [redacted] -x"]
        );
    }

    #[test]
    fn positional_passwords_of_known_programs() {
        assert_eq!(
            red(&["net", "user", "bob", "P@ss", "/add"]),
            argv(&["net", "user", "bob", REDACTED, "/add"])
        );
        assert_eq!(
            red(&["NET.EXE", "user", "bob"]),
            argv(&["NET.EXE", "user", "bob"])
        );
        assert_eq!(
            red(&[
                "net",
                "use",
                "Z:",
                r"\\srv\share",
                "S3cret",
                "/user:CORP\\bob"
            ]),
            argv(&[
                "net",
                "use",
                "Z:",
                r"\\srv\share",
                REDACTED,
                "/user:CORP\\bob"
            ])
        );
        assert_eq!(
            red(&["schtasks", "/create", "/u", "bob", "/p", "S3cret", "/tn", "x"]),
            argv(&["schtasks", "/create", "/u", "bob", "/p", REDACTED, "/tn", "x"])
        );
        // PSRP statements as the proxy renders them (values JSON-quoted).
        assert_eq!(
            red(&[r#"ConvertTo-SecureString "hunter2" -AsPlainText -Force | Set-Thing"#]),
            [r#"ConvertTo-SecureString [redacted] -AsPlainText -Force | Set-Thing"#]
        );
        assert_eq!(
            red(&[r#"Get-Service -Name "w32time" | Select-Object"#]),
            [r#"Get-Service -Name "w32time" | Select-Object"#]
        );
        // xcopy's /p is a switch, not a password.
        assert_eq!(
            red(&["xcopy", "/p", "a", "b"]),
            argv(&["xcopy", "/p", "a", "b"])
        );
    }

    #[test]
    fn pairs_and_urls_inside_words() {
        assert_eq!(
            red(&["sqlcmd", "-S", "Server=db;User Id=sa;Password=hunter2;"]),
            argv(&["sqlcmd", "-S", "Server=db;User Id=sa;Password=[redacted];"])
        );
        assert_eq!(
            red(&[
                "curl",
                "https://bob:hunter2@example.test/x?access_token=abc&y=1"
            ]),
            argv(&[
                "curl",
                "https://bob:[redacted]@example.test/x?access_token=[redacted]&y=1"
            ])
        );
    }

    #[test]
    fn reasons_quoting_the_command_are_scrubbed() {
        let (cmd, reason) = denial(
            &argv(&["net", "user", "bob", "P@ss", "/add"]),
            "command 'net user bob P@ss /add' is not allowed",
        );
        assert_eq!(cmd, argv(&["net", "user", "bob", REDACTED, "/add"]));
        assert_eq!(
            reason,
            "command 'net user bob [redacted] /add' is not allowed"
        );
        let (_, reason) = denial(
            &argv(&[r#"Set-X -Password "hunter2""#]),
            r#"parameter -Password "hunter2" of Set-X is not allowed"#,
        );
        assert!(!reason.contains("hunter2"), "{reason}");
    }

    #[test]
    fn session_memory_scrubs_echoed_secrets_until_the_session_ends() {
        let m = SecretMemory::default();
        m.remember("s1", &command(&argv(&["echo", "-Password", "hunter2"])));
        m.remember("s1", &command(&argv(&["tool", "-Token", "ab"])));
        assert_eq!(
            m.scrub("s1", "-Password hunter2 ab\r\n".into()),
            "-Password [redacted] ab\r\n",
            "two-character secrets are not scrubbed from output"
        );
        assert_eq!(m.scrub("s2", "hunter2".into()), "hunter2", "per session");
        m.forget("s1");
        assert_eq!(m.scrub("s1", "hunter2".into()), "hunter2");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn nothing_secret_nothing_changed() {
        let plain = argv(&["ipconfig", "/all"]);
        let r = command(&plain);
        assert_eq!(r.command, plain);
        assert!(r.secrets.is_empty());
    }

    /// Denial reasons the policy engine gives for `policies/` (`hopgate policy check`
    /// against the shipped roles: demo, read-only-operator, service-restarter, dns-admin).
    const REASONS: &[&str] = &[
        "program 'shutdown' line 'shutdown /s /t 0' is not allowed by role 'demo'",
        "program 'net' line 'net user x y /add' is not allowed by role 'demo'",
        r"program 'del' line 'del /q C:\x' is not allowed by role 'demo'",
        "program 'format' line 'format c:' is not allowed by role 'demo'",
        "cmd metacharacter '&' in 'hostname & del x'",
        r"program 'reg' line 'reg add HKLM\x' is not allowed by role 'demo'",
        "cmd metacharacter '|' in 'ipconfig /all | findstr x'",
        "role 'demo' accepts only code the gateway can analyse: -EncodedCommand is not UTF-16 (odd length)",
        r"program 'type' line 'type \\other\c$\x' is not allowed by role 'demo'",
        "cannot verify the deny rules of role 'demo': cmd variable expansion in the arguments of program 'echo'",
        r"program 'net' line 'net use \\srv\share P4ss /user:bob' is not allowed by role 'demo'",
        "program 'schtasks' line 'schtasks /create /tn x /tr y /p secret' is not allowed by role 'demo'",
        "program 'runas' line 'runas /user:admin cmd' is not allowed by role 'demo'",
        "cmd metacharacter '>' in 'hostname > out.txt'",
        r"cmd metacharacter '^' in 'dir C:\ ^& calc'",
        "command 'Stop-Computer' is not visible to role 'read-only-operator'",
        "role 'read-only-operator' allows no variables: `$` at line 1, column 30",
        "command 'Remove-Item' is not visible to role 'read-only-operator'",
        "command 'Stop-Service' is not visible to role 'read-only-operator'",
        "parameter '-ComputerName' of 'Get-Process' binds to 'ComputerName', which role 'read-only-operator' denies",
        "role 'read-only-operator' allows no script blocks except the safe subset: command invocation `hostname` at line 1, column 46",
        "command 'Start-Process' is not visible to role 'read-only-operator'",
        "role 'read-only-operator' allows no commands inside expressions except (Get-Date ...): `Get-Credential` at line 1, column 40",
        "role 'read-only-operator' allows no variables: `$x` at line 1, column 1",
        "command 'Add-Type' is not visible to role 'read-only-operator'",
        "command 'Stop-Computer' is not visible to role 'service-restarter'",
        "parameter '-Name' of 'Restart-Service' binds to 'Name': value 'Foo' is not in the allowed set of parameter 'Name'",
        "command 'x' is not visible to role 'service-restarter'",
        "role 'service-restarter' allows no commands inside expressions except (Get-Date ...): `iwr` at line 1, column 6",
        "parameter '-Name' of 'Start-Service' binds to 'Name': value 'Foo' does not match the pattern of parameter 'Name'",
        "role 'service-restarter' allows no call operators (&): `&` at line 1, column 1",
        "role 'service-restarter' allows no type literals except [datetime]::Now, ::Today and ::UtcNow: `[System.IO.File]` at line 1, column 1",
        "script is script text and role 'dns-admin' allows no scripts",
        "no role grants 'alice@hopgate.test' access to host 'web1'",
        "command 'Stop-Computer' is denied by role 'demo'",
        "demo allows no metacharacters (still denied, for that reason)",
    ];

    /// Issue #14: redaction ate words of reasons ("not allowed b[redacted] role" for the
    /// password `y`). Every shipped reason goes through unchanged whatever secret the
    /// command held, as long as the secret is not a whole token of the reason: here every
    /// proper prefix and suffix of each of its words (the shapes that used to match).
    #[test]
    fn denial_reasons_keep_every_word_outside_secrets() {
        for reason in REASONS {
            let words: Vec<&str> = reason
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| w.chars().count() >= 2)
                .collect();
            for w in words {
                let chars: Vec<(usize, char)> = w.char_indices().collect();
                for &(i, _) in chars.iter().skip(1) {
                    for secret in [&w[i..], &w[..i]] {
                        if reason
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|t| t == secret)
                        {
                            continue; // a whole token of the reason: replaced, rightly
                        }
                        for cmd in [
                            format!("net user bob {secret} /add"),
                            format!("New-LocalUser -Password {secret}"),
                            format!("ConvertTo-SecureString -AsPlainText '{secret}' -Force"),
                        ] {
                            let (_, got) = denial(std::slice::from_ref(&cmd), reason);
                            assert_eq!(&got, reason, "secret {secret:?} in {cmd:?}");
                        }
                    }
                }
            }
        }
        // The case of the issue, exactly.
        let (cmd, reason) = denial(&argv(&["net user x y /add"]), REASONS[1]);
        assert_eq!(cmd, ["net user x [redacted] /add"]);
        assert_eq!(
            reason,
            "program 'net' line 'net user x [redacted] /add' is not allowed by role 'demo'"
        );
    }

    #[test]
    fn real_secrets_are_still_redacted_in_commands_and_reasons() {
        let cases: &[(&str, &str, &str)] = &[
            ("net user bob P4ss!", "P4ss!", "net user bob [redacted]"),
            (
                "New-LocalUser -Name bob -Password (ConvertTo-SecureString 'x' -AsPlainText -Force)",
                "'x'",
                "New-LocalUser -Name bob -Password [redacted] [redacted] -AsPlainText -Force)",
            ),
            (
                "ConvertTo-SecureString -AsPlainText 'hunter2' -Force",
                "'hunter2'",
                "ConvertTo-SecureString -AsPlainText [redacted] -Force",
            ),
            (
                "ConvertTo-SecureString -AsPlainText -Force -String hunter2",
                "hunter2",
                "ConvertTo-SecureString -AsPlainText -Force -String [redacted]",
            ),
            (
                "$c = New-Object PSCredential('bob', (ConvertTo-SecureString \"s3cr3t\" -AsPlainText -Force))",
                "\"s3cr3t\"",
                "$c = New-Object PSCredential('bob', (ConvertTo-SecureString [redacted] -AsPlainText -Force))",
            ),
        ];
        for (cmd, secret, expected) in cases {
            let reason = format!("program 'pwsh' line '{cmd}' is not allowed by role 'demo'");
            let (got_cmd, got_reason) = denial(&argv(&[cmd]), &reason);
            assert_eq!(got_cmd, [*expected], "{cmd}");
            assert_eq!(
                got_reason,
                format!("program 'pwsh' line '{expected}' is not allowed by role 'demo'"),
                "{cmd}"
            );
            assert!(!got_reason.contains(secret), "{cmd}: {got_reason}");
        }
        // A secret that is itself a word of the reason is replaced: leaking loses.
        let (_, reason) = denial(
            &argv(&["net user bob role"]),
            "net user bob role denied by role 'demo'",
        );
        assert_eq!(
            reason,
            "net user bob [redacted] denied by [redacted] 'demo'"
        );
    }
}
