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
use alloc::borrow::Cow;
use alloc::sync::Arc;

use super::metadata::{CommandMeta, ParamMeta, ParamNames, SetIndex, SetMeta};
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
    /// The parameter's names (shared with its metadata): folded canonical name
    /// (`computername`), folded aliases (deny rules may name an alias), and the name as
    /// the reference writes it (`ComputerName`). For a named token that matched no known
    /// parameter (`resolved` false), the token as written.
    pub(crate) names: Arc<ParamNames>,
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

// === impl Bound ===

impl Bound {
    /// The folded canonical name.
    pub(crate) fn param(&self) -> &str {
        &self.names.folded
    }

    /// The name as the reference writes it.
    pub(crate) fn display(&self) -> &str {
        &self.names.display
    }

    /// The folded aliases.
    pub(crate) fn aliases(&self) -> &[String] {
        &self.names.aliases
    }
}

/// One way the arguments bind (in one parameter set): what each parameter receives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Binding {
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
            (Some(x), None) if x.param() == "inputobject" && x.via != Via::Pipeline => {
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
        if !IDENTITY_PARAMS.contains(&x.param()) || x.via == Via::Pipeline {
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
            Some((p, v)) if p != x.param() || *v != values => return None,
            _ => found = Some((x.param().to_string(), values)),
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

    /// True when a name or alias equals the folded token (or, with `prefix`, starts
    /// with it). Names are compared without allocating: this runs for every parameter
    /// of every command use.
    fn matches(self, token: &str, prefix: bool) -> bool {
        let check = |n: &str| {
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
        };
        match self {
            Param::Own(p) => check(&p.name) || p.aliases.iter().any(|a| check(a)),
            Param::Common(i) => COMMON
                .get(i)
                .is_some_and(|c| check(c.0) || c.1.iter().any(|a| check(a))),
        }
    }

    fn same(self, other: Param<'_>) -> bool {
        match (self, other) {
            (Param::Own(a), Param::Own(b)) => core::ptr::eq(a, b),
            (Param::Common(a), Param::Common(b)) => a == b,
            _ => false,
        }
    }

    fn bound(self, via: Via, value: Option<Val>) -> Bound {
        let names = match self {
            // Filled when the command joined its metadata set; folded here otherwise.
            Param::Own(p) if !p.names.folded.is_empty() => p.names.clone(),
            Param::Own(p) => Arc::new(ParamNames::new(&p.name, &p.aliases)),
            Param::Common(i) => {
                let (name, aliases, _) = COMMON.get(i).copied().unwrap_or(("", &[], false));
                Arc::new(ParamNames {
                    folded: fold(name),
                    aliases: aliases.iter().map(|a| a.to_string()).collect(),
                    display: name.to_string(),
                })
            }
        };
        Bound {
            names,
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
    let all = || {
        meta.params.iter().map(Param::Own).chain(
            (0..COMMON.len())
                .filter(|&i| COMMON.get(i).is_some_and(|c| !own(c.0)))
                .map(Param::Common),
        )
    };
    if let Some(p) = all().find(|p| p.matches(token, false)) {
        return Ok(Some(p));
    }
    if token.is_empty() {
        return Ok(None);
    }
    let mut found: Vec<Param<'m>> = Vec::new();
    for p in all() {
        if p.matches(token, true) && !found.iter().any(|f| f.same(p)) {
            found.push(p);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(found.iter().map(|p| p.display().to_string()).collect()),
    }
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
    // Type names are ASCII: compared without folding (this runs for every binding).
    let t = type_name.trim().trim_end_matches("[]");
    let leaf = t.rsplit('.').next().unwrap_or(t);
    let starts = |o: &str| {
        leaf.get(..o.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(o))
    };
    let object_type = OBJECT_TYPES.iter().any(|o| starts(o));
    let is = |o: &str| leaf.eq_ignore_ascii_case(o);
    match value {
        // What a hashtable or a computed value converts to is decided at run time.
        None | Some(Val::Other(_) | Val::Hashtable(_) | Val::Expr(_)) => true,
        Some(Val::Block(_)) => is("scriptblock") || is("object") || leaf.is_empty(),
        Some(Val::List(items)) => items.iter().all(|i| fits(type_name, Some(i))),
        Some(Val::ScriptBlock(_)) => is("scriptblock") || is("object") || leaf.is_empty(),
        Some(Val::Secure) => is("securestring") || is("object") || leaf.is_empty(),
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
                            names: Arc::new(ParamNames {
                                folded: tok.clone(),
                                aliases: Vec::new(),
                                display: tok,
                            }),
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

    // Parameter sets the named parameters leave possible. The table of each parameter's
    // behaviour per set is built once: binding looks it up for every parameter of every
    // candidate set.
    let table = SetTable::new(meta);
    let named_own: Vec<bool> = meta
        .params
        .iter()
        .map(|p| {
            named
                .iter()
                .any(|(q, _)| matches!(q, Some(Param::Own(q)) if core::ptr::eq(*q, p)))
        })
        .collect();
    let candidates: Vec<usize> = (0..table.sets())
        .filter(|&si| {
            named_own
                .iter()
                .enumerate()
                .all(|(pi, named)| !named || table.get(pi, si).is_some())
        })
        .collect();
    if candidates.is_empty() {
        return Err(BindError::NoSet {
            command: command.to_string(),
            why: "the named parameters belong to different sets".into(),
        });
    }

    let mut out: Vec<Binding> = Vec::new();
    let mut why = String::new();
    for si in candidates {
        let ctx = SetCtx {
            meta,
            table: &table,
            si,
            named_own: &named_own,
        };
        match ctx.bind(&named, &positional, upstream) {
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

/// Each parameter's behaviour in each of the command's sets (params × sets): the index
/// built when the metadata was loaded, or one built here for metadata made elsewhere.
#[derive(Debug)]
struct SetTable<'m> {
    meta: &'m CommandMeta,
    index: Cow<'m, SetIndex>,
}

// === impl SetTable ===

impl<'m> SetTable<'m> {
    fn new(meta: &'m CommandMeta) -> Self {
        let index = if meta.set_index.names.is_empty() {
            Cow::Owned(SetIndex::new(&meta.params))
        } else {
            Cow::Borrowed(&*meta.set_index)
        };
        Self { meta, index }
    }

    fn sets(&self) -> usize {
        self.index.names.len()
    }

    fn get(&self, param: usize, set: usize) -> Option<&'m SetMeta> {
        let cell = self
            .index
            .cells
            .get(param * self.sets() + set)
            .copied()
            .flatten()?;
        self.meta.params.get(param)?.sets.get(usize::from(cell))
    }
}

/// Binding within one parameter set.
#[derive(Debug)]
struct SetCtx<'a, 'm> {
    meta: &'m CommandMeta,
    table: &'a SetTable<'m>,
    si: usize,
    /// Parameters already bound by name, by index.
    named_own: &'a [bool],
}

// === impl SetCtx ===

impl SetCtx<'_, '_> {
    fn at(&self, pi: usize) -> Option<&SetMeta> {
        self.table.get(pi, self.si)
    }

    fn takes_pipeline(&self, pi: usize) -> bool {
        self.at(pi)
            .is_some_and(|s| s.by_value || s.by_property_name)
    }

    fn bind(
        &self,
        named: &[(Option<Param<'_>>, Bound)],
        positional: &[Positional],
        upstream: &Upstream,
    ) -> Result<Binding, String> {
        let meta = self.meta;
        let mut bound: Vec<Bound> = Vec::with_capacity(named.len() + positional.len() + 4);
        bound.extend(named.iter().map(|(_, b)| b.clone()));
        let unnamed = |pi: &usize| !self.named_own.get(*pi).copied().unwrap_or(false);
        // Positional parameters of this set not bound by name, in position order.
        let mut slots: Vec<(u32, usize)> = (0..meta.params.len())
            .filter(unnamed)
            .filter_map(|pi| self.at(pi).and_then(|s| s.position).map(|pos| (pos, pi)))
            .collect();
        slots.sort_by_key(|(pos, _)| *pos);
        let remaining = (0..meta.params.len())
            .filter(unnamed)
            .find(|&pi| self.at(pi).is_some_and(|s| s.remaining));
        let mut taken = vec![false; meta.params.len()];
        let mut slot_iter = slots.iter();
        let mut rest: Vec<Val> = Vec::new();
        let mut rest_index = None;
        for arg in positional {
            match slot_iter
                .next()
                .and_then(|(_, pi)| Some((*pi, meta.params.get(*pi)?)))
            {
                Some((pi, p)) => {
                    if !fits(&p.type_name, Some(&arg.value)) {
                        return Err(format!(
                            "positional argument {} cannot be a {}",
                            arg.index + 1,
                            p.type_name
                        ));
                    }
                    if let Some(t) = taken.get_mut(pi) {
                        *t = true;
                    }
                    bound.push(
                        Param::Own(p).bound(Via::Positional(arg.index), Some(arg.value.clone())),
                    );
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
        if let (Some(p), Some(index)) = (remaining.and_then(|pi| meta.params.get(pi)), rest_index) {
            let display = p.name.as_str();
            // A remaining-arguments parameter that also has a position already holds the
            // first value: the rest join it, so every value is judged.
            match bound
                .iter_mut()
                .find(|b| b.via != Via::Pipeline && b.display() == display && b.resolved)
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
                None => {
                    bound.push(Param::Own(p).bound(Via::Positional(index), Some(Val::List(rest))))
                }
            }
        }
        // Pipeline input goes to parameters of this set still free.
        let free = || {
            meta.params
                .iter()
                .enumerate()
                .filter(|(pi, _)| unnamed(pi) && !taken.get(*pi).copied().unwrap_or(false))
        };
        match upstream {
            Upstream::None => {}
            Upstream::Values(values) => {
                for v in values {
                    for (pi, p) in free() {
                        let by_value = self.at(pi).is_some_and(|s| s.by_value);
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
                // Same noun: the objects are the ones the identity values name. Whichever
                // of this set's parameters takes them (`-InputObject` by value, `-Name` by
                // property name), what the command acts on is `-<param> <values>`.
                let takes = free().any(|(pi, _)| self.takes_pipeline(pi));
                let target = meta.params.iter().find(|p| fold(&p.name) == *param);
                if let (true, Some(p)) = (takes, target) {
                    bound.push(Param::Own(p).bound(Via::Pipeline, Some(Val::List(values.clone()))));
                } else if takes {
                    for (pi, p) in free() {
                        if self.takes_pipeline(pi) {
                            bound.push(Param::Own(p).bound(Via::Pipeline, None));
                        }
                    }
                }
            }
            Upstream::Objects | Upstream::Identified { .. } => {
                for (pi, p) in free() {
                    if self.takes_pipeline(pi) {
                        bound.push(Param::Own(p).bound(Via::Pipeline, None));
                    }
                }
            }
        }
        Ok(Binding { bound })
    }
}
