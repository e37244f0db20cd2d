//! The red-team suite: attack cases over the shipped example roles (`policies/`), grouped
//! by family, and the everyday administrator commands that must stay allowed. The cases
//! are data (`tests-data/redteam/*.toml`, one file per family); expected decisions follow
//! what PowerShell and cmd.exe would actually run (about_Parameters, about_Parsing,
//! about_Aliases, about_Pipelines, `cmd /?`, `powershell -?`), never the engine's output.
//!
//! The runner judges every case, prints a per-family summary and every mismatch, and then
//! fails when any case mismatches: the list is the engine's to-do list. Cases that need a
//! role shape the shipped roles lack use the test-only roles in `tests-data/roles/`, each
//! loaded on its own so that a fixture using a key the engine does not know yet fails only
//! its own cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "tests"
)]

mod persons;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use serde::Deserialize;

use super::test_support::{load_dir, policies_dir};
use super::{
    ArgValue, Decision, Engine, HostRef, Invocation, InvokedArg, InvokedCommand, Operation,
    PolicySource, ShellKind, Subject,
};
use persons::{person, Person};

/// The family files, in report order. `everyday` holds the commands that must be allowed.
const FAMILIES: &[(&str, &str)] = &[
    (
        "binding",
        include_str!("../../tests-data/redteam/binding.toml"),
    ),
    (
        "pipeline",
        include_str!("../../tests-data/redteam/pipeline.toml"),
    ),
    (
        "aliases",
        include_str!("../../tests-data/redteam/aliases.toml"),
    ),
    (
        "programs",
        include_str!("../../tests-data/redteam/programs.toml"),
    ),
    (
        "nesting",
        include_str!("../../tests-data/redteam/nesting.toml"),
    ),
    (
        "remote",
        include_str!("../../tests-data/redteam/remote.toml"),
    ),
    (
        "unicode",
        include_str!("../../tests-data/redteam/unicode.toml"),
    ),
    (
        "expressions",
        include_str!("../../tests-data/redteam/expressions.toml"),
    ),
    ("trust", include_str!("../../tests-data/redteam/trust.toml")),
    (
        "everyday",
        include_str!("../../tests-data/redteam/everyday.toml"),
    ),
];

/// Test-only roles (file name, text): shapes the shipped roles lack.
const FIXTURES: &[(&str, &str)] = &[
    (
        "trusted-runner.toml",
        include_str!("../../tests-data/roles/trusted-runner.toml"),
    ),
    (
        "pipeline-restarter.toml",
        include_str!("../../tests-data/roles/pipeline-restarter.toml"),
    ),
    (
        "local-reader.toml",
        include_str!("../../tests-data/roles/local-reader.toml"),
    ),
    (
        "log-reader.toml",
        include_str!("../../tests-data/roles/log-reader.toml"),
    ),
    (
        "self-restarter.toml",
        include_str!("../../tests-data/roles/self-restarter.toml"),
    ),
    (
        "wide-denylist.toml",
        include_str!("../../tests-data/roles/wide-denylist.toml"),
    ),
];

/// One family file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyDoc {
    case: Vec<Case>,
}

/// One row.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// A person from `persons.rs` (who, on which host, under which policy set).
    who: String,
    /// `ps` (script text over PSRP), `cmd` (a line in a WinRS cmd shell), `pipeline`
    /// (PSRP command objects), `stdin` (lines sent to `program`), `meta`
    /// (GET_COMMAND_METADATA names, one per line), `open` (`cmd` or a configuration).
    shell: String,
    /// The text; `<<enc:...>>` is replaced by the UTF-16LE base64 of `...` (what
    /// `-EncodedCommand` takes) and `<<b64:...>>` by the UTF-8 base64 of `...`.
    #[serde(default)]
    input: String,
    /// For `pipeline`: statements, each a list of commands.
    #[serde(default)]
    pipeline: Vec<Vec<CommandDoc>>,
    /// For `stdin`: the command line that started the program.
    #[serde(default)]
    program: String,
    /// `allow` or `deny`.
    expect: String,
    /// What would run on the host and why that is the expected decision; for everyday
    /// rows, the engine feature the row depends on, when it is not today's engine.
    why: String,
}

