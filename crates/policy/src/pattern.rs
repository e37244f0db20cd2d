//! Name folding and the three kinds of pattern policies use: PowerShell wildcards for
//! command names, anchored regular expressions for values and command lines, and simple
//! globs for host names. Compilation only; no decisions here.

use crate::prelude::*;

use regex::Regex;

/// Case- and dash-insensitive form of a name. Upper-casing first and then lower-casing
/// merges at least every pair that .NET's OrdinalIgnoreCase treats as equal (for example
/// `ſ` and `s`), so a deny rule can never be dodged by a case variant; the Unicode dashes
/// PowerShell accepts become `-`.
pub(crate) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\u{2013}' | '\u{2014}' | '\u{2015}') {
            out.push('-');
        } else if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            for u in c.to_uppercase() {
                out.extend(u.to_lowercase());
            }
        }
    }
    out
}

/// Every name of a list trimmed and folded (principals, labels).
pub(crate) fn fold_all(names: &[String]) -> Vec<String> {
    names.iter().map(|n| fold(n.trim())).collect()
}

/// True when `s` contains PowerShell wildcard characters.
pub(crate) fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A PowerShell wildcard (`*`, `?`, `[abc]`, `[a-z]`) over folded names.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// The pattern as written.
    pub(crate) source: String,
    kind: WildcardKind,
}

#[derive(Debug, Clone)]
enum WildcardKind {
    Exact(String),
    Any,
    /// Only `*` wildcards: the literal pieces between them (at least two), matched
    /// without a regex because this runs for every command against every role.
    Stars(Vec<String>),
    Regex(Regex),
}

/// Matches `text` against literal `parts` separated by `*` (leftmost-first is exact for
/// star-only patterns).
fn star_match(parts: &[String], text: &str) -> bool {
    let (Some((first, rest_parts)), Some(last)) = (parts.split_first(), parts.last()) else {
        return false;
    };
    let Some(mut rest) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let middle = rest_parts.len().saturating_sub(1);
    for mid in rest_parts.iter().take(middle) {
        match rest.find(mid.as_str()) {
            Some(i) => rest = rest.get(i + mid.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.ends_with(last.as_str())
}

// === impl Wildcard ===

impl Wildcard {
    /// Compiles a wildcard; an unbalanced `[` is an error.
    pub(crate) fn new(source: &str) -> Result<Self, String> {
        let folded = fold(source.trim());
        if folded.is_empty() {
            return Err("empty name".into());
        }
        let kind = if folded == "*" {
            WildcardKind::Any
        } else if !has_wildcard(&folded) && !folded.contains('`') {
            WildcardKind::Exact(folded)
        } else if !folded.contains(['?', '[', '`']) {
            WildcardKind::Stars(folded.split('*').map(str::to_string).collect())
        } else {
            let mut re = String::from("^(?:");
            let mut chars = folded.chars();
            while let Some(c) = chars.next() {
                match c {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    '`' => match chars.next() {
                        Some(e) => re.push_str(&regex::escape(&e.to_string())),
                        None => return Err(format!("wildcard '{source}' ends with an escape")),
                    },
                    '[' => {
                        let mut class = String::new();
                        let mut closed = false;
                        for d in chars.by_ref() {
                            if d == ']' {
                                closed = true;
                                break;
                            }
                            if d == '\\' || d == '^' || d == '[' || d == '&' || d == '~' {
                                class.push('\\');
                            }
                            class.push(d);
                        }
                        if !closed || class.is_empty() {
                            return Err(format!("wildcard '{source}' has an unbalanced '['"));
                        }
                        re.push('[');
                        re.push_str(&class);
                        re.push(']');
                    }
                    other => re.push_str(&regex::escape(&other.to_string())),
                }
            }
            re.push_str(")$");
            WildcardKind::Regex(Regex::new(&re).map_err(|e| format!("wildcard '{source}': {e}"))?)
        };
        Ok(Self {
            source: source.to_string(),
            kind,
        })
    }

    /// The wildcard as an anchored regular expression over folded names (for sets of
    /// rules matched in one pass).
    pub(crate) fn regex_source(&self) -> String {
        match &self.kind {
            WildcardKind::Exact(s) => format!("^(?s:{})$", regex::escape(s)),
            WildcardKind::Any => "^(?s:.*)$".to_string(),
            WildcardKind::Stars(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| regex::escape(p)).collect();
                format!("^(?s:{})$", parts.join(".*"))
            }
            WildcardKind::Regex(re) => format!("(?s){}", re.as_str()),
        }
    }

    /// Matches a folded name.
    pub(crate) fn matches(&self, folded: &str) -> bool {
        match &self.kind {
            WildcardKind::Exact(s) => s == folded,
            WildcardKind::Any => true,
            WildcardKind::Stars(parts) => star_match(parts, folded),
            WildcardKind::Regex(re) => re.is_match(folded),
        }
    }

    /// The folded name when this is not a wildcard.
    pub(crate) fn exact(&self) -> Option<&str> {
        match &self.kind {
            WildcardKind::Exact(s) => Some(s),
            _ => None,
        }
    }
}

/// A regular expression that always matches the whole input: compiled as
/// `^(?:<pattern>)$`, case-insensitive unless `case_sensitive`.
#[derive(Debug, Clone)]
pub(crate) struct Anchored {
    /// The pattern as written.
    pub(crate) source: String,
    re: Regex,
}

// === impl Anchored ===

impl Anchored {
    pub(crate) fn new(source: &str) -> Result<Self, String> {
        let re = Regex::new(&format!("(?i)^(?:{source})$"))
            .map_err(|e| format!("pattern '{source}': {e}"))?;
        Ok(Self {
            source: source.to_string(),
            re,
        })
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }
}

/// Case-insensitive glob with `*` and `?` for host and configuration names. Written here
/// rather than taken from `globset` because names have no path separators to respect
/// and this avoids a dependency for twenty lines.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    folded: Vec<char>,
}

// === impl Glob ===

impl Glob {
    pub(crate) fn new(source: &str) -> Self {
        Self {
            folded: fold(source.trim()).chars().collect(),
        }
    }

    /// Matches a name (folded here).
    pub(crate) fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = fold(name).chars().collect();
        glob_match(&self.folded, &text)
    }

    /// Matches a name already folded and split into characters.
    pub(crate) fn matches_chars(&self, folded: &[char]) -> bool {
        glob_match(&self.folded, folded)
    }
}

/// Iterative wildcard match with backtracking to the last `*` (linear in practice).
fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}
