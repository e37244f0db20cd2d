//! Import of JEA role capability files (`.psrc`): `VisibleCmdlets`, `VisibleFunctions`
//! and `VisibleExternalCommands` become the same rule documents a TOML role uses. Keys
//! that only describe the file are ignored, keys whose effect the gateway cannot enforce
//! become warnings, and unknown keys are errors.

use crate::prelude::*;

use super::file::{CommandDoc, CommandRuleDoc, ParameterDoc};
use hopgate_pwsh::{parse_data_file, DataValue};

/// Keys that carry only metadata.
const METADATA_KEYS: &[&str] = &["guid", "author", "companyname", "copyright", "description"];

/// Keys JEA understands but whose effect happens on the host, not in the gateway.
const UNENFORCED_KEYS: &[&str] = &[
    "visiblealiases",
    "visibleproviders",
    "modulestoimport",
    "aliasdefinitions",
    "functiondefinitions",
    "variabledefinitions",
    "environmentvariables",
    "typestoprocess",
    "formatstoprocess",
    "assembliestoload",
    "scriptstoprocess",
];

/// What a `.psrc` file contributes to a role.
#[derive(Debug, Default)]
pub(crate) struct PsrcImport {
    pub(crate) cmdlets: Vec<CommandDoc>,
    pub(crate) functions: Vec<CommandDoc>,
    pub(crate) external: Vec<String>,
    /// Keys that were read but are not enforced by the gateway.
    pub(crate) warnings: Vec<String>,
}

/// Parses a role capability file.
pub(crate) fn import_psrc(text: &str) -> Result<PsrcImport, String> {
    let root = parse_data_file(text).map_err(|e| e.to_string())?;
    let DataValue::Table(entries) = root else {
        return Err("top level is not a hashtable".into());
    };
    let mut out = PsrcImport::default();
    for (key, value) in &entries {
        match key.to_ascii_lowercase().as_str() {
            "visiblecmdlets" => out.cmdlets.extend(commands(key, value)?),
            "visiblefunctions" => out.functions.extend(commands(key, value)?),
            "visibleexternalcommands" => {
                for item in value.items() {
                    out.external.push(string(key, item)?);
                }
            }
            k if METADATA_KEYS.contains(&k) => {}
            k if UNENFORCED_KEYS.contains(&k) => {
                out.warnings
                    .push(format!("key '{key}' is not enforced by the gateway"));
            }
            _ => return Err(format!("unknown key '{key}'")),
        }
    }
    Ok(out)
}

fn string(key: &str, value: &DataValue) -> Result<String, String> {
    match value {
        DataValue::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "'{key}' holds a {} where a string was expected",
            other.kind()
        )),
    }
}

fn commands(key: &str, value: &DataValue) -> Result<Vec<CommandDoc>, String> {
    let mut out = Vec::new();
    for item in value.items() {
        match item {
            DataValue::Str(name) => out.push(CommandDoc::Name(name.clone())),
            DataValue::Table(fields) => out.push(CommandDoc::Rule(command_rule(key, fields)?)),
            other => return Err(format!("'{key}' holds a {}", other.kind())),
        }
    }
    Ok(out)
}

fn command_rule(key: &str, fields: &[(String, DataValue)]) -> Result<CommandRuleDoc, String> {
    let mut name = None;
    let mut parameters = None;
    for (k, v) in fields {
        match k.to_ascii_lowercase().as_str() {
            "name" => name = Some(string(k, v)?),
            "parameters" => {
                let mut list = Vec::new();
                for p in v.items() {
                    let DataValue::Table(pf) = p else {
                        return Err(format!("'{key}' parameter entry is a {}", p.kind()));
                    };
                    list.push(parameter(key, pf)?);
                }
                parameters = Some(list);
            }
            _ => return Err(format!("unknown key '{k}' in a {key} entry")),
        }
    }
    let name = name.ok_or_else(|| format!("a {key} entry has no Name"))?;
    Ok(CommandRuleDoc {
        name,
        parameters,
        positional: None,
        pipeline_input: false,
    })
}

fn parameter(key: &str, fields: &[(String, DataValue)]) -> Result<ParameterDoc, String> {
    let mut name = None;
    let mut validate_set = None;
    let mut validate_pattern = None;
    for (k, v) in fields {
        match k.to_ascii_lowercase().as_str() {
            "name" => name = Some(string(k, v)?),
            "validateset" => {
                let mut set = Vec::new();
                for item in v.items() {
                    set.push(match item {
                        DataValue::Str(s) | DataValue::Number(s) => s.clone(),
                        other => return Err(format!("ValidateSet holds a {}", other.kind())),
                    });
                }
                validate_set = Some(set);
            }
            "validatepattern" => validate_pattern = Some(string(k, v)?),
            _ => return Err(format!("unknown key '{k}' in a {key} parameter entry")),
        }
    }
    let name = name.ok_or_else(|| format!("a {key} parameter entry has no Name"))?;
    Ok(ParameterDoc {
        name,
        validate_set,
        validate_pattern,
    })
}
