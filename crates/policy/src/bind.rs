//! Parameter binding as PowerShell's binder does it, from cmdlet metadata: named
//! arguments first (exact name or alias, then an unambiguous prefix of a name or alias;
//! common parameters take values like any other), then positional arguments in position
//! order within each parameter set still possible, then pipeline input (by value, then
//! by property name). Policy judges the resulting bindings, never the spelling.
//!
//! Where PowerShell would choose between parameter sets at run time (by the types of the
//! objects it receives), every set that could still bind is returned, and policy must
//! accept each of them. Pure.

use crate::prelude::*;

use super::analyse::{UseArg, Val};
use super::metadata::{CommandMeta, ParamMeta, SetMeta, ALL_SETS};
use super::pattern::fold;

/// How a value reached a parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Via {
    /// `-Name value` or `-Name:value`, with the token as written.
    Named(String),
    /// The n-th (0-based) positional argument.
    Positional(usize),
    /// Objects from the previous pipeline element or the client.
    Pipeline,
}

/// One parameter that receives a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bound {
    /// Folded canonical parameter name (`computername`), or the folded token as written
    /// when it matched no known parameter (`resolved` false).
    pub(crate) param: String,
    /// The parameter's name as the reference writes it (`ComputerName`).
    pub(crate) display: String,
    /// Folded aliases of the parameter (deny rules may name an alias).
    pub(crate) aliases: Vec<String>,
    /// False for a named token that matches no parameter in the metadata (a dynamic
    /// parameter, or one PowerShell would refuse).
    pub(crate) resolved: bool,
    /// True for the common parameters every cmdlet has.
    pub(crate) common: bool,
    pub(crate) via: Via,
    /// The value; `None` for a switch given without one, and for pipeline objects whose
    /// value the gateway cannot know.
    pub(crate) value: Option<Val>,
}

/// One way the arguments bind: a parameter set and what each parameter receives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
    /// The parameter set, or [`ALL_SETS`] for a command with a single set.
    pub(crate) set: String,
    pub(crate) bound: Vec<Bound>,
}

/// What the previous pipeline element (or the client) sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Upstream {
    /// Nothing: the first command of a pipeline without client input.
    None,
    /// Literal values (`'WinRM', 'Spooler' | Restart-Service`).
    Values(Vec<Val>),
    /// Objects the gateway cannot know (another command's output, client input).
    Objects,
    /// The objects a `Get-Noun -Name x` (or `-Id`, `-Path`, `-LiteralPath`) with literal,
    /// wildcard-free values and no other parameter sends: the nouns those values name.
    /// A command of the same noun receives them as that parameter (`Get-Service -Name
    /// Spooler | Restart-Service` restarts Spooler); any other command, as [`Objects`].
    ///
    /// [`Objects`]: Upstream::Objects
    Identified {
        /// The upstream command's noun, folded (`service`).
        noun: String,
        /// The identity parameter, folded (`name`).
        param: String,
        /// Its values.
        values: Vec<Val>,
    },
}

/// Parameters that name the objects a `Get-` command returns.
const IDENTITY_PARAMS: &[&str] = &["name", "id", "path", "literalpath"];

/// The folded noun of a `Verb-Noun` command name.
pub(crate) fn noun(folded: &str) -> Option<&str> {
    folded
        .split_once('-')
        .map(|(_, n)| n)
        .filter(|n| !n.is_empty())
}

/// What `Write-Output` sends: its literal input objects, one by one.
pub(crate) fn written_output(folded: &str, bindings: &[Binding]) -> Option<Upstream> {
    if folded != "write-output" {
        return None;
    }
    let mut found: Option<Vec<Val>> = None;
    for b in bindings {
        let mut own = b.bound.iter().filter(|x| !x.common);
        let values = match (own.next(), own.next()) {
            (Some(x), None) if x.param == "inputobject" && x.via != Via::Pipeline => {
                match x.value.as_ref()? {
                    Val::List(items) => items.clone(),
                    v => vec![v.clone()],
                }
            }
            _ => return None,
        };
        let literal = |v: &Val| matches!(v, Val::Str(_) | Val::Num(_) | Val::Bool(_) | Val::Null);
        if !values.iter().all(literal) || found.as_ref().is_some_and(|f| *f != values) {
            return None;
        }
        found = Some(values);
    }
    found.map(Upstream::Values)
}

