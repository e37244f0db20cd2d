//! Lint for breadth, not only pattern text: allow patterns open at an end in effect, roles
//! that grant everything (or every host) to a broad group, code-running commands visible
//! in a role whose language is not `full`, and deny rules that a permissive role of the
//! same people makes meaningless.
//!
//! When is a deny rule meaningless? The engine checks the deny rules of every applicable
//! role on every request, and denies unanalysable code whenever any applicable role has
//! deny rules, so another role's `language = "full"` or `visible_cmdlets = ["*"]` does
//! not by itself void a deny. It is void where the request reaches the host on a path the
//! deny check does not see:
//! - a cmd line with a live metacharacter is judged as one whole line: deny.cmd patterns
//!   (anchored to whole lines) do not match `hostname & net user ...`, and PowerShell
//!   started from such a line (`hostname & powershell -c Stop-Computer`) is not unwrapped,
//!   so deny.cmdlets and deny.parameters are not checked on it. A role that allows
//!   metacharacters and any line lets both through.
//! - deny.cmd rules apply to cmd lines only: a program typed in PowerShell (`net user`) is
//!   not matched against them, so a role that makes every program visible in PowerShell
//!   lets the denied line run there.
//!
//! Both are gaps of today's engine (issue #11, item 3): when programs are judged by what
//! starts, the corresponding finding should go.

use crate::prelude::*;

use regex_syntax::hir::{Class, Hir, HirKind};

use super::{finding, LintFinding, Severity};
use crate::file::{CommandDoc, Language, LineDoc, RoleDoc};
use crate::pattern::{fold, fold_all, Glob, Wildcard};
use crate::psrc::PsrcImport;

/// Group names that mean "nearly everyone" (folded).
const BROAD_GROUPS: &[&str] = &[
    "*",
    "everyone",
    "users",
    "all",
    "all users",
    "authenticated users",
    "nt authority\\authenticated users",
    "builtin\\users",
    "domain users",
    "domain computers",
    "interactive",
    "staff",
    "employees",
];

/// Cmdlets that run code or programs given to them as data, or redefine what a command
/// name runs. `New-Object` only through `-ComObject`.
const CODE_RUNNING_CMDLETS: &[&str] = &[
    "Invoke-Expression",
    "Invoke-Command",
    "Add-Type",
    "Start-Process",
    "Start-Job",
    "Start-ThreadJob",
    "Register-ScheduledTask",
    "Set-ScheduledTask",
    "Register-ScheduledJob",
    "Invoke-WmiMethod",
    "Invoke-CimMethod",
    "Set-WmiInstance",
    "New-CimInstance",
    "New-Object",
    "New-Service",
    "Invoke-Item",
    "Invoke-History",
    "Set-Alias",
    "New-Alias",
    "Import-Alias",
    "New-Item",
    "Set-Item",
    "New-Module",
    "Import-Module",
    "Import-PSSession",
    "Register-ObjectEvent",
    "Register-EngineEvent",
    "Register-WmiEvent",
    "Set-PSBreakpoint",
];

/// Why a code-running cmdlet is listed, for the ones that are not obvious.
fn code_note(cmdlet: &str) -> &'static str {
    match cmdlet {
        "New-Item" | "Set-Item" => " (function: and alias: drives)",
        "New-Object" => " (-ComObject)",
        "New-CimInstance" | "Set-WmiInstance" => " (event consumers)",
        "Register-ObjectEvent"
        | "Register-EngineEvent"
        | "Register-WmiEvent"
        | "Set-PSBreakpoint" => " (-Action)",
        _ => "",
    }
}

/// Programs that run other code or programs (leaf names, folded).
const CODE_RUNNING_PROGRAMS: &[&str] = &[
    "powershell",
    "pwsh",
    "cmd",
    "wscript",
    "cscript",
    "mshta",
    "rundll32",
    "regsvr32",
    "wmic",
    "schtasks",
    "at",
    "msiexec",
    "certutil",
    "bitsadmin",
    "forfiles",
    "msbuild",
    "installutil",
    "regasm",
    "regsvcs",
    "runas",
];

/// A visible command as the role (and its `.psrc`) writes it.
#[derive(Debug)]
struct Visible {
    name: String,
    /// `None`: every parameter; `Some`: only these (folded).
    params: Option<Vec<String>>,
}

