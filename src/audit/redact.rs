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
    let reason = scrub(reason, &r);
    (r.command, reason)
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
        if is_separator(word(parts, w)) {
            out.push(Vec::new());
        } else if let Some(cur) = out.last_mut() {
            cur.push(k);
        }
    }
    out.retain(|s| !s.is_empty());
    out
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
    let program = program.rsplit(['\\', '/']).next().unwrap_or_default();
    let program = program.strip_suffix(".exe").unwrap_or(program);
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
            // The plain text is the first positional argument or -String.
            if let Some(&k) = seg.get(1).filter(|&&k| !w(k).starts_with('-')) {
                cut(k);
            }
            for pair in seg.windows(2) {
                if let [flag, value] = pair {
                    if w(*flag) == "-string" {
                        cut(*value);
                    }
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
}