/// What a command sends down the pipeline, when it can be shown: a `Get-` command whose
/// only bound parameter (common ones aside) is an identity parameter with literal values
/// free of wildcards, in every binding.
pub(crate) fn identified_output(folded: &str, bindings: &[Binding]) -> Option<Upstream> {
    if !folded.starts_with("get-") {
        return None;
    }
    let noun = noun(folded)?;
    let mut found: Option<(String, Vec<Val>)> = None;
    for b in bindings {
        let mut own = b.bound.iter().filter(|x| !x.common);
        let (Some(x), None) = (own.next(), own.next()) else {
            return None;
        };
        if !IDENTITY_PARAMS.contains(&x.param.as_str()) || x.via == Via::Pipeline {
            return None;
        }
        let values = match x.value.as_ref()? {
            Val::List(items) => items.clone(),
            v => vec![v.clone()],
        };
        let literal = |v: &Val| match v {
            Val::Str(s) => !s.contains(['*', '?', '[']),
            Val::Num(_) => true,
            _ => false,
        };
        if values.is_empty() || !values.iter().all(literal) {
            return None;
        }
        match &found {
            Some((p, v)) if *p != x.param || *v != values => return None,
            _ => found = Some((x.param.clone(), values)),
        }
    }
    let (param, values) = found?;
    Some(Upstream::Identified {
        noun: noun.to_string(),
        param,
        values,
    })
}

/// Why arguments do not bind. PowerShell would refuse to run the command; policy
/// denies it with this reason rather than guess.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum BindError {
    #[error("parameter '{written}' of '{command}' is ambiguous: it could be {candidates}")]
    Ambiguous {
        command: String,
        written: String,
        candidates: String,
    },
    #[error("parameter '{written}' of '{command}' needs a value")]
    MissingValue { command: String, written: String },
    #[error("parameter '{param}' of '{command}' is given more than once")]
    Repeated { command: String, param: String },
    #[error("the arguments of '{command}' fit no parameter set ({why})")]
    NoSet { command: String, why: String },
}

/// Common parameters: (display name, aliases, is a switch). WhatIf and Confirm exist only
/// on commands that support ShouldProcess; treating them as present everywhere only
/// makes binding stricter.
const COMMON: &[(&str, &[&str], bool)] = &[
    ("Verbose", &["vb"], true),
    ("Debug", &["db"], true),
    ("ErrorAction", &["ea"], false),
    ("WarningAction", &["wa"], false),
    ("InformationAction", &["infa"], false),
    ("ProgressAction", &["proga"], false),
    ("ErrorVariable", &["ev"], false),
    ("WarningVariable", &["wv"], false),
    ("InformationVariable", &["iv"], false),
    ("OutVariable", &["ov"], false),
    ("OutBuffer", &["ob"], false),
    ("PipelineVariable", &["pv"], false),
    ("WhatIf", &["wi"], true),
    ("Confirm", &["cf"], true),
];

/// A parameter as the binder sees it: the command's own or a common one.
#[derive(Debug, Clone, Copy)]
enum Param<'m> {
    Own(&'m ParamMeta),
    Common(usize),
}

impl<'m> Param<'m> {
    fn display(self) -> &'m str {
        match self {
            Param::Own(p) => &p.name,
            Param::Common(i) => COMMON.get(i).map_or("", |c| c.0),
        }
    }

    fn switch(self) -> bool {
        match self {
            Param::Own(p) => p.switch || p.type_name.eq_ignore_ascii_case("SwitchParameter"),
            Param::Common(i) => COMMON.get(i).is_some_and(|c| c.2),
        }
    }

    /// The name and aliases as written (common aliases are lower case).
    fn names(self) -> Vec<&'m str> {
        match self {
            Param::Own(p) => core::iter::once(p.name.as_str())
                .chain(p.aliases.iter().map(String::as_str))
                .collect(),
            Param::Common(i) => COMMON
                .get(i)
                .map(|c| core::iter::once(c.0).chain(c.1.iter().copied()).collect())
                .unwrap_or_default(),
        }
    }

    /// True when a name or alias equals the folded token (or, with `prefix`, starts
    /// with it). Names are compared without allocating: this runs for every parameter
    /// of every command use.
    fn matches(self, token: &str, prefix: bool) -> bool {
        self.names().into_iter().any(|n| {
            let head = if prefix {
                n.get(..token.len())
            } else {
                Some(n)
            };
            match head {
                Some(h) if n.is_ascii() => h.eq_ignore_ascii_case(token),
                _ => {
                    let f = fold(n);
                    if prefix {
                        f.starts_with(token)
                    } else {
                        f == token
                    }
                }
            }
        })
    }

    fn same(self, other: Param<'_>) -> bool {
        match (self, other) {
            (Param::Own(a), Param::Own(b)) => core::ptr::eq(a, b),
            (Param::Common(a), Param::Common(b)) => a == b,
            _ => false,
        }
    }

    fn bound(self, via: Via, value: Option<Val>) -> Bound {
        let mut names: Vec<String> = self.names().into_iter().map(fold).collect();
        let param = if names.is_empty() {
            String::new()
        } else {
            names.remove(0)
        };
        Bound {
            param,
            display: self.display().to_string(),
            aliases: names,
            resolved: true,
            common: matches!(self, Param::Common(_)),
            via,
            value,
        }
    }
}