/// One PSRP command object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandDoc {
    cmd: String,
    #[serde(default)]
    script: bool,
    #[serde(default)]
    args: Vec<ArgDoc>,
}

/// One PSRP argument: `n` is the name (absent: positional); exactly one value key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgDoc {
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    num: Option<i64>,
    #[serde(default)]
    b: Option<bool>,
    #[serde(default)]
    list: Option<Vec<String>>,
    #[serde(default)]
    sb: Option<String>,
    #[serde(default)]
    secure: bool,
    #[serde(default)]
    other: Option<String>,
}

fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);
        let (body, utf16) = if let Some(b) = tail.strip_prefix("<<enc:") {
            (b, true)
        } else if let Some(b) = tail.strip_prefix("<<b64:") {
            (b, false)
        } else {
            out.push_str("<<");
            rest = &tail[2..];
            continue;
        };
        let end = body.find(">>").expect("unterminated <<enc: or <<b64:");
        let payload = &body[..end];
        let bytes: Vec<u8> = if utf16 {
            payload.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else {
            payload.as_bytes().to_vec()
        };
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        rest = &body[end + 2..];
    }
    out.push_str(rest);
    out
}

fn arg(a: &ArgDoc) -> InvokedArg {
    let value = if let Some(s) = &a.s {
        ArgValue::String(expand(s))
    } else if let Some(n) = a.num {
        ArgValue::Number(n.to_string())
    } else if let Some(b) = a.b {
        ArgValue::Bool(b)
    } else if let Some(l) = &a.list {
        ArgValue::List(l.iter().map(|s| ArgValue::String(s.clone())).collect())
    } else if let Some(sb) = &a.sb {
        ArgValue::ScriptBlock(sb.clone())
    } else if a.secure {
        ArgValue::Secure
    } else if let Some(o) = &a.other {
        ArgValue::Other(o.clone())
    } else {
        ArgValue::Null
    };
    InvokedArg {
        name: a.n.clone(),
        value,
    }
}

/// The policy sets cases run against: the shipped directory, and each fixture file on
/// its own (with the error text when it does not load).
struct Engines {
    shipped: Engine,
    fixtures: BTreeMap<&'static str, Result<Engine, String>>,
}

fn engines() -> Engines {
    let fixtures = FIXTURES
        .iter()
        .map(|(name, text)| {
            let source = PolicySource {
                path: (*name).to_string(),
                text: (*text).to_string(),
            };
            let engine = Engine::from_sources(&[source]).map_err(|e| e.to_string());
            (*name, engine)
        })
        .collect();
    Engines {
        shipped: load_dir(&policies_dir()).unwrap(),
        fixtures,
    }
}

/// The decision, or why the case could not be run (a fixture that does not load).
fn decide(engines: &Engines, who: &Person, case: &Case) -> Result<Decision, String> {
    let engine = match who.fixture {
        None => &engines.shipped,
        Some(f) => engines.fixtures[f]
            .as_ref()
            .map_err(|_| format!("fixture {f} does not load (see above)"))?,
    };
    let subject = Subject {
        user: who.user.into(),
        groups: who.groups.iter().map(|g| g.to_string()).collect(),
    };
    let labels: Vec<String> = who.labels.iter().map(|l| l.to_string()).collect();
    let host = HostRef {
        name: who.host,
        labels: &labels,
    };
    let input = expand(&case.input);
    let inv;
    let names: Vec<String>;
    let op = match case.shell.as_str() {
        "cmd" => Operation::CmdLine {
            command: &input,
            arguments: &[],
            skip_cmd_shell: false,
        },
        "ps" => {
            inv = Invocation {
                client_input: false,
                statements: vec![vec![InvokedCommand {
                    name: input.clone(),
                    is_script: true,
                    args: vec![],
                }]],
            };
            Operation::Pipeline(&inv)
        }
        "pipeline" => {
            inv = Invocation {
                client_input: false,
                statements: case
                    .pipeline
                    .iter()
                    .map(|s| {
                        s.iter()
                            .map(|c| InvokedCommand {
                                name: expand(&c.cmd),
                                is_script: c.script,
                                args: c.args.iter().map(arg).collect(),
                            })
                            .collect()
                    })
                    .collect(),
            };
            Operation::Pipeline(&inv)
        }
        "stdin" => Operation::CmdStdin {
            program: &case.program,
            data: &input,
        },
        "meta" => {
            names = input.lines().map(str::to_string).collect();
            Operation::CommandMetadata { names: &names }
        }
        "open" if input == "cmd" => Operation::OpenShell {
            kind: ShellKind::Cmd,
        },
        "open" => Operation::OpenShell {
            kind: ShellKind::Psrp {
                configuration: &input,
            },
        },
        other => return Err(format!("unknown shell '{other}'")),
    };
    Ok(engine.decide(&subject, &host, &op))
}

