//! `hopgate policy lint`: every mistake in a policy directory, not just the first one
//! (invalid or effectively unanchored patterns, overlapping allow and deny, empty roles,
//! unenforced `.psrc` keys), and breadth: roles that grant everything to a broad group,
//! code-running commands visible in a role whose language is not `full`, and deny rules
//! that a permissive role of the same people makes meaningless (`breadth.rs`). Unknown
//! cmdlet names are fine: the gateway cannot know every module on every host.

use crate::prelude::*;

mod breadth;
#[cfg(test)]
mod tests;

use alloc::collections::BTreeMap;

use serde::Serialize;

use super::engine::PolicySource;
use super::file::{CommandDoc, FileDoc, Language, LineDoc, RoleDoc};
use super::pattern::Anchored;
use super::psrc::import_psrc;
use super::role::{LineRule, Role};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The directory will not load.
    Error,
    /// It loads, but probably does not mean what the author thinks.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: String,
    /// The role, when the finding is about one.
    pub role: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn finding(severity: Severity, file: &str, role: Option<&str>, message: String) -> LintFinding {
    LintFinding {
        severity,
        file: file.to_string(),
        role: role.map(str::to_string),
        message,
    }
}

/// Lints in-memory sources: every mistake, not only the first.
pub fn lint_sources(sources: &[PolicySource]) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let psrcs: BTreeMap<&str, &PolicySource> = sources
        .iter()
        .filter(|s| s.path.to_ascii_lowercase().ends_with(".psrc"))
        .map(|s| (s.path.rsplit(['/', '\\']).next().unwrap_or(&s.path), s))
        .collect();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut summaries: Vec<breadth::RoleSummary> = Vec::new();
    for source in sources
        .iter()
        .filter(|s| s.path.to_ascii_lowercase().ends_with(".toml"))
    {
        let file = source.path.as_str();
        let doc: FileDoc = match toml::from_str(&source.text) {
            Ok(d) => d,
            Err(e) => {
                out.push(finding(
                    Severity::Error,
                    file,
                    None,
                    e.to_string().trim().to_string(),
                ));
                continue;
            }
        };
        if doc.role.is_empty() {
            out.push(finding(
                Severity::Warning,
                file,
                None,
                "file defines no roles".into(),
            ));
        }
        for role_doc in doc.role {
            let name = role_doc.name.clone();
            let r = Some(name.as_str());
            if let Some(first) = seen.insert(name.to_ascii_lowercase(), file.to_string()) {
                out.push(finding(
                    Severity::Error,
                    file,
                    r,
                    format!("role name also used in {first}"),
                ));
            }
            let psrc = match &role_doc.psrc {
                None => None,
                Some(p) => match psrcs.get(p.rsplit(['/', '\\']).next().unwrap_or(p)) {
                    None => {
                        out.push(finding(
                            Severity::Error,
                            file,
                            r,
                            format!("psrc file '{p}' not found"),
                        ));
                        continue;
                    }
                    Some(src) => match import_psrc(&src.text) {
                        Ok(import) => {
                            for w in &import.warnings {
                                out.push(finding(Severity::Warning, &src.path, r, w.clone()));
                            }
                            Some(import)
                        }
                        Err(e) => {
                            out.push(finding(Severity::Error, &src.path, r, e));
                            continue;
                        }
                    },
                },
            };
            let imported: Vec<CommandDoc> = psrc
                .iter()
                .flat_map(|i| i.cmdlets.iter().chain(&i.functions))
                .cloned()
                .collect();
            lint_patterns(&role_doc, &imported, file, &mut out);
            let summary = breadth::RoleSummary::new(&role_doc, &imported, psrc.as_ref(), file);
            breadth::lint_role(&summary, &mut out);
            summaries.push(summary);
            match Role::compile(role_doc, file, psrc) {
                Ok(role) => lint_role(&role, file, &mut out),
                Err(e) => out.push(finding(Severity::Error, file, r, e)),
            }
        }
    }
    breadth::lint_pairs(&summaries, &mut out);
    out
}

