//! The policy engine: a validated set of roles and `decide`. Built from in-memory sources
//! so it stays pure; `load.rs` reads the directory.

use crate::prelude::*;

use alloc::collections::BTreeMap;

use super::analyse::{resolve_name, Analysis, CommandUse, Item};
use super::bind::Upstream;
use super::check::{allows, metadata_allowed};
use super::deny::DenyIndex;
use super::file::FileDoc;
use super::metadata::MetadataSet;
use super::pattern::fold;
use super::psrc::import_psrc;
use super::role::Role;
use super::trust::{TrustIndex, TrustedDir};
use super::{Decision, HostRef, Judgement, Operation, PolicyError, ShellKind, Subject};

/// One policy file's name and text.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// File name (or path) as it should appear in messages; `.psrc` files are found by
    /// the file name a role's `psrc` key gives.
    pub path: String,
    /// Contents.
    pub text: String,
}

/// A validated, immutable set of roles. Cheap to share behind an `Arc`; a reload builds a
/// new one and the old one stays in use when the new set is invalid.
#[derive(Debug, Default)]
pub struct Engine {
    roles: Vec<Role>,
    warnings: Vec<String>,
    deny: DenyIndex,
    /// The shipped cmdlet metadata plus the policy files' `[[command]]` tables.
    meta: MetadataSet,
    /// Every script some role trusts by content.
    trust: TrustIndex,
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

// === impl Engine ===

impl Engine {
    /// Parses and validates every `.toml` source; `.psrc` sources are imported where a
    /// role names them. Any error rejects the whole set.
    pub fn from_sources(sources: &[PolicySource]) -> Result<Self, PolicyError> {
        Self::from_sources_with_trust(sources, &[])
    }

    /// [`Engine::from_sources`], with the directories roles trust as the gateway read
    /// them ([`trusted_dirs`](crate::trusted_dirs) says which). A directory a role names
    /// that is not given trusts nothing and is reported in [`Engine::warnings`].
    pub fn from_sources_with_trust(
        sources: &[PolicySource],
        dirs: &[TrustedDir],
    ) -> Result<Self, PolicyError> {
        let psrcs: BTreeMap<&str, &PolicySource> = sources
            .iter()
            .filter(|s| s.path.to_ascii_lowercase().ends_with(".psrc"))
            .map(|s| (file_name(&s.path), s))
            .collect();
        let mut roles: Vec<Role> = Vec::new();
        let mut meta = MetadataSet::over_builtin();
        let mut warnings = Vec::new();
        for source in sources
            .iter()
            .filter(|s| s.path.to_ascii_lowercase().ends_with(".toml"))
        {
            let doc: FileDoc = toml::from_str(&source.text).map_err(|e| PolicyError::Toml {
                path: source.path.clone(),
                message: e.to_string().trim().to_string(),
            })?;
            for command in doc.command {
                let name = command.name.clone();
                let parsed =
                    super::metadata::from_doc(command).map_err(|message| PolicyError::Invalid {
                        path: source.path.clone(),
                        role: format!("[[command]] {name}"),
                        message,
                    })?;
                meta.insert(parsed);
            }
            for role_doc in doc.role {
                let role_name = role_doc.name.clone();
                let invalid = |message: String| PolicyError::Invalid {
                    path: source.path.clone(),
                    role: role_name.clone(),
                    message,
                };
                let psrc = match &role_doc.psrc {
                    None => None,
                    Some(name) => {
                        let file = psrcs
                            .get(file_name(name))
                            .ok_or_else(|| invalid(format!("psrc file '{name}' not found")))?;
                        let import =
                            import_psrc(&file.text).map_err(|message| PolicyError::Psrc {
                                path: file.path.clone(),
                                message,
                            })?;
                        warnings.extend(
                            import
                                .warnings
                                .iter()
                                .map(|w| format!("{}: {w}", file.path)),
                        );
                        Some(import)
                    }
                };
                let role = Role::compile(role_doc, &source.path, psrc).map_err(invalid)?;
                if let Some(existing) = roles
                    .iter()
                    .find(|r| r.name.eq_ignore_ascii_case(&role.name))
                {
                    return Err(PolicyError::DuplicateRole {
                        role: role.name.clone(),
                        first: existing.source.clone(),
                        second: source.path.clone(),
                    });
                }
                roles.push(role);
            }
        }
        let trust = crate::trust::resolve(&mut roles, dirs, &mut warnings);
        let deny = DenyIndex::new(&roles);
        Ok(Self {
            roles,
            warnings,
            deny,
            meta,
            trust,
        })
    }

    /// Role names in load order.
    pub fn role_names(&self) -> Vec<&str> {
        self.roles.iter().map(|r| r.name.as_str()).collect()
    }

