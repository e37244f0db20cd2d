//! The shape of a policy file (`policies/*.toml`), mirrored with serde and
//! `deny_unknown_fields` so that a misspelt key is an error, never a silent no-op.
//! Validation and compilation happen in `role.rs`.

use crate::prelude::*;

use serde::Deserialize;

/// One policy file: any number of `[[role]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDoc {
    #[serde(default)]
    pub(crate) role: Vec<RoleDoc>,
    /// Parameter metadata for commands hopgate does not ship (site functions, other
    /// modules): `[[command]]` tables.
    #[serde(default)]
    pub(crate) command: Vec<CommandMetaDoc>,
}

/// A command's parameters as a policy file gives them (one parameter set).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandMetaDoc {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    #[serde(default)]
    pub(crate) parameters: Vec<ParamMetaDoc>,
}

/// One parameter of a `[[command]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParamMetaDoc {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    /// Takes no value unless written `-Name:value`.
    #[serde(default)]
    pub(crate) switch: bool,
    /// 0-based position; absent: named only.
    #[serde(default)]
    pub(crate) position: Option<u32>,
    /// Pipeline input: "value", "property" or "both".
    #[serde(default)]
    pub(crate) pipeline: Option<String>,
    /// Takes the remaining positional arguments.
    #[serde(default)]
    pub(crate) remaining: bool,
}

/// A role as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleDoc {
    pub(crate) name: String,
    /// Free text for people; not used by the engine.
    #[serde(default, rename = "description")]
    pub(crate) _description: Option<String>,
    #[serde(default)]
    pub(crate) principals: PrincipalsDoc,
    #[serde(default)]
    pub(crate) hosts: HostsDoc,
    #[serde(default)]
    pub(crate) psrp: Option<PsrpDoc>,
    /// A JEA role capability file (same directory) whose Visible* entries are added to
    /// the `psrp` block.
    #[serde(default)]
    pub(crate) psrc: Option<String>,
    /// Deny every argument that names another machine (UNC paths, ComputerName,
    /// CimSession, Session, ...): the role's commands act on this host only.
    #[serde(default)]
    pub(crate) local_only: bool,
    #[serde(default)]
    pub(crate) cmd: Option<CmdDoc>,
    #[serde(default)]
    pub(crate) deny: DenyDoc,
    /// Scripts this role runs without analysing them, by content.
    #[serde(default)]
    pub(crate) trust: Option<TrustDoc>,
    /// Ansible modules (from trusted collections) and their arguments.
    #[serde(default)]
    pub(crate) ansible: Option<AnsibleDoc>,
}

/// `[role.ansible]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnsibleDoc {
    #[serde(default)]
    pub(crate) modules: Vec<ModuleDoc>,
    /// ansible-core exec scripts run as actions of their own (file transfers,
    /// temporary directories): `winrm_put_file.ps1`, `psrp_put_file.ps1`, ...
    #[serde(default)]
    pub(crate) actions: Vec<String>,
}

/// A module: its name (any arguments), or its name and the arguments it may take.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ModuleDoc {
    Name(String),
    Rule {
        name: String,
        #[serde(default)]
        args: alloc::collections::BTreeMap<String, ModuleArgDoc>,
    },
}

/// One argument of an allowed module.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModuleArgDoc {
    /// The values it may take (case-insensitive); absent: any value.
    #[serde(default)]
    pub(crate) validate_set: Option<Vec<String>>,
}

/// `[role.trust]`: scripts trusted by SHA-256.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrustDoc {
    /// Hex SHA-256 digests of trusted scripts.
    #[serde(default)]
    pub(crate) sha256: Vec<String>,
    /// Directories whose every file is trusted; the gateway reads them at start-up and
    /// on reload (relative paths are relative to the policy directory).
    #[serde(default)]
    pub(crate) dirs: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrincipalsDoc {
    #[serde(default)]
    pub(crate) users: Vec<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostsDoc {
    /// Exact names or globs (`web-*`).
    #[serde(default)]
    pub(crate) names: Vec<String>,
    #[serde(default)]
    pub(crate) labels: Vec<String>,
}

/// Script language allowed in PowerShell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Only commands sent as commands; no script text at all.
    #[default]
    NoScripts,
    /// Scripts that parse to pipelines of visible commands with literal arguments.
    Restricted,
    /// Any script; what can be analysed is still checked, and deny rules of other roles
    /// turn unanalysable scripts into denials.
    Full,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PsrpDoc {
    #[serde(default)]
    pub(crate) language: Language,
    /// Session configuration names (globs) this role may open; empty means any.
    #[serde(default)]
    pub(crate) configurations: Vec<String>,
    #[serde(default)]
    pub(crate) visible_cmdlets: Vec<CommandDoc>,
    #[serde(default)]
    pub(crate) visible_functions: Vec<CommandDoc>,
    #[serde(default)]
    pub(crate) visible_external_commands: Vec<String>,
}

/// `"Get-Service"` or `{ name = "Restart-Service", parameters = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum CommandDoc {
    Name(String),
    Rule(CommandRuleDoc),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandRuleDoc {
    pub(crate) name: String,
    /// When present, the only parameters allowed (JEA semantics).
    #[serde(default)]
    pub(crate) parameters: Option<Vec<ParameterDoc>>,
    /// Parameter names that positional arguments bind to, in order (for commands whose
    /// metadata hopgate does not ship; shipped metadata wins).
    #[serde(default)]
    pub(crate) positional: Option<Vec<String>>,
    /// Pipeline input may bind to this command's parameters without being shown to
    /// satisfy their rules (`Get-Service -Name Spooler | Restart-Service`).
    #[serde(default)]
    pub(crate) pipeline_input: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParameterDoc {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) validate_set: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) validate_pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CmdDoc {
    /// Whole command lines: a string is exact (case-insensitive, runs of blanks outside
    /// quotes collapse), `{ pattern = "..." }` is an anchored regular expression.
    #[serde(default)]
    pub(crate) commands: Vec<LineDoc>,
    /// Allow cmd.exe metacharacters (`&|<>^%!`) in lines; only sensible for roles that
    /// allow every line anyway.
    #[serde(default)]
    pub(crate) allow_metacharacters: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum LineDoc {
    Exact(String),
    Pattern(PatternDoc),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatternDoc {
    pub(crate) pattern: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyDoc {
    /// PowerShell command names or wildcards (cmdlets, functions, external commands).
    #[serde(default)]
    pub(crate) cmdlets: Vec<String>,
    /// Parameters denied on matching commands.
    #[serde(default)]
    pub(crate) parameters: Vec<DenyParameterDoc>,
    /// cmd-shell lines, exact or `{ pattern = "..." }`.
    #[serde(default)]
    pub(crate) cmd: Vec<LineDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyParameterDoc {
    /// Command name or wildcard (`*` for all).
    pub(crate) command: String,
    pub(crate) names: Vec<String>,
}