/// What the breadth checks need of one role, read from its document.
#[derive(Debug)]
pub(super) struct RoleSummary {
    name: String,
    file: String,
    users: Vec<String>,
    groups: Vec<String>,
    host_names: Vec<String>,
    host_labels: Vec<String>,
    language: Option<Language>,
    visible: Vec<Visible>,
    externals: Vec<String>,
    /// Allow patterns of cmd lines, when the role has a cmd block.
    cmd_patterns: Vec<String>,
    allow_metacharacters: bool,
    deny_cmdlets: Vec<String>,
    deny_parameters: usize,
    deny_cmd: Vec<String>,
}

// === impl RoleSummary ===

impl RoleSummary {
    pub(super) fn new(
        doc: &RoleDoc,
        imported: &[CommandDoc],
        psrc: Option<&PsrcImport>,
        file: &str,
    ) -> Self {
        let own = doc
            .psrp
            .iter()
            .flat_map(|p| p.visible_cmdlets.iter().chain(&p.visible_functions));
        let visible = own
            .chain(imported)
            .map(|c| match c {
                CommandDoc::Name(n) => Visible {
                    name: n.trim().to_string(),
                    params: None,
                },
                CommandDoc::Rule(r) => Visible {
                    name: r.name.trim().to_string(),
                    params: r.parameters.as_ref().map(|ps| {
                        ps.iter()
                            .map(|p| fold(p.name.trim().trim_start_matches('-')))
                            .collect()
                    }),
                },
            })
            .collect();
        let externals = doc
            .psrp
            .iter()
            .flat_map(|p| p.visible_external_commands.iter())
            .chain(psrc.iter().flat_map(|i| i.external.iter()))
            .map(|e| e.trim().to_string())
            .collect();
        let cmd_patterns = doc
            .cmd
            .iter()
            .flat_map(|c| c.commands.iter())
            .filter_map(|l| match l {
                LineDoc::Pattern(p) => Some(p.pattern.clone()),
                LineDoc::Exact(_) => None,
            })
            .collect();
        let deny_cmd = doc
            .deny
            .cmd
            .iter()
            .map(|l| match l {
                LineDoc::Pattern(p) => format!("pattern '{}'", p.pattern),
                LineDoc::Exact(s) => format!("'{s}'"),
            })
            .collect();
        Self {
            name: doc.name.clone(),
            file: file.to_string(),
            users: fold_all(&doc.principals.users),
            groups: fold_all(&doc.principals.groups),
            host_names: doc
                .hosts
                .names
                .iter()
                .map(|h| h.trim().to_string())
                .collect(),
            host_labels: fold_all(&doc.hosts.labels),
            language: doc
                .psrp
                .as_ref()
                .map(|p| p.language)
                .or(psrc.map(|_| Language::NoScripts)),
            visible,
            externals,
            cmd_patterns,
            allow_metacharacters: doc.cmd.as_ref().is_some_and(|c| c.allow_metacharacters),
            deny_cmdlets: doc.deny.cmdlets.clone(),
            deny_parameters: doc.deny.parameters.len(),
            deny_cmd,
        }
    }

    fn warn(&self, out: &mut Vec<LintFinding>, message: String) {
        out.push(finding(
            Severity::Warning,
            &self.file,
            Some(&self.name),
            message,
        ));
    }

    fn has_deny(&self) -> bool {
        !self.deny_cmdlets.is_empty() || self.deny_parameters > 0 || !self.deny_cmd.is_empty()
    }

    /// Every program visible in PowerShell (`*`, or a wildcard without a directory).
    fn every_program(&self) -> Option<&str> {
        self.externals
            .iter()
            .find(|e| e.as_str() == "*" || e.as_str() == "*.exe")
            .map(String::as_str)
    }

    /// A cmd allow pattern that accepts any line, or any text at one end.
    fn open_cmd_pattern(&self) -> Option<&str> {
        self.cmd_patterns
            .iter()
            .find(|p| matches_everything(p) || open_side(p).is_some())
            .map(String::as_str)
    }

    fn denied_here(&self, cmdlet: &str) -> bool {
        let folded = fold(cmdlet);
        self.deny_cmdlets
            .iter()
            .filter_map(|d| Wildcard::new(d).ok())
            .any(|w| w.matches(&folded))
    }

    fn shares_principal(&self, other: &RoleSummary) -> Option<String> {
        if let Some(u) = self.users.iter().find(|u| other.users.contains(u)) {
            return Some(format!("user '{u}'"));
        }
        self.groups
            .iter()
            .find(|g| other.groups.contains(g))
            .map(|g| format!("group '{g}'"))
    }