fn load_family(name: &str, text: &str) -> Vec<Case> {
    let doc: FamilyDoc = toml::from_str(text).unwrap_or_else(|e| panic!("{name}.toml: {e}"));
    doc.case
}

/// Per-family counts.
#[derive(Default)]
struct Tally {
    deny_cases: usize,
    allow_cases: usize,
    /// Expected deny, got allow.
    wrongly_allowed: usize,
    /// Expected allow, got deny.
    wrongly_denied: usize,
    /// The case could not be judged (fixture role does not load).
    not_run: usize,
}

/// One line, with invisible characters (NBSP, zero-width, separators) made visible.
fn short(s: &str) -> String {
    let mut one_line = String::with_capacity(s.len());
    for c in s.chars() {
        let invisible = c != ' '
            && (c.is_whitespace()
                || c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}'));
        if invisible {
            one_line.push_str(&c.escape_unicode().to_string());
        } else {
            one_line.push(c);
        }
    }
    if one_line.chars().count() > 110 {
        format!("{}...", one_line.chars().take(107).collect::<String>())
    } else {
        one_line
    }
}

fn describe(case: &Case) -> String {
    match case.shell.as_str() {
        "pipeline" => {
            let statements: Vec<String> = case
                .pipeline
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|c| {
                            let args: Vec<String> = c
                                .args
                                .iter()
                                .map(|a| {
                                    let v = arg(a).value;
                                    match &a.n {
                                        Some(n) => format!("-{n} {v:?}"),
                                        None => format!("{v:?}"),
                                    }
                                })
                                .collect();
                            format!("{} {}", c.cmd, args.join(" ")).trim().to_string()
                        })
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            format!("[{}]", statements.join("; "))
        }
        "stdin" => format!("{} <<< {}", case.program, case.input),
        _ => case.input.clone(),
    }
}

