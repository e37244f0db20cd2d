//! Ansible's execution payload, as the gateway judges it.
//!
//! Ansible runs every Windows module the same way (ansible-core
//! `executor/powershell/module_manifest.py`): the bootstrap wrapper
//! (`bootstrap_wrapper.ps1`, as `powershell -EncodedCommand` on winrm, as the pipeline's
//! script on psrp) reads its input: a JSON line naming the exec wrapper and carrying its
//! code, a line of four NUL characters, then the manifest JSON: `scripts` (name → base64
//! code: the module, its module_utils, the wrappers), `actions` (which scripts run, in
//! order, with their parameters; `module_wrapper.ps1`'s `Script` names the module and its
//! `Variables` carry `complex_args`, the module's arguments). Anything after the manifest
//! line is input for the last action (a file being copied): data.
//!
//! Every script in the payload must be trusted by content (else it is analysed like any
//! script, which Ansible's code does not survive under a role with deny rules). The
//! module is named by the trusted file its code hashes to (a `win_ping` whose code was
//! edited is not `win_ping`), never by the name the payload gives it; its arguments are
//! judged against `[role.ansible]`.

use crate::prelude::*;

use alloc::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::analyse::{Analysis, Item};
use super::pattern::fold;

/// The line separating the exec wrapper from the manifest.
const SEPARATOR: &str = "\0\0\0\0";

/// A module's identity and arguments, as found in a payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModuleCall {
    /// Fully qualified name from the trusted file its code is (`ansible.windows.win_ping`).
    pub(crate) name: String,
    /// `complex_args`: the module's arguments plus Ansible's `_ansible_*` settings.
    pub(crate) args: serde_json::Map<String, Value>,
    /// What the record shows of it.
    pub(crate) run: crate::ModuleRun,
}