    /// Things that loaded but are not enforced (for example `.psrc` keys).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Which roles apply, indexed like `self.roles`.
    fn applicable_mask(&self, who: &Subject, host: &HostRef<'_>) -> Vec<bool> {
        let user = fold(&who.user);
        let groups: Vec<String> = who.groups.iter().map(|g| fold(g)).collect();
        let labels: Vec<String> = host.labels.iter().map(|l| fold(l)).collect();
        let name: Vec<char> = fold(host.name).chars().collect();
        self.roles
            .iter()
            .map(|r| r.has_principal(&user, &groups) && r.has_host(&name, &labels))
            .collect()
    }

    fn applicable<'a>(&'a self, who: &Subject, host: &HostRef<'_>) -> Vec<&'a Role> {
        let mask = self.applicable_mask(who, host);
        self.roles
            .iter()
            .zip(mask)
            .filter(|(_, m)| *m)
            .map(|(r, _)| r)
            .collect()
    }

    /// True when some role grants `who` anything on `host` (for target selection and
    /// listing hosts).
    pub fn grants_host(&self, who: &Subject, host: &HostRef<'_>) -> bool {
        !self.applicable(who, host).is_empty()
    }

    /// Names of the roles that apply to `who` on `host`.
    pub fn roles_for(&self, who: &Subject, host: &HostRef<'_>) -> Vec<&str> {
        self.applicable(who, host)
            .into_iter()
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Decides one operation. Deny rules of every applicable role are checked first;
    /// then the first applicable role (in load order) that allows everything wins.
    pub fn decide(&self, who: &Subject, host: &HostRef<'_>, op: &Operation<'_>) -> Decision {
        self.decide_with_code(who, host, op).decision
    }

    /// [`Engine::decide`], with the code the operation carried in another form
    /// (`-EncodedCommand`, `Invoke-Expression`, `cmd /c`, interpreter stdin) as the
    /// engine decoded it, for the audit record. Code is decoded only when a role applies.
    pub fn decide_with_code(
        &self,
        who: &Subject,
        host: &HostRef<'_>,
        op: &Operation<'_>,
    ) -> Judgement {
        let (decision, decoded, modules) = self.judge(who, host, op);
        Judgement {
            decision,
            decoded,
            modules,
        }
    }

    fn judge(
        &self,
        who: &Subject,
        host: &HostRef<'_>,
        op: &Operation<'_>,
    ) -> (Decision, Vec<super::DecodedCode>, Vec<super::ModuleRun>) {
        let mask = self.applicable_mask(who, host);
        let roles: Vec<&Role> = self
            .roles
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m)
            .map(|(r, _)| r)
            .collect();
        if roles.is_empty() {
            let deny = Decision::Deny {
                reason: format!(
                    "no role grants '{}' access to host '{}'",
                    who.user, host.name
                ),
                rule: None,
            };
            return (deny, Vec::new(), Vec::new());
        }
        match op {
            Operation::OpenShell { kind } => {
                return (open_shell(&roles, *kind), Vec::new(), Vec::new())
            }
            Operation::CommandMetadata { names } => {
                return (
                    self.command_metadata(&roles, &mask, names),
                    Vec::new(),
                    Vec::new(),
                )
            }
            _ => {}
        }
        let mut analysis = Analysis::new(&self.meta).with_trust(&self.trust);
        match op {
            Operation::CmdLine {
                command,
                arguments,
                skip_cmd_shell,
            } => {
                let mut line = command.to_string();
                for a in arguments.iter() {
                    line.push(' ');
                    line.push_str(a);
                }
                analysis.line(&line, *skip_cmd_shell, 0);
            }
            Operation::CmdStdin { program, data } => analysis.stdin(program, data),
            Operation::Pipeline(inv) => analysis.pipeline(inv),
            Operation::PipelineWithInput { pipeline, input } => {
                analysis.pipeline_with_input(pipeline, input)
            }
            Operation::OpenShell { .. } | Operation::CommandMetadata { .. } => {}
        }
        let decision = match self.deny.hit(&self.roles, &mask, &analysis) {
            Some((reason, rule)) => Decision::Deny {
                reason,
                rule: Some(rule),
            },
            None => allow_analysis(&roles, &analysis),
        };
        let modules = analysis
            .items
            .iter()
            .filter_map(|i| match i {
                super::analyse::Item::AnsibleModule(call) => Some(call.run.clone()),
                _ => None,
            })
            .collect();
        (decision, analysis.decoded, modules)
    }