#[test]
fn red_team_suite() {
    let engines = engines();
    let mut tallies: BTreeMap<usize, (&str, Tally)> = BTreeMap::new();
    let mut mismatches: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (index, (family, text)) in FAMILIES.iter().enumerate() {
        let (_, tally) = tallies.entry(index).or_insert((family, Tally::default()));
        for case in load_family(family, text) {
            let who = person(&case.who).unwrap_or_else(|| panic!("unknown person '{}'", case.who));
            let expect_allow = match case.expect.as_str() {
                "allow" => true,
                "deny" => false,
                other => panic!("{family}: expect must be allow or deny, not '{other}'"),
            };
            if expect_allow {
                tally.allow_cases += 1;
            } else {
                tally.deny_cases += 1;
            }
            let line = |got: &str| {
                format!(
                    "  [{}/{}] {} -> {got}\n      why: {}",
                    case.who,
                    case.shell,
                    short(&describe(&case)),
                    short(&case.why)
                )
            };
            match decide(&engines, &who, &case) {
                Err(e) => {
                    tally.not_run += 1;
                    mismatches
                        .entry(family)
                        .or_default()
                        .push(line(&format!("NOT RUN: {}", short(&e))));
                }
                Ok(d) if d.is_allow() == expect_allow => {}
                Ok(d) => {
                    if expect_allow {
                        tally.wrongly_denied += 1;
                    } else {
                        tally.wrongly_allowed += 1;
                    }
                    let got = match d {
                        Decision::Allow { role } => format!("ALLOWED by '{role}'"),
                        Decision::Deny { reason, .. } => format!("DENIED: {}", short(&reason)),
                    };
                    mismatches.entry(family).or_default().push(line(&got));
                }
            }
        }
    }
    let mut report = String::new();
    for (file, engine) in &engines.fixtures {
        if let Err(e) = engine {
            writeln!(report, "fixture {file} does not load: {}", short(e)).unwrap();
        }
    }
    writeln!(
        report,
        "{:<12} {:>6} {:>9} {:>6} {:>9} {:>8}",
        "family", "deny", "wrong-A", "allow", "wrong-D", "not-run"
    )
    .unwrap();
    let mut total = Tally::default();
    for (family, t) in tallies.values() {
        writeln!(
            report,
            "{family:<12} {:>6} {:>9} {:>6} {:>9} {:>8}",
            t.deny_cases, t.wrongly_allowed, t.allow_cases, t.wrongly_denied, t.not_run
        )
        .unwrap();
        total.deny_cases += t.deny_cases;
        total.allow_cases += t.allow_cases;
        total.wrongly_allowed += t.wrongly_allowed;
        total.wrongly_denied += t.wrongly_denied;
        total.not_run += t.not_run;
    }
    writeln!(
        report,
        "{:<12} {:>6} {:>9} {:>6} {:>9} {:>8}",
        "total",
        total.deny_cases,
        total.wrongly_allowed,
        total.allow_cases,
        total.wrongly_denied,
        total.not_run
    )
    .unwrap();
    for (family, lines) in &mismatches {
        writeln!(report, "\n== {family}: {} mismatches", lines.len()).unwrap();
        for l in lines {
            writeln!(report, "{l}").unwrap();
        }
    }
    println!("{report}");
    let failed = total.wrongly_allowed + total.wrongly_denied + total.not_run;
    assert!(
        failed == 0,
        "{failed} of {} red-team cases mismatch (see the report above)",
        total.deny_cases + total.allow_cases
    );
}

/// The suite's shape, checked apart from the decisions so it holds while the engine
/// catches up: enough cases, every family present, every row explained, no duplicates.
#[test]
fn red_team_suite_shape() {
    let mut attacks = 0;
    let mut everyday = 0;
    let mut seen = std::collections::HashSet::new();
    for (family, text) in FAMILIES {
        let cases = load_family(family, text);
        assert!(!cases.is_empty(), "{family} has no cases");
        for case in &cases {
            assert!(
                person(&case.who).is_some(),
                "{family}: unknown person '{}'",
                case.who
            );
            // An attack row says what would run; an everyday row may just name the task.
            let min = if case.expect == "deny" { 12 } else { 3 };
            assert!(
                case.why.trim().chars().count() >= min,
                "{family}: case {:?} does not say why",
                describe(case)
            );
            assert!(
                matches!(case.expect.as_str(), "allow" | "deny"),
                "{family}: {:?}",
                case.expect
            );
            let key = (
                case.who.clone(),
                case.shell.clone(),
                describe(case),
                case.program.clone(),
            );
            assert!(
                seen.insert(key),
                "{family}: duplicate case {:?}",
                describe(case)
            );
            match (*family, case.expect.as_str()) {
                ("everyday", "allow") => everyday += 1,
                ("everyday", _) => panic!("everyday case {:?} must expect allow", case.input),
                (_, "deny") => attacks += 1,
                _ => {}
            }
        }
    }
    assert!(attacks >= 400, "only {attacks} attack cases");
    assert!(everyday >= 150, "only {everyday} everyday cases");
}

#[test]
fn expand_encodes_payloads() {
    assert_eq!(expand("x <<b64:hi>> y"), "x aGk= y");
    // UTF-16LE of "a" is 61 00.
    assert_eq!(expand("-enc <<enc:a>>"), "-enc YQA=");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(expand("<<enc:& {a}>>"))
        .unwrap();
    let utf16: Vec<u8> = "& {a}".encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(decoded, utf16);
    assert_eq!(expand("@{a=1} << x"), "@{a=1} << x");
}