    /// True when some host is certainly covered by both roles (a shared label, a `*`
    /// name glob, or name globs that match each other's text).
    fn shares_host(&self, other: &RoleSummary) -> bool {
        let all = |r: &RoleSummary| r.host_names.iter().any(|n| n == "*");
        let some = |r: &RoleSummary| !r.host_names.is_empty() || !r.host_labels.is_empty();
        if (all(self) && some(other)) || (all(other) && some(self)) {
            return true;
        }
        if self
            .host_labels
            .iter()
            .any(|l| other.host_labels.contains(l))
        {
            return true;
        }
        self.host_names.iter().any(|a| {
            other
                .host_names
                .iter()
                .any(|b| Glob::new(a).matches(b) || Glob::new(b).matches(a))
        })
    }
}

/// Printable ASCII characters a class accepts.
fn printable_in(class: &Class) -> usize {
    (0x20u8..0x7f)
        .filter(|b| match class {
            Class::Unicode(u) => u
                .ranges()
                .iter()
                .any(|r| r.start() <= char::from(*b) && char::from(*b) <= r.end()),
            Class::Bytes(by) => by.ranges().iter().any(|r| r.start() <= *b && *b <= r.end()),
        })
        .count()
}

/// A class (or group of classes) that accepts nearly any text: `.`, `[\s\S]`, `\S`,
/// `[^&|]`. `[A-Za-z0-9_.-]` is not broad.
fn is_broad(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(c) => printable_in(c) >= 80,
        HirKind::Capture(c) => is_broad(&c.sub),
        HirKind::Alternation(branches) => branches.iter().any(is_broad),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Start,
    End,
}

/// True when the pattern accepts any text at that end.
fn open_at(hir: &Hir, side: Side) -> bool {
    match hir.kind() {
        HirKind::Concat(parts) => {
            let mut iter: Box<dyn Iterator<Item = &Hir>> = match side {
                Side::Start => Box::new(parts.iter()),
                Side::End => Box::new(parts.iter().rev()),
            };
            iter.find(|p| !matches!(p.kind(), HirKind::Look(_) | HirKind::Empty))
                .is_some_and(|p| open_at(p, side))
        }
        HirKind::Alternation(branches) => branches.iter().any(|b| open_at(b, side)),
        HirKind::Capture(c) => open_at(&c.sub, side),
        HirKind::Repetition(r) => (r.max.is_none() && is_broad(&r.sub)) || open_at(&r.sub, side),
        _ => false,
    }
}

fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(pattern)
        .ok()
}

/// The pattern is nothing but a broad repetition (`.*`, `.+`, `[\s\S]*`): it allows
/// everything, on purpose.
pub(super) fn matches_everything(pattern: &str) -> bool {
    fn all(hir: &Hir) -> bool {
        match hir.kind() {
            HirKind::Capture(c) => all(&c.sub),
            HirKind::Repetition(r) => r.min <= 1 && r.max.is_none() && is_broad(&r.sub),
            _ => false,
        }
    }
    parse(pattern).is_some_and(|h| all(&h))
}

/// Which end of an allow pattern accepts any text, described for the message.
pub(super) fn open_side(pattern: &str) -> Option<&'static str> {
    let hir = parse(pattern)?;
    let alternation = matches!(hir.kind(), HirKind::Alternation(_));
    match (open_at(&hir, Side::Start), open_at(&hir, Side::End)) {
        (true, true) if alternation => Some("a branch of the alternation accepts any text"),
        (true, true) => Some("it accepts any text before and after"),
        (true, false) => Some("it accepts any text before the intended one"),
        (false, true) => Some("it accepts any text appended to the intended one"),
        (false, false) => None,
    }
}

/// Checks of one role on its own.
pub(super) fn lint_role(role: &RoleSummary, out: &mut Vec<LintFinding>) {
    grants_everything(role, out);
    code_running(role, out);
}