#[derive(Deserialize)]
struct ExecWrapper {
    #[serde(default)]
    script: String,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    scripts: BTreeMap<String, ScriptInfo>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct ScriptInfo {
    #[serde(default)]
    script: String,
}

#[derive(Deserialize)]
struct Action {
    name: String,
    #[serde(default)]
    params: serde_json::Map<String, Value>,
}

/// How many bytes of `data` the gateway needs to judge a payload: through the end of the
/// manifest line. None while it is incomplete (`ended`: the stream is over, so what came
/// is all there is).
pub fn payload_len(data: &str, ended: bool) -> Option<usize> {
    let sep = data.find(SEPARATOR)?;
    let after = sep + SEPARATOR.len();
    let rest = data.get(after..)?;
    let rest_start = after + rest.len() - rest.trim_start_matches(['\r', '\n']).len();
    match data.get(rest_start..)?.find('\n') {
        Some(i) => Some(rest_start + i + 1),
        None if ended => Some(data.len()),
        None => None,
    }
}

/// Judges a whole payload (up to the end of its manifest line) into `analysis`.
pub(crate) fn payload(analysis: &mut Analysis<'_>, data: &str) {
    let Some(sep) = data.find(SEPARATOR) else {
        analysis.opaque_item("Ansible payload without its manifest");
        return;
    };
    let (head, tail) = data.split_at(sep);
    let manifest_text = tail.get(SEPARATOR.len()..).unwrap_or_default().trim();
    let manifest_text = manifest_text.lines().next().unwrap_or_default();
    let exec: ExecWrapper = match serde_json::from_str(head.trim()) {
        Ok(e) => e,
        Err(_) => {
            analysis.opaque_item("Ansible payload whose exec wrapper is not JSON");
            return;
        }
    };
    analysis.script(&exec.script, "Ansible exec_wrapper.ps1", 1);
    let manifest: Manifest = match serde_json::from_str(manifest_text) {
        Ok(m) => m,
        Err(_) => {
            analysis.opaque_item("Ansible payload whose manifest is not JSON");
            return;
        }
    };
    let mut texts: BTreeMap<&str, String> = BTreeMap::new();
    for (name, info) in &manifest.scripts {
        let Some(text) = base64::engine::general_purpose::STANDARD
            .decode(info.script.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            analysis.opaque_item(format!("Ansible script '{name}' is not base64 UTF-8"));
            continue;
        };
        analysis.script(&text, &format!("Ansible script '{name}'"), 1);
        texts.insert(name.as_str(), text);
    }
    // become_wrapper.ps1 runs the actions after it as another user.
    let become_user = manifest
        .actions
        .iter()
        .find(|a| a.name == "become_wrapper.ps1")
        .map(|a| {
            a.params
                .get("BecomeUser")
                .and_then(Value::as_str)
                .unwrap_or("SYSTEM")
                .to_string()
        });
    for action in &manifest.actions {
        if !texts.contains_key(action.name.as_str()) {
            analysis.opaque_item(format!(
                "Ansible action '{}' runs a script the payload does not carry",
                action.name
            ));
        }
        // What the action runs is known by its content, never by the name the payload
        // gives it: a trusted file's name, or nothing (then it was analysed above).
        let Some(runs) = texts
            .get(action.name.as_str())
            .and_then(|t| analysis.trusted_path(t))
            .map(|p| p.rsplit('/').next().unwrap_or_default().to_string())
        else {
            continue;
        };
        if RUN_INPUT_AS_CODE.contains(&runs.as_str()) {
            // Run as an action, these would take the data after the manifest as another
            // payload that nobody judged: only a role accepting any code runs that.
            analysis.opaque_item(format!(
                "Ansible action '{runs}' would run the data after the manifest as code"
            ));
            continue;
        }
        if runs != "module_wrapper.ps1" {
            analysis.push_item(Item::AnsibleAction(runs));
            continue;
        }
        let script = action.params.get("Script").and_then(Value::as_str);
        let Some(code) = script.and_then(|s| texts.get(s)) else {
            analysis.opaque_item("Ansible module_wrapper.ps1 without its module");
            continue;
        };
        let Some(name) = analysis.trusted_path(code).and_then(|p| module_name(&p)) else {
            // Trusted or not, what it runs is no module of a trusted collection: only a
            // role that accepts any code may run it.
            analysis.opaque_item("Ansible module_wrapper.ps1 running a script that is no module");
            continue;
        };
        let args = complex_args(&action.params).unwrap_or_default();
        analysis.decoded_text("Ansible module", &describe(&name, &args));
        let run = crate::ModuleRun {
            name: name.clone(),
            args: Value::Object(redacted(&args)).to_string(),
            check_mode: args.get("_ansible_check_mode").and_then(Value::as_bool) == Some(true),
            become_user: become_user.clone(),
        };
        analysis.push_item(Item::AnsibleModule(ModuleCall { name, args, run }));
    }
}

/// `Variables[Name=complex_args].Value` of module_wrapper.ps1's parameters.
fn complex_args(params: &serde_json::Map<String, Value>) -> Option<serde_json::Map<String, Value>> {
    params
        .get("Variables")?
        .as_array()?
        .iter()
        .find(|v| v.get("Name").and_then(Value::as_str) == Some("complex_args"))?
        .get("Value")?
        .as_object()
        .cloned()
}

/// `ansible.windows.win_ping` from a trusted path ending in
/// `<collection>/plugins/modules/<name>.ps1`, where the collection is named by
/// `ansible_collections/<ns>/<collection>` (the installed layout) or by a directory
/// called `<ns>.<collection>` (a link to it, as the README suggests).
pub(crate) fn module_name(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let mut rev = parts.iter().rev();
    let stem = rev.next()?.strip_suffix(".ps1")?;
    if rev.next() != Some(&"modules") || rev.next() != Some(&"plugins") {
        return None;
    }
    let coll = rev.next()?;
    let above = rev.next();
    if rev.next() == Some(&"ansible_collections") {
        return Some(format!("{}.{coll}.{stem}", above?));
    }
    let mut dotted = coll.split('.');
    match (dotted.next(), dotted.next(), dotted.next()) {
        (Some(ns), Some(c), None) if !ns.is_empty() && !c.is_empty() => {
            Some(format!("{ns}.{c}.{stem}"))
        }
        _ => None,
    }
}

/// Argument names whose values never reach the record.
fn secret_name(name: &str) -> bool {
    let n = fold(name);
    [
        "password",
        "passwd",
        "secret",
        "token",
        "key",
        "credential",
        "pass",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The module's own arguments for the record: `_ansible_*` settings left out, every
/// value of a `no_log` run and of password-like arguments replaced.
fn redacted(args: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let no_log = args.get("_ansible_no_log").and_then(Value::as_bool) == Some(true);
    args.iter()
        .filter(|(k, _)| !k.starts_with("_ansible_"))
        .map(|(k, v)| {
            let v = if no_log || secret_name(k) {
                Value::String("********".into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// `name arg=value ...` for the record: Ansible's own settings left out, `no_log`
/// payloads and password-like arguments redacted.
pub(crate) fn describe(name: &str, args: &serde_json::Map<String, Value>) -> String {
    let no_log = args.get("_ansible_no_log").and_then(Value::as_bool) == Some(true);
    let mut out = String::from(name);
    for (k, v) in args {
        if k.starts_with("_ansible_") {
            continue;
        }
        out.push(' ');
        out.push_str(k);
        out.push('=');
        if no_log || secret_name(k) {
            out.push_str("********");
        } else {
            match v {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            }
        }
    }
    if args.get("_ansible_check_mode").and_then(Value::as_bool) == Some(true) {
        out.push_str(" (check mode)");
    }
    out
}

/// True when `program` is `powershell ... -EncodedCommand <b64>` whose script is a trusted
/// `bootstrap_wrapper.ps1`: its stdin is an Ansible payload, code to judge whole.
pub(crate) fn is_bootstrap(trust: &super::trust::TrustIndex, program: &str) -> bool {
    let mut words = program.split_whitespace();
    let leaf = words
        .next()
        .map(|w| fold(w.rsplit(['\\', '/']).next().unwrap_or(w)));
    if !matches!(
        leaf.as_deref(),
        Some("powershell" | "powershell.exe" | "pwsh" | "pwsh.exe")
    ) {
        return false;
    }
    let mut encoded = None;
    while let Some(w) = words.next() {
        let f = fold(w);
        if matches!(f.as_str(), "-encodedcommand" | "-enc" | "-e" | "-ec") {
            encoded = words.next();
        }
    }
    let Some(script) = encoded
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|bytes| {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .filter_map(|c| <[u8; 2]>::try_from(c).ok())
                .map(u16::from_le_bytes)
                .collect();
            String::from_utf16(&units).ok()
        })
    else {
        return false;
    };
    is_bootstrap_text(trust, &script)
}

/// True when `script` is a trusted `bootstrap_wrapper.ps1`.
pub(crate) fn is_bootstrap_text(trust: &super::trust::TrustIndex, script: &str) -> bool {
    trust
        .lookup(script)
        .is_some_and(|(_, k)| k.path.rsplit('/').next() == Some("bootstrap_wrapper.ps1"))
}

/// ansible-core scripts that run their input as code (the payload's own entry points).
const RUN_INPUT_AS_CODE: [&str; 2] = ["bootstrap_wrapper.ps1", "exec_wrapper.ps1"];

/// Wrappers any role that trusts ansible-core may run around a module.
const MODULE_WRAPPERS: [&str; 3] = [
    "become_wrapper.ps1",
    "async_wrapper.ps1",
    "async_watchdog.ps1",
];

/// An exec-wrapper action other than a module (a file transfer, a temporary directory)
/// against `[role.ansible]`: the wrappers around modules, and the actions it lists.
pub(crate) fn action_allowed(role: &super::role::Role, script: &str) -> Result<(), String> {
    let Some(rules) = &role.ansible else {
        return Ok(());
    };
    let f = fold(script);
    if MODULE_WRAPPERS.iter().any(|w| *w == f) || rules.actions.contains(&f) {
        return Ok(());
    }
    Err(format!(
        "Ansible action '{script}' is not allowed by role '{}' (its [role.ansible] actions)",
        role.name
    ))
}

/// A module call against a role's `[role.ansible]` rules.
pub(crate) fn module_allowed(role: &super::role::Role, call: &ModuleCall) -> Result<(), String> {
    let Some(rules) = &role.ansible else {
        // Trust is the gate: a role that trusts the collection and names no modules
        // runs any of its modules.
        return Ok(());
    };
    let name = fold(&call.name);
    let Some(rule) = rules.modules.iter().find(|m| m.name == name) else {
        return Err(format!(
            "Ansible module '{}' is not allowed by role '{}'",
            call.name, role.name
        ));
    };
    let Some(allowed) = &rule.args else {
        return Ok(());
    };
    for (k, v) in &call.args {
        if k.starts_with("_ansible_") {
            continue;
        }
        let Some(set) = allowed.get(&fold(k)) else {
            return Err(format!(
                "argument '{k}' of Ansible module '{}' is not allowed by role '{}'",
                call.name, role.name
            ));
        };
        let Some(set) = set else { continue };
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            _ => String::new(),
        };
        if !set.iter().any(|s| fold(s) == fold(&value)) {
            return Err(format!(
                "{k}={value} of Ansible module '{}' is not in its validate_set for role '{}'",
                call.name, role.name
            ));
        }
    }
    Ok(())
}

/// `[role.ansible]`, compiled.
#[derive(Debug, Default)]
pub(crate) struct AnsibleRules {
    pub(crate) modules: Vec<ModuleRule>,
    /// Exec-wrapper scripts run as actions of their own (`winrm_put_file.ps1` for
    /// `win_copy`, `powershell_mkdtemp.ps1`), folded.
    pub(crate) actions: Vec<String>,
}

/// One allowed module: its folded name and, when given, its allowed arguments (folded
/// name → allowed values, None for any value).
#[derive(Debug)]
pub(crate) struct ModuleRule {
    pub(crate) name: String,
    pub(crate) args: Option<BTreeMap<String, Option<Vec<String>>>>,
}

impl AnsibleRules {
    pub(crate) fn compile(doc: &super::file::AnsibleDoc) -> Result<Self, String> {
        let mut modules = Vec::new();
        for m in &doc.modules {
            let (name, args) = match m {
                super::file::ModuleDoc::Name(n) => (n, None),
                super::file::ModuleDoc::Rule { name, args } => (
                    name,
                    Some(
                        args.iter()
                            .map(|(k, a)| (fold(k), a.validate_set.clone()))
                            .collect(),
                    ),
                ),
            };
            if name.split('.').count() != 3 || name.split('.').any(str::is_empty) {
                return Err(format!(
                    "Ansible module '{name}' must be fully qualified (namespace.collection.module)"
                ));
            }
            modules.push(ModuleRule {
                name: fold(name),
                args,
            });
        }
        Ok(Self {
            modules,
            actions: doc.actions.iter().map(|a| fold(a.trim())).collect(),
        })
    }
}

/// What an Ansible module reported, read from its output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleResult {
    /// `changed`.
    pub changed: Option<bool>,
    /// `failed`.
    pub failed: Option<bool>,
    /// `msg`, when there is one.
    pub msg: Option<String>,
}

/// The result JSON a module printed (the last line of `output` that is a JSON object;
/// the exec wrapper prints exactly one), or None when there is none.
pub fn result_of(output: &str) -> Option<ModuleResult> {
    output.lines().rev().find_map(|line| {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        let v: serde_json::Map<String, Value> = serde_json::from_str(line).ok()?;
        Some(ModuleResult {
            changed: v.get("changed").and_then(Value::as_bool),
            failed: v.get("failed").and_then(Value::as_bool),
            msg: v.get("msg").and_then(Value::as_str).map(str::to_string),
        })
    })
}
