//! Compiled roles: validated, with names folded and patterns compiled, built from the
//! file documents (and `.psrc` imports). Holds the matching primitives a role offers;
//! the walk over an operation lives in `check.rs`.

use crate::prelude::*;

use alloc::collections::BTreeMap;

use super::file::{CommandDoc, DenyDoc, Language, LineDoc, RoleDoc};
use super::pattern::{fold, fold_all, Anchored, Glob, Wildcard};
use super::program::{canonical_pattern, canonical_rule, identify, Mention};
use super::psrc::PsrcImport;

/// A compiled role.
#[derive(Debug)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) source: String,
    users: Vec<String>,
    groups: Vec<String>,
    host_names: Vec<Glob>,
    host_labels: Vec<String>,
    pub(crate) psrp: Option<PsrpRules>,
    pub(crate) cmd: Option<CmdRules>,
    pub(crate) deny: DenyRules,
    /// Arguments naming another machine are refused.
    pub(crate) local_only: bool,
    /// Scripts run without analysis, by content.
    pub(crate) trust: crate::trust::TrustRules,
    /// Ansible modules this role runs; None: any module of the collections it trusts.
    pub(crate) ansible: Option<crate::ansible::AnsibleRules>,
}

/// The PowerShell side of a role.
#[derive(Debug)]
pub(crate) struct PsrpRules {
    pub(crate) language: Language,
    configurations: Vec<Glob>,
    pub(crate) commands: Vec<CommandRule>,
    exact: BTreeMap<String, usize>,
    wild: Vec<usize>,
    external_names: Vec<String>,
    external_paths: Vec<String>,
    external_wild: Vec<Wildcard>,
}

/// A visible cmdlet or function.
#[derive(Debug)]
pub(crate) struct CommandRule {
    pub(crate) name: Wildcard,
    /// `None`: any parameter; `Some`: only these.
    pub(crate) params: Option<Vec<ParamRule>>,
    pub(crate) positional: Option<Vec<String>>,
    /// Pipeline input binds without being judged.
    pub(crate) pipeline_input: bool,
}

/// An allowed parameter with its value constraints.
#[derive(Debug)]
pub(crate) struct ParamRule {
    /// Folded name.
    pub(crate) name: String,
    pub(crate) display: String,
    /// Folded allowed values.
    pub(crate) set: Option<Vec<String>>,
    pub(crate) pattern: Option<Anchored>,
}

/// The cmd-shell side of a role.
#[derive(Debug)]
pub(crate) struct CmdRules {
    pub(crate) lines: Vec<LineRule>,
    pub(crate) allow_metacharacters: bool,
    /// The programs the rules are about (ids), or `None` when a rule may be about any
    /// program (`.*`): an external command in PowerShell whose program is named here
    /// takes only the arguments these rules allow.
    programs: Option<Vec<String>>,
}

// === impl CmdRules ===

impl CmdRules {
    /// True when some rule is about the program `id`.
    pub(crate) fn mentions(&self, id: &str) -> bool {
        self.programs
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|p| p == id))
    }
}

/// A whole-command-line rule.
#[derive(Debug, Clone)]
pub(crate) enum LineRule {
    /// Normalized, folded line.
    Exact(String),
    Pattern(Anchored),
}

/// Deny lists of a role.
#[derive(Debug, Default)]
pub(crate) struct DenyRules {
    pub(crate) commands: Vec<Wildcard>,
    pub(crate) parameters: Vec<(Wildcard, Vec<String>)>,
    pub(crate) cmd: Vec<LineRule>,
}

// === impl DenyRules ===

impl DenyRules {
    pub(crate) fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.parameters.is_empty() && self.cmd.is_empty()
    }
}

/// Collapses runs of blanks outside double quotes and trims: the form exact cmd rules and
/// patterns are matched against.
pub(crate) fn normalize_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut blank = false;
    for c in line.trim().chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && (c == ' ' || c == '\t') {
            blank = true;
            continue;
        }
        if blank {
            out.push(' ');
            blank = false;
        }
        out.push(c);
    }
    out
}

// === impl LineRule ===

impl LineRule {
    pub(crate) fn new(doc: &LineDoc) -> Result<Self, String> {
        Self::compile(doc).map(|(rule, _)| rule)
    }

    /// The rule in canonical program form (`C:\Windows\System32\net.exe user` is
    /// `net user`, as every line is), with the programs it is about.
    pub(crate) fn compile(doc: &LineDoc) -> Result<(Self, Mention), String> {
        match doc {
            LineDoc::Exact(s) => {
                if normalize_line(s).is_empty() {
                    return Err("empty command line".into());
                }
                let (line, mention) = canonical_rule(s);
                Ok((LineRule::Exact(fold(&line)), mention))
            }
            LineDoc::Pattern(p) => {
                // Checked as written first, so that errors quote the author's pattern.
                Anchored::new(&p.pattern)?;
                let (canonical, mention) = canonical_pattern(&p.pattern);
                let mut anchored = Anchored::new(&canonical)?;
                anchored.source.clone_from(&p.pattern);
                Ok((LineRule::Pattern(anchored), mention))
            }
        }
    }