/// Invalid patterns anywhere, and allow patterns that are open at an end in effect (`.*`,
/// `.+`, `[\s\S]*`, `\S+` first or last, or an alternation with such a branch): they
/// accept text added to an allowed command. Deny patterns may do so on purpose.
fn lint_patterns(doc: &RoleDoc, imported: &[CommandDoc], file: &str, out: &mut Vec<LintFinding>) {
    let r = Some(doc.name.as_str());
    let line_pattern = |l: &LineDoc| match l {
        LineDoc::Pattern(p) => Some(p.pattern.clone()),
        LineDoc::Exact(_) => None,
    };
    let deny: Vec<String> = doc.deny.cmd.iter().filter_map(line_pattern).collect();
    let mut allow: Vec<String> = doc
        .cmd
        .iter()
        .flat_map(|c| c.commands.iter().filter_map(line_pattern))
        .collect();
    let own = doc
        .psrp
        .iter()
        .flat_map(|p| p.visible_cmdlets.iter().chain(&p.visible_functions));
    for c in own.chain(imported) {
        if let CommandDoc::Rule(rule) = c {
            for param in rule.parameters.iter().flatten() {
                allow.extend(param.validate_pattern.clone());
            }
        }
    }
    for (p, is_allow) in deny
        .into_iter()
        .map(|p| (p, false))
        .chain(allow.into_iter().map(|p| (p, true)))
    {
        if let Err(e) = Anchored::new(&p) {
            out.push(finding(Severity::Error, file, r, format!("invalid {e}")));
            continue;
        }
        if !is_allow || breadth::matches_everything(&p) {
            // Deny patterns may be open on purpose (`net user.*`); a pattern that is
            // nothing but `.*` grants everything and is judged by the breadth checks.
            continue;
        }
        if let Some(side) = breadth::open_side(&p) {
            out.push(finding(
                Severity::Warning,
                file,
                r,
                format!("pattern '{p}' is effectively unanchored: {side}"),
            ));
        }
    }
}

fn lint_role(role: &Role, file: &str, out: &mut Vec<LintFinding>) {
    let r = Some(role.name.as_str());
    if role.is_empty() {
        out.push(finding(
            Severity::Warning,
            file,
            r,
            "role is empty (no principals, no hosts or no psrp/cmd grant)".into(),
        ));
    }
    if let Some(p) = &role.psrp {
        for c in &p.commands {
            let constrained: Vec<&str> = c
                .params
                .iter()
                .flatten()
                .filter(|p| p.set.is_some() || p.pattern.is_some())
                .map(|p| p.display.as_str())
                .collect();
            if c.pipeline_input && !constrained.is_empty() {
                out.push(finding(
                    Severity::Warning,
                    file,
                    r,
                    format!(
                        "'{}' has pipeline_input = true: objects the gateway cannot see reach \
                         it unjudged, so the rules on {} hold only for values given by name, \
                         position or as literals",
                        c.name.source,
                        constrained.join(", ")
                    ),
                ));
            }
            if let Some(w) = role
                .deny
                .commands
                .iter()
                .find(|w| w.matches(c.name.exact().unwrap_or(&c.name.source)))
            {
                out.push(finding(
                    Severity::Warning,
                    file,
                    r,
                    format!(
                        "'{}' is both visible and denied (deny.cmdlets '{}'); deny wins",
                        c.name.source, w.source
                    ),
                ));
            }
        }
        if p.language == Language::Full && !p.has_wildcard_all() {
            out.push(finding(
                Severity::Warning,
                file,
                r,
                "language 'full' lets unanalysable scripts run any command; the visible list does not limit them".into(),
            ));
        }
        if p.language == Language::Full && !role.deny.is_empty() {
            out.push(finding(Severity::Warning, file, r, "deny rules turn every unanalysable script into a denial, which defeats language 'full'".into()));
        }
    }
    if let Some(cmd) = &role.cmd {
        for l in &cmd.lines {
            if let LineRule::Exact(s) = l {
                if let Some(d) = role.deny.cmd.iter().find(|d| d.matches(s, s)) {
                    out.push(finding(
                        Severity::Warning,
                        file,
                        r,
                        format!(
                            "cmd line '{s}' is both allowed and denied ({}); deny wins",
                            d.describe()
                        ),
                    ));
                }
            }
        }
        if cmd.lines.is_empty() {
            out.push(finding(
                Severity::Warning,
                file,
                r,
                "cmd block allows no command lines".into(),
            ));
        }
    }
}