    fn command_metadata(&self, roles: &[&Role], mask: &[bool], names: &[String]) -> Decision {
        let mut analysis = Analysis::new(&self.meta);
        for n in names {
            let (folded, via_alias) = resolve_name(n, &self.meta);
            analysis.items.push(Item::Command(CommandUse {
                written: n.clone(),
                deny_names: super::analyse::deny_names(n, &folded),
                folded,
                via_alias,
                path_like: false,
                args: Vec::new(),
                implicit: false,
                upstream: Upstream::None,
                bindings: None,
            }));
        }
        if let Some((reason, rule)) = self.deny.hit(&self.roles, mask, &analysis) {
            return Decision::Deny {
                reason,
                rule: Some(rule),
            };
        }
        let mut reasons = Vec::new();
        'roles: for role in roles {
            for item in &analysis.items {
                if let Item::Command(u) = item {
                    if let Err(e) = metadata_allowed(role, u) {
                        reasons.push(e);
                        continue 'roles;
                    }
                }
            }
            return Decision::Allow {
                role: role.name.clone(),
            };
        }
        Decision::Deny {
            reason: reasons.join("; "),
            rule: None,
        }
    }
}

/// What the program a cmd shell started makes of its stdin, which tells the gateway what
/// it must hold to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinKind {
    /// An interpreter (`cmd`, `powershell -`): every line is code, judged when whole, so
    /// an unfinished line is held.
    Code,
    /// Data for a program that executes none of it: judged once (the decision cannot
    /// depend on it), then streamed without holding anything.
    Data,
    /// Ansible's payload for its trusted bootstrap wrapper: held until the manifest
    /// line is whole ([`ansible_payload_len`](crate::ansible_payload_len)), judged
    /// once, and what follows is data.
    AnsiblePayload,
}

impl Engine {
    /// How the stdin of the program started by `program` is inspected.
    pub fn stdin_kind(&self, program: &str) -> StdinKind {
        if super::ansible::is_bootstrap(&self.trust, program) {
            StdinKind::AnsiblePayload
        } else if super::analyse::stdin_is_code(program) {
            StdinKind::Code
        } else {
            StdinKind::Data
        }
    }
}

impl Engine {
    /// True when a PSRP pipeline runs its input as code the gateway can judge: its first
    /// command is a trusted Ansible bootstrap wrapper fed by the client. The caller holds
    /// the pipeline until the input's manifest is whole
    /// ([`ansible_payload_len`](crate::ansible_payload_len)) and decides
    /// [`Operation::PipelineWithInput`]; decided without it, such a pipeline is refused
    /// beside deny rules (its input would be code nobody judged).
    pub fn pipeline_reads_code(&self, inv: &super::Invocation) -> bool {
        inv.client_input
            && inv
                .statements
                .first()
                .and_then(|s| s.first())
                .is_some_and(|c| {
                    c.is_script && super::ansible::is_bootstrap_text(&self.trust, &c.name)
                })
    }
}

/// How many bytes of buffered stdin text to judge now: everything up to and including
/// the last line break. Interpreters act on whole lines, so the caller keeps the rest
/// until more data arrives, and judges it as is when the stream ends; judging partial
/// lines separately would let two harmless halves join into one denied line.
pub fn stdin_complete_len(data: &str) -> usize {
    data.rfind('\n').map_or(0, |i| i + 1)
}

/// The first applicable role (in load order) that allows everything.
fn allow_analysis(roles: &[&Role], analysis: &Analysis) -> Decision {
    let mut reasons = Vec::new();
    for role in roles {
        match allows(role, analysis) {
            Ok(()) => {
                return Decision::Allow {
                    role: role.name.clone(),
                }
            }
            Err(reason) => reasons.push(reason),
        }
    }
    let mut texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    texts.dedup();
    Decision::Deny {
        reason: texts.join("; "),
        rule: None,
    }
}

fn open_shell(roles: &[&Role], kind: ShellKind<'_>) -> Decision {
    let found = roles.iter().find(|r| match kind {
        // PowerShell lines in cmd shells (pywinrm run_ps) are judged by PSRP rules.
        ShellKind::Cmd => r.cmd.is_some() || r.psrp.is_some(),
        ShellKind::Psrp { configuration } => r
            .psrp
            .as_ref()
            .is_some_and(|p| p.configuration_allowed(configuration)),
    });
    match (found, kind) {
        (Some(r), _) => Decision::Allow {
            role: r.name.clone(),
        },
        (None, ShellKind::Cmd) => Decision::Deny {
            reason: "no applicable role grants a cmd shell".into(),
            rule: None,
        },
        (None, ShellKind::Psrp { configuration }) => Decision::Deny {
            reason: format!("no applicable role grants PowerShell configuration '{configuration}'"),
            rule: None,
        },
    }
}