    /// Matches a canonical line.
    pub(crate) fn matches(&self, normalized: &str, folded: &str) -> bool {
        match self {
            LineRule::Exact(s) => s == folded,
            LineRule::Pattern(p) => p.is_match(normalized),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            LineRule::Exact(s) => format!("'{s}'"),
            LineRule::Pattern(p) => format!("pattern '{}'", p.source),
        }
    }
}

/// The program a name starts (its identity: `net1.exe` is `net`), or when it cannot be
/// identified the leaf of the path without a `.exe` suffix, folded.
pub(crate) fn program_leaf(name: &str) -> String {
    if let Ok(p) = identify(name.trim(), name) {
        return p.id;
    }
    let folded = fold(name);
    let leaf = folded.rsplit(['\\', '/']).next().unwrap_or(&folded);
    leaf.strip_suffix(".exe").unwrap_or(leaf).to_string()
}

/// True for names that are file system paths rather than command names.
pub(crate) fn is_path(name: &str) -> bool {
    name.contains(['\\', '/', ':'])
}

// === impl PsrpRules ===

impl PsrpRules {
    /// The visible cmdlet or function rule for a folded command name.
    pub(crate) fn command(&self, folded: &str) -> Option<&CommandRule> {
        if let Some(&i) = self.exact.get(folded) {
            return self.commands.get(i);
        }
        self.wild
            .iter()
            .filter_map(|&i| self.commands.get(i))
            .find(|r| r.name.matches(folded))
    }

    /// True when an external command (name or path as invoked) is visible.
    pub(crate) fn external(&self, u: &super::analyse::CommandUse) -> bool {
        let [_, folded, leaf] = &u.deny_names;
        if self.external_wild.iter().any(|w| w.matches(folded)) {
            return true;
        }
        if is_path(&u.written) {
            let bare = folded.strip_suffix(".exe").unwrap_or(folded);
            return self
                .external_paths
                .iter()
                .any(|p| p.strip_suffix(".exe").unwrap_or(p) == bare);
        }
        self.external_names.contains(leaf)
    }

    pub(crate) fn configuration_allowed(&self, configuration: &str) -> bool {
        self.configurations.is_empty()
            || self.configurations.iter().any(|g| g.matches(configuration))
    }

    pub(crate) fn has_wildcard_all(&self) -> bool {
        self.commands.iter().any(|c| c.name.source.trim() == "*")
    }
}

// === impl Role ===

