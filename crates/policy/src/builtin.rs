//! Built-in knowledge about PowerShell commands that policy needs and that roles should
//! not have to repeat: the commands remoting needs to open a session, common parameters,
//! well-known parameter aliases, positional bindings and switch parameters of common
//! cmdlets. All names are folded (lower case).

/// JEA's default visible commands: remoting needs them to open a session and format
/// output, so every role with a PSRP grant gets them.
pub(crate) const SESSION_COMMANDS: &[&str] = &[
    "get-command",
    "get-formatdata",
    "get-help",
    "measure-object",
    "out-default",
    // Interactive clients format the prompt with `prompt | Out-String -Stream` before
    // every command (PowerShell 7's Enter-PSSession); it only turns objects into text.
    "out-string",
    "select-object",
    "exit-pssession",
    "clear-host",
    "prompt",
    "tabexpansion2", // interactive sessions: the prompt and tab completion (issue 15)
];

/// Common parameters allowed even when a rule restricts parameters.
pub(crate) const SAFE_COMMON: &[&str] = &[
    "verbose",
    "debug",
    "erroraction",
    "warningaction",
    "informationaction",
    "progressaction",
    "whatif",
    "confirm",
];

/// Common parameters never allowed on a rule that restricts parameters (they write
/// variables in the runspace).
pub(crate) const UNSAFE_COMMON: &[&str] = &[
    "errorvariable",
    "warningvariable",
    "informationvariable",
    "outvariable",
    "outbuffer",
    "pipelinevariable",
];

/// Parameter aliases PowerShell defines for common and frequently denied parameters:
/// (alias, parameter).
pub(crate) const PARAMETER_ALIASES: &[(&str, &str)] = &[
    ("vb", "verbose"),
    ("db", "debug"),
    ("ea", "erroraction"),
    ("wa", "warningaction"),
    ("infa", "informationaction"),
    ("proga", "progressaction"),
    ("ev", "errorvariable"),
    ("wv", "warningvariable"),
    ("iv", "informationvariable"),
    ("ov", "outvariable"),
    ("ob", "outbuffer"),
    ("pv", "pipelinevariable"),
    ("wi", "whatif"),
    ("cf", "confirm"),
    ("cn", "computername"),
    ("servicename", "name"),
    ("processname", "name"),
    ("pspath", "literalpath"),
    ("lp", "literalpath"),
    ("args", "argumentlist"),
];

/// The parameter an alias stands for.
pub(crate) fn parameter_alias(folded: &str) -> Option<&'static str> {
    PARAMETER_ALIASES
        .iter()
        .find(|(a, _)| *a == folded)
        .map(|(_, p)| *p)
}

/// Default positional bindings: (command, parameters by position). A trailing `*` means
/// the parameter takes all remaining positional arguments.
const POSITIONAL: &[(&str, &[&str])] = &[
    ("get-service", &["name"]),
    ("start-service", &["name"]),
    ("stop-service", &["name"]),
    ("restart-service", &["name"]),
    ("suspend-service", &["name"]),
    ("resume-service", &["name"]),
    ("set-service", &["name"]),
    ("get-process", &["name"]),
    ("stop-process", &["id"]),
    ("get-childitem", &["path", "filter"]),
    ("get-item", &["path"]),
    ("get-content", &["path"]),
    ("write-output", &["inputobject*"]),
    ("get-date", &["date"]),
    ("get-command", &["name*"]),
    ("get-help", &["name", "category"]),
    ("select-object", &["property"]),
    ("measure-object", &["property"]),
    ("get-winevent", &["logname"]),
    ("get-eventlog", &["logname", "instanceid"]),
    ("out-string", &["inputobject"]),
    ("get-dnsserverresourcerecord", &["zonename", "name"]),
    (
        "add-dnsserverresourcerecorda",
        &["zonename", "name", "ipv4address"],
    ),
    (
        "remove-dnsserverresourcerecord",
        &["zonename", "rrtype", "name"],
    ),
    ("clear-dnsservercache", &[]),
];

/// The parameter the `index`-th positional argument binds to for `command`, if known.
pub(crate) fn default_positional(command: &str, index: usize) -> Option<&'static str> {
    let (_, params) = POSITIONAL.iter().find(|(c, _)| *c == command)?;
    positional_at(params.iter().copied(), index)
}

/// Positional binding over a list where a trailing `*` marks "all remaining".
pub(crate) fn positional_at<'a>(
    mut params: impl Iterator<Item = &'a str> + Clone,
    index: usize,
) -> Option<&'a str> {
    if let Some(p) = params.clone().nth(index) {
        return Some(p.trim_end_matches('*'));
    }
    let last = params.by_ref().last()?;
    last.strip_suffix('*')
}

/// Switch parameters of common cmdlets: a value after one of these is positional.
pub(crate) const SWITCHES: &[&str] = &[
    "force",
    "passthru",
    "whatif",
    "confirm",
    "verbose",
    "debug",
    "recurse",
    "nowait",
    "stream",
    "asjob",
    "dependentservices",
    "requiredservices",
    "includeusername",
    "fileversioninfo",
    "module",
    "noprofile",
    "nonewline",
    "all",
    "list",
    "wait",
    "unique",
    "sum",
    "average",
    "maximum",
    "minimum",
];