/// A parameter token as written, without dashes and the colon.
pub(crate) fn token(written: &str) -> String {
    fold(
        written
            .trim()
            .trim_start_matches(['-', '\u{2013}', '\u{2014}', '\u{2015}'])
            .trim_end_matches(':')
            .trim(),
    )
}

/// Resolves a folded token: exact name or alias first, then a unique prefix.
fn resolve<'m>(meta: &'m CommandMeta, token: &str) -> Result<Option<Param<'m>>, Vec<String>> {
    // WhatIf and Confirm are in the metadata of the commands that have them; the common
    // entry of the same name must not make every prefix of them ambiguous.
    let own = |name: &str| {
        meta.params
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name))
    };
    let all: Vec<Param<'m>> = meta
        .params
        .iter()
        .map(Param::Own)
        .chain(
            (0..COMMON.len())
                .filter(|&i| COMMON.get(i).is_some_and(|c| !own(c.0)))
                .map(Param::Common),
        )
        .collect();
    if let Some(p) = all.iter().find(|p| p.matches(token, false)) {
        return Ok(Some(*p));
    }
    if token.is_empty() {
        return Ok(None);
    }
    let mut found: Vec<Param<'m>> = Vec::new();
    for p in &all {
        if p.matches(token, true) && !found.iter().any(|f| f.same(*p)) {
            found.push(*p);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(found.iter().map(|p| p.display().to_string()).collect()),
    }
}

/// The parameter's behaviour in `set` (its own entry, or the all-sets entry).
fn in_set<'m>(p: &'m ParamMeta, set: &str) -> Option<&'m SetMeta> {
    p.sets
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(set))
        .or_else(|| p.sets.iter().find(|s| s.name == ALL_SETS))
}

/// The command's parameter sets (never empty).
fn sets(meta: &CommandMeta) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in &meta.params {
        for s in &p.sets {
            if s.name != ALL_SETS && !out.iter().any(|o| o.eq_ignore_ascii_case(&s.name)) {
                out.push(&s.name);
            }
        }
    }
    if out.is_empty() {
        out.push(ALL_SETS);
    }
    out
}

/// Types a literal string, number or boolean cannot be converted to, so a literal never
/// binds to a parameter of one of them (PowerShell would try the next set instead).
const OBJECT_TYPES: &[&str] = &[
    "servicecontroller",
    "process",
    "ciminstance",
    "cimsession",
    "pssession",
    "runspace",
    "scriptblock",
    "hashtable",
    "idictionary",
    "managementobject",
    "managementbaseobject",
    "job",
    "eventlog",
    "filesysteminfo",
    "fileinfo",
    "directoryinfo",
    "psmoduleinfo",
    "commandinfo",
    "x509certificate",
];

/// Whether `value` (None: unknown objects) can reach a parameter of type `type_name`.
fn fits(type_name: &str, value: Option<&Val>) -> bool {
    let t = fold(type_name);
    let t = t.trim_end_matches("[]");
    let leaf = t.rsplit('.').next().unwrap_or(t);
    let object_type = OBJECT_TYPES.iter().any(|o| leaf.starts_with(o));
    match value {
        // What a hashtable or a computed value converts to is decided at run time.
        None | Some(Val::Other(_) | Val::Hashtable(_) | Val::Expr(_)) => true,
        Some(Val::Block(_)) => leaf == "scriptblock" || leaf == "object" || leaf.is_empty(),
        Some(Val::List(items)) => items.iter().all(|i| fits(type_name, Some(i))),
        Some(Val::ScriptBlock(_)) => leaf == "scriptblock" || leaf == "object" || leaf.is_empty(),
        Some(Val::Secure) => leaf == "securestring" || leaf == "object" || leaf.is_empty(),
        Some(Val::Str(_) | Val::Num(_) | Val::Bool(_) | Val::Null) => !object_type,
    }
}