impl Role {
    /// Compiles a role document. `psrc` is the imported capability file when the role
    /// names one.
    pub(crate) fn compile(
        doc: RoleDoc,
        source: &str,
        psrc: Option<PsrcImport>,
    ) -> Result<Self, String> {
        let name = doc.name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!("invalid role name '{}'", doc.name));
        }
        let mut psrp_doc = doc.psrp;
        if let Some(import) = psrc {
            let p = psrp_doc.get_or_insert_with(Default::default);
            p.visible_cmdlets.extend(import.cmdlets);
            p.visible_functions.extend(import.functions);
            p.visible_external_commands.extend(import.external);
        }
        let psrp = match psrp_doc {
            None => None,
            Some(p) => {
                let mut commands = Vec::new();
                for c in p.visible_cmdlets.into_iter().chain(p.visible_functions) {
                    commands.push(command_rule(c)?);
                }
                let mut exact = BTreeMap::new();
                let mut wild = Vec::new();
                for (i, c) in commands.iter().enumerate() {
                    match c.name.exact() {
                        // First rule for a name wins; lint reports duplicates.
                        Some(e) => {
                            exact.entry(e.to_string()).or_insert(i);
                        }
                        None => wild.push(i),
                    }
                }
                let mut external_names = Vec::new();
                let mut external_paths = Vec::new();
                let mut external_wild = Vec::new();
                for e in &p.visible_external_commands {
                    if e.trim().is_empty() {
                        return Err("empty external command".into());
                    }
                    if e.contains(['*', '?']) {
                        external_wild.push(Wildcard::new(e)?);
                    } else if is_path(e) {
                        external_paths.push(fold(e.trim()));
                        external_names.push(program_leaf(e.trim()));
                    } else {
                        external_names.push(program_leaf(e.trim()));
                    }
                }
                Some(PsrpRules {
                    language: p.language,
                    configurations: p.configurations.iter().map(|c| Glob::new(c)).collect(),
                    commands,
                    exact,
                    wild,
                    external_names,
                    external_paths,
                    external_wild,
                })
            }
        };
        let cmd = match doc.cmd {
            None => None,
            Some(c) => {
                let mut lines = Vec::new();
                let mut programs = Some(Vec::new());
                for doc in &c.commands {
                    let (rule, mention) = LineRule::compile(doc)?;
                    lines.push(rule);
                    match (mention, programs.as_mut()) {
                        (Mention::Programs(ids), Some(all)) => all.extend(ids),
                        (Mention::Any, _) => programs = None,
                        (_, None) => {}
                    }
                }
                Some(CmdRules {
                    lines,
                    allow_metacharacters: c.allow_metacharacters,
                    programs,
                })
            }
        };
        let ansible = match &doc.ansible {
            Some(a) => Some(crate::ansible::AnsibleRules::compile(a)?),
            None => None,
        };
        let trust = match &doc.trust {
            Some(t) => crate::trust::TrustRules::compile(t)?,
            None => Default::default(),
        };
        Ok(Self {
            name,
            source: source.to_string(),
            users: fold_all(&doc.principals.users),
            groups: fold_all(&doc.principals.groups),
            host_names: doc.hosts.names.iter().map(|h| Glob::new(h)).collect(),
            host_labels: fold_all(&doc.hosts.labels),
            psrp,
            cmd,
            deny: deny_rules(doc.deny)?,
            local_only: doc.local_only,
            trust,
            ansible,
        })
    }

    /// True when the role names this user or one of their groups (all folded).
    pub(crate) fn has_principal(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || groups.iter().any(|g| self.groups.contains(g))
    }

    /// True when the role covers the host (by name glob or folded label).
    pub(crate) fn has_host(&self, name: &[char], labels: &[String]) -> bool {
        self.host_names.iter().any(|g| g.matches_chars(name))
            || labels.iter().any(|l| self.host_labels.contains(l))
    }

    pub(crate) fn is_empty(&self) -> bool {
        (self.users.is_empty() && self.groups.is_empty())
            || (self.host_names.is_empty() && self.host_labels.is_empty())
            || (self.psrp.is_none() && self.cmd.is_none())
    }
}

/// A rule's command name without a module qualifier (`DnsServer\Get-DnsServerZone`):
/// invoked names are resolved the same way, so the qualifier cannot be matched.
fn rule_name(name: &str) -> Result<Wildcard, String> {
    let leaf = name.trim().rsplit('\\').next().unwrap_or(name);
    Wildcard::new(leaf)
}

fn command_rule(doc: CommandDoc) -> Result<CommandRule, String> {
    match doc {
        CommandDoc::Name(n) => Ok(CommandRule {
            name: rule_name(&n)?,
            params: None,
            positional: None,
            pipeline_input: false,
        }),
        CommandDoc::Rule(r) => {
            let params = match r.parameters {
                None => None,
                Some(list) => {
                    let mut out = Vec::new();
                    for p in list {
                        let name = fold(p.name.trim().trim_start_matches('-'));
                        if name.is_empty() || super::pattern::has_wildcard(&name) {
                            return Err(format!(
                                "invalid parameter name '{}' on '{}'",
                                p.name, r.name
                            ));
                        }
                        out.push(ParamRule {
                            name,
                            display: p.name.clone(),
                            set: p.validate_set.map(|s| s.iter().map(|v| fold(v)).collect()),
                            pattern: p
                                .validate_pattern
                                .as_deref()
                                .map(Anchored::new)
                                .transpose()?,
                        });
                    }
                    Some(out)
                }
            };
            let positional = r.positional.map(|v| {
                v.iter()
                    .map(|p| fold(p.trim().trim_start_matches('-')))
                    .collect()
            });
            Ok(CommandRule {
                name: rule_name(&r.name)?,
                params,
                positional,
                pipeline_input: r.pipeline_input,
            })
        }
    }
}

fn deny_rules(doc: DenyDoc) -> Result<DenyRules, String> {
    Ok(DenyRules {
        commands: doc
            .cmdlets
            .iter()
            .map(|c| Wildcard::new(c))
            .collect::<Result<_, _>>()?,
        parameters: doc
            .parameters
            .iter()
            .map(|p| {
                Ok((
                    Wildcard::new(&p.command)?,
                    p.names
                        .iter()
                        .map(|n| fold(n.trim().trim_start_matches('-')))
                        .collect(),
                ))
            })
            .collect::<Result<_, String>>()?,
        cmd: doc
            .cmd
            .iter()
            .map(LineRule::new)
            .collect::<Result<_, _>>()?,
    })
}