fn grants_everything(role: &RoleSummary, out: &mut Vec<LintFinding>) {
    let Some(group) = role
        .groups
        .iter()
        .find(|g| BROAD_GROUPS.contains(&g.as_str()))
    else {
        return;
    };
    let mut what = Vec::new();
    if role.visible.iter().any(|v| v.name == "*") {
        what.push("every cmdlet (visible_cmdlets '*')".to_string());
    }
    if let Some(e) = role.every_program() {
        what.push(format!("every program (visible_external_commands '{e}')"));
    }
    if let Some(p) = role.cmd_patterns.iter().find(|p| matches_everything(p)) {
        what.push(format!("every cmd line (pattern '{p}')"));
    }
    if role.host_names.iter().any(|h| h == "*") {
        what.push("every host (hosts.names '*')".to_string());
    }
    if !what.is_empty() {
        role.warn(
            out,
            format!(
                "role grants {} to the broad group '{group}'",
                what.join(" and ")
            ),
        );
    }
}

fn code_running(role: &RoleSummary, out: &mut Vec<LintFinding>) {
    let Some(language) = role.language else {
        return;
    };
    if language == Language::Full {
        return;
    }
    let mut found = Vec::new();
    for &cmdlet in CODE_RUNNING_CMDLETS {
        if role.denied_here(cmdlet) {
            continue;
        }
        let folded = fold(cmdlet);
        let rule = role.visible.iter().find(|v| {
            let leaf = v.name.rsplit('\\').next().unwrap_or(&v.name);
            Wildcard::new(leaf).is_ok_and(|w| w.matches(&folded))
        });
        let Some(rule) = rule else { continue };
        let open = match (&rule.params, cmdlet) {
            (None, _) => true,
            (Some(params), "New-Object") => {
                params.iter().any(|p| "comobject".starts_with(p.as_str()))
            }
            // A parameter list with value rules is the role author's own judgement.
            (Some(_), _) => false,
        };
        if open {
            let through = if fold(&rule.name) == folded {
                String::new()
            } else {
                format!(" through '{}'", rule.name)
            };
            found.push(format!("{cmdlet}{}{through}", code_note(cmdlet)));
        }
    }
    for e in &role.externals {
        let leaf = fold(e.rsplit(['\\', '/']).next().unwrap_or(e));
        let leaf = leaf.strip_suffix(".exe").unwrap_or(&leaf);
        if leaf == "*" {
            found.push(format!("every program ('{e}')"));
        } else if CODE_RUNNING_PROGRAMS.contains(&leaf) {
            found.push(format!("program '{e}'"));
        }
    }
    if !found.is_empty() {
        let language = match language {
            Language::NoScripts => "no_scripts",
            Language::Restricted => "restricted",
            Language::Full => "full",
        };
        role.warn(
            out,
            format!(
                "code-running commands are visible in a '{language}' role: {}; they run code or programs passed to them as data, which the role's language does not limit",
                found.join(", ")
            ),
        );
    }
}

/// Deny rules of one role that a permissive role applying to the same people and hosts
/// makes meaningless (see the module documentation for when that really is so).
pub(super) fn lint_pairs(roles: &[RoleSummary], out: &mut Vec<LintFinding>) {
    for denier in roles.iter().filter(|r| r.has_deny()) {
        for permissive in roles.iter().filter(|r| !core::ptr::eq(*r, denier)) {
            let Some(shared) = denier.shares_principal(permissive) else {
                continue;
            };
            if !denier.shares_host(permissive) {
                continue;
            }
            let p = &permissive.name;
            if permissive.allow_metacharacters {
                if let Some(pattern) = permissive.open_cmd_pattern() {
                    if !denier.deny_cmd.is_empty() {
                        denier.warn(out, format!(
                            "deny.cmd {} is meaningless for {shared} in cmd shells: role '{p}' allows metacharacters and pattern '{pattern}', and a line with a metacharacter is judged whole, so `hostname & <denied line>` matches no deny pattern",
                            denier.deny_cmd.join(", ")
                        ));
                    }
                    if !denier.deny_cmdlets.is_empty() || denier.deny_parameters > 0 {
                        denier.warn(out, format!(
                            "deny.cmdlets and deny.parameters are meaningless for {shared} in cmd shells: role '{p}' allows metacharacters and pattern '{pattern}', and PowerShell started from a line with a metacharacter (`hostname & powershell -c ...`) is not analysed"
                        ));
                    }
                }
            }
            if !denier.deny_cmd.is_empty() {
                if let Some(e) = permissive.every_program() {
                    denier.warn(out, format!(
                        "deny.cmd {} is meaningless for {shared} in PowerShell: role '{p}' makes every program visible ('{e}') and deny.cmd rules are not applied to programs started from PowerShell",
                        denier.deny_cmd.join(", ")
                    ));
                }
            }
        }
    }
}