/// An argument after named binding: still to bind by position.
#[derive(Debug)]
struct Positional {
    index: usize,
    value: Val,
}

/// Binds `args` (and pipeline input from `upstream`) against `meta`. `command` is the
/// name as written, for messages.
pub(crate) fn bind(
    meta: &CommandMeta,
    command: &str,
    args: &[UseArg],
    upstream: &Upstream,
) -> Result<Vec<Binding>, BindError> {
    let mut named: Vec<(Option<Param<'_>>, Bound)> = Vec::new();
    let mut positional: Vec<Positional> = Vec::new();
    let mut next_index = 0usize;
    let mut push_positional = |value: Val, positional: &mut Vec<Positional>| {
        positional.push(Positional {
            index: next_index,
            value,
        });
        next_index += 1;
    };
    for a in args {
        match a {
            UseArg::Positional(v) => push_positional(v.clone(), &mut positional),
            UseArg::Named {
                written,
                value,
                maybe_positional,
                ..
            } => {
                let tok = token(written);
                let param = resolve(meta, &tok).map_err(|c| BindError::Ambiguous {
                    command: command.to_string(),
                    written: written.trim_end_matches(':').to_string(),
                    candidates: c.join(", "),
                })?;
                let Some(p) = param else {
                    // Unknown to the metadata: a dynamic parameter, or one PowerShell
                    // refuses. Recorded as written; a following value stays with it.
                    named.push((
                        None,
                        Bound {
                            param: tok.clone(),
                            display: tok,
                            aliases: Vec::new(),
                            resolved: false,
                            common: false,
                            via: Via::Named(written.clone()),
                            value: value.clone(),
                        },
                    ));
                    continue;
                };
                if named.iter().any(|(q, _)| q.is_some_and(|q| q.same(p))) {
                    return Err(BindError::Repeated {
                        command: command.to_string(),
                        param: p.display().to_string(),
                    });
                }
                let via = Via::Named(written.clone());
                match (p.switch(), value, maybe_positional) {
                    // `-Force value`: the switch takes no value; the value is positional.
                    (true, Some(v), true) => {
                        named.push((Some(p), p.bound(via, None)));
                        push_positional(v.clone(), &mut positional);
                    }
                    (_, Some(v), _) => named.push((Some(p), p.bound(via, Some(v.clone())))),
                    (true, None, _) => named.push((Some(p), p.bound(via, None))),
                    (false, None, _) => {
                        return Err(BindError::MissingValue {
                            command: command.to_string(),
                            written: written.clone(),
                        })
                    }
                }
            }
        }
    }

    // Parameter sets the named parameters leave possible.
    let all_sets = sets(meta);
    let mut candidates: Vec<&str> = all_sets.clone();
    for (p, _) in &named {
        if let Some(Param::Own(pm)) = p {
            candidates.retain(|s| in_set(pm, s).is_some());
        }
    }
    if candidates.is_empty() {
        return Err(BindError::NoSet {
            command: command.to_string(),
            why: "the named parameters belong to different sets".into(),
        });
    }

    let mut out: Vec<Binding> = Vec::new();
    let mut why = String::new();
    for set in candidates {
        match bind_set(meta, set, &named, &positional, upstream) {
            Ok(b) => {
                if !out.iter().any(|o| o.bound == b.bound) {
                    out.push(b);
                }
            }
            Err(e) => why = e,
        }
    }
    if out.is_empty() {
        return Err(BindError::NoSet {
            command: command.to_string(),
            why,
        });
    }
    Ok(out)
}

fn bind_set(
    meta: &CommandMeta,
    set: &str,
    named: &[(Option<Param<'_>>, Bound)],
    positional: &[Positional],
    upstream: &Upstream,
) -> Result<Binding, String> {
    let mut bound: Vec<Bound> = named.iter().map(|(_, b)| b.clone()).collect();
    let is_named = |p: &ParamMeta| {
        named
            .iter()
            .any(|(q, _)| matches!(q, Some(Param::Own(q)) if core::ptr::eq(*q, p)))
    };
    // Positional parameters of this set not bound by name, in position order.
    let mut slots: Vec<(u32, &ParamMeta)> = meta
        .params
        .iter()
        .filter(|p| !is_named(p))
        .filter_map(|p| in_set(p, set).and_then(|s| s.position).map(|pos| (pos, p)))
        .collect();
    slots.sort_by_key(|(pos, _)| *pos);
    let remaining = meta
        .params
        .iter()
        .find(|p| !is_named(p) && in_set(p, set).is_some_and(|s| s.remaining));
    let mut taken: Vec<&ParamMeta> = Vec::new();
    let mut slot_iter = slots.iter();
    let mut rest: Vec<Val> = Vec::new();
    let mut rest_index = None;
    for arg in positional {
        match slot_iter.next() {
            Some((_, p)) => {
                if !fits(&p.type_name, Some(&arg.value)) {
                    return Err(format!(
                        "positional argument {} cannot be a {}",
                        arg.index + 1,
                        p.type_name
                    ));
                }
                taken.push(p);
                bound
                    .push(Param::Own(p).bound(Via::Positional(arg.index), Some(arg.value.clone())));
            }
            None if remaining.is_some() => {
                rest_index.get_or_insert(arg.index);
                rest.push(arg.value.clone());
            }
            None => {
                return Err(format!(
                    "positional argument {} binds to no parameter",
                    arg.index + 1
                ))
            }
        }
    }
    if let (Some(p), Some(index)) = (remaining, rest_index) {
        let display = p.name.as_str();
        // A remaining-arguments parameter that also has a position already holds the
        // first value: the rest join it, so every value is judged.
        match bound
            .iter_mut()
            .find(|b| b.via != Via::Pipeline && b.display == display && b.resolved)
        {
            Some(b) => {
                let mut all = match b.value.take() {
                    Some(Val::List(items)) => items,
                    Some(v) => vec![v],
                    None => Vec::new(),
                };
                all.extend(rest);
                b.value = Some(Val::List(all));
            }
            None => bound.push(Param::Own(p).bound(Via::Positional(index), Some(Val::List(rest)))),
        }
    }
    // Pipeline input goes to parameters of this set still free.
    let free = |p: &&ParamMeta| !is_named(p) && !taken.iter().any(|t| core::ptr::eq(*t, *p));
    match upstream {
        Upstream::None => {}
        Upstream::Values(values) => {
            for v in values {
                for p in meta.params.iter().filter(free) {
                    let by_value = in_set(p, set).is_some_and(|s| s.by_value);
                    if by_value && fits(&p.type_name, Some(v)) {
                        bound.push(Param::Own(p).bound(Via::Pipeline, Some(v.clone())));
                    }
                }
            }
        }
        Upstream::Identified {
            noun: from,
            param,
            values,
        } if noun(&fold(&meta.name)) == Some(from.as_str()) => {
            // Same noun: the objects are the ones the identity values name. Whichever of
            // this set's parameters takes them (`-InputObject` by value, `-Name` by
            // property name), what the command acts on is `-<param> <values>`.
            let takes = meta
                .params
                .iter()
                .filter(free)
                .any(|p| in_set(p, set).is_some_and(|s| s.by_value || s.by_property_name));
            let target = meta.params.iter().find(|p| fold(&p.name) == *param);
            if let (true, Some(p)) = (takes, target) {
                bound.push(Param::Own(p).bound(Via::Pipeline, Some(Val::List(values.clone()))));
            } else if takes {
                for p in meta.params.iter().filter(free) {
                    if in_set(p, set).is_some_and(|s| s.by_value || s.by_property_name) {
                        bound.push(Param::Own(p).bound(Via::Pipeline, None));
                    }
                }
            }
        }
        Upstream::Objects | Upstream::Identified { .. } => {
            for p in meta.params.iter().filter(free) {
                if in_set(p, set).is_some_and(|s| s.by_value || s.by_property_name) {
                    bound.push(Param::Own(p).bound(Via::Pipeline, None));
                }
            }
        }
    }
    Ok(Binding {
        set: set.to_string(),
        bound,
    })
}
