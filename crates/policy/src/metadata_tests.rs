//! The shipped cmdlet metadata (`data/cmdlets.json`): facts checked by hand against the
//! cmdlet reference and PowerShell's source, and the invariants the binder relies on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::{BTreeMap, HashMap, HashSet};

use super::metadata::{CommandMeta, MetadataSet, ParamMeta, SetMeta, ALL_SETS};
use super::pattern::fold;

fn shipped() -> &'static MetadataSet {
    let set = MetadataSet::builtin();
    assert!(!set.is_empty(), "data/cmdlets.json does not parse");
    set
}

fn command(name: &str) -> &'static CommandMeta {
    shipped()
        .get(&fold(name))
        .unwrap_or_else(|| panic!("{name} is not in the shipped metadata"))
}

fn param<'a>(command: &'a CommandMeta, name: &str) -> &'a ParamMeta {
    command
        .params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("{} has no -{name}", command.name))
}

/// The parameter's entry for a set: its own, or its (All) entry.
fn in_set<'a>(param: &'a ParamMeta, set: &str) -> &'a SetMeta {
    param
        .sets
        .iter()
        .find(|s| s.name == set)
        .or_else(|| param.sets.iter().find(|s| s.name == ALL_SETS))
        .unwrap_or_else(|| panic!("-{} is not in set {set}", param.name))
}

fn has_aliases(param: &ParamMeta, expected: &[&str]) {
    for a in expected {
        assert!(
            param.aliases.iter().any(|x| x.eq_ignore_ascii_case(a)),
            "-{} lacks alias {a}: {:?}",
            param.name,
            param.aliases
        );
    }
}

#[test]
fn get_hotfix_computer_name_aliases() {
    let cn = param(command("Get-HotFix"), "ComputerName");
    assert_eq!(cn.aliases, ["CN", "__Server", "IPAddress"]);
    assert!(!cn.switch);
}

#[test]
fn restart_service_binds_name_and_input_object() {
    let c = command("Restart-Service");
    let name = param(c, "Name");
    has_aliases(name, &["ServiceName"]);
    let default = in_set(name, "Default");
    assert_eq!(default.position, Some(0));
    assert!(default.by_value && default.by_property_name);
    let input = in_set(param(c, "InputObject"), "InputObject");
    assert!(input.by_value);
    let force = param(c, "Force");
    assert!(force.switch);
    assert_eq!(force.type_name, "SwitchParameter");
}

#[test]
fn restart_computer_computer_name_is_positional() {
    let cn = param(command("Restart-Computer"), "ComputerName");
    has_aliases(cn, &["CN", "__SERVER", "Server", "IPAddress"]);
    assert!(cn.sets.iter().all(|s| s.position == Some(0)), "{cn:?}");
    assert!(command("Stop-Computer")
        .params
        .iter()
        .any(|p| p.name == "ComputerName"));
}

#[test]
fn get_child_item_positions() {
    let c = command("Get-ChildItem");
    assert_eq!(in_set(param(c, "Path"), "Items").position, Some(0));
    assert_eq!(in_set(param(c, "Filter"), "Items").position, Some(1));
    assert!(param(c, "Include")
        .sets
        .iter()
        .all(|s| s.position.is_none()));
    for alias in ["gci", "dir", "ls"] {
        assert_eq!(shipped().resolve_alias(alias), Some("get-childitem"));
    }
}

#[test]
fn invoke_expression_command_binds_by_value() {
    let c = command("Invoke-Expression");
    let command_param = in_set(param(c, "Command"), ALL_SETS);
    assert_eq!(command_param.position, Some(0));
    assert!(command_param.by_value);
    assert_eq!(param(c, "Command").type_name, "String");
    assert_eq!(shipped().resolve_alias("iex"), Some("invoke-expression"));
}

#[test]
fn invoke_command_script_block_follows_the_target() {
    // The reference says Position 0 everywhere; InvokeCommandCommand.cs says 1 in the
    // remote sets (the generator's override table).
    let c = command("Invoke-Command");
    let sb = param(c, "ScriptBlock");
    assert_eq!(in_set(sb, "InProcess").position, Some(0));
    assert_eq!(in_set(sb, "ComputerName").position, Some(1));
    assert_eq!(
        in_set(param(c, "ComputerName"), "ComputerName").position,
        Some(0)
    );
}

#[test]
fn remaining_arguments() {
    assert!(in_set(param(command("Write-Output"), "InputObject"), ALL_SETS).remaining);
    assert!(in_set(param(command("Write-Host"), "Object"), ALL_SETS).remaining);
    let foreach = command("ForEach-Object");
    assert!(in_set(param(foreach, "RemainingScripts"), "ScriptBlockSet").remaining);
    assert!(!in_set(param(command("Invoke-Command"), "ArgumentList"), ALL_SETS).remaining);
}

#[test]
fn module_aliases() {
    let cim = [
        ("icim", "invoke-cimmethod"),
        ("gcim", "get-ciminstance"),
        ("scim", "set-ciminstance"),
        ("ncim", "new-ciminstance"),
        ("rcim", "remove-ciminstance"),
        ("gcls", "get-cimclass"),
        ("gcms", "get-cimsession"),
        ("ncms", "new-cimsession"),
        ("rcms", "remove-cimsession"),
        ("rcie", "register-cimindicationevent"),
    ];
    for (alias, target) in cim {
        assert_eq!(shipped().resolve_alias(alias), Some(target), "{alias}");
    }
    assert_eq!(shipped().resolve_alias("%"), Some("foreach-object"));
    assert_eq!(shipped().resolve_alias("gsv"), Some("get-service"));
}

#[test]
fn windows_server_modules_are_present() {
    for name in [
        "Get-DnsServerResourceRecord",
        "Get-ADUser",
        "Get-NetIPAddress",
        "Register-ScheduledTask",
        "Get-Volume",
        "Get-SmbShare",
        "Get-NetFirewallRule",
        "Get-MpPreference",
        "Get-NetAdapter",
    ] {
        command(name);
    }
    let identity = in_set(param(command("Get-ADUser"), "Identity"), "Identity");
    assert_eq!(identity.position, Some(0));
    assert!(identity.by_value);
}

#[test]
fn commands_per_module_above_a_floor() {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for c in shipped().iter() {
        *counts.entry(c.module.as_str()).or_default() += 1;
    }
    let floors = [
        ("Microsoft.PowerShell.Management", 80),
        ("Microsoft.PowerShell.Utility", 95),
        ("Microsoft.PowerShell.Core", 55),
        ("Microsoft.PowerShell.Security", 12),
        ("CimCmdlets", 14),
        ("NetTCPIP", 30),
        ("DnsServer", 120),
        ("ActiveDirectory", 140),
        ("ScheduledTasks", 15),
        ("Storage", 130),
        ("SmbShare", 50),
        ("NetSecurity", 90),
        ("Defender", 10),
        ("NetAdapter", 60),
    ];
    for (module, floor) in floors {
        let n = counts.get(module).copied().unwrap_or(0);
        assert!(
            n >= floor,
            "{module}: {n} commands, expected at least {floor}"
        );
    }
}

#[test]
fn every_parameter_is_well_formed() {
    let mut problems = Vec::new();
    for c in shipped().iter() {
        let mut names: HashMap<String, &str> = HashMap::new();
        for p in &c.params {
            if p.sets.is_empty() {
                problems.push(format!("{} -{}: no parameter set", c.name, p.name));
            }
            if p.switch != (p.type_name == "SwitchParameter") {
                problems.push(format!(
                    "{} -{}: switch {} but type {}",
                    c.name, p.name, p.switch, p.type_name
                ));
            }
            // A name or alias must name one parameter only (PowerShell refuses to load a
            // command where two parameters share one).
            for n in std::iter::once(&p.name).chain(&p.aliases) {
                if let Some(other) = names.insert(fold(n), &p.name) {
                    problems.push(format!("{}: '{n}' names -{other} and -{}", c.name, p.name));
                }
            }
            let mut seen = HashSet::new();
            for s in &p.sets {
                if !seen.insert(s.name.as_str()) {
                    problems.push(format!("{} -{}: set {} twice", c.name, p.name, s.name));
                }
            }
        }
        problems.extend(position_clashes(c));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Two parameters with one position in one set (an (All) entry counts in every set).
fn position_clashes(c: &CommandMeta) -> Vec<String> {
    let mut sets: Vec<&str> = c
        .params
        .iter()
        .flat_map(|p| p.sets.iter().map(|s| s.name.as_str()))
        .filter(|s| *s != ALL_SETS)
        .collect();
    sets.sort_unstable();
    sets.dedup();
    if sets.is_empty() {
        sets.push(ALL_SETS);
    }
    let mut out = Vec::new();
    for set in sets {
        let mut held: BTreeMap<u32, &str> = BTreeMap::new();
        for p in &c.params {
            let entry = p
                .sets
                .iter()
                .find(|s| s.name == set)
                .or_else(|| p.sets.iter().find(|s| s.name == ALL_SETS));
            if let Some(pos) = entry.and_then(|s| s.position) {
                if let Some(other) = held.insert(pos, &p.name) {
                    out.push(format!(
                        "{} set {set}: position {pos} held by -{other} and -{}",
                        c.name, p.name
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn command_aliases_name_one_command() {
    let mut owner: HashMap<String, &str> = HashMap::new();
    let mut problems = Vec::new();
    for c in shipped().iter() {
        if let Some(default) = &c.default_set {
            assert_ne!(default, ALL_SETS, "{}", c.name);
        }
        for a in &c.aliases {
            if shipped().get(&fold(a)).is_some() {
                problems.push(format!("alias {a} of {} is a command name", c.name));
            }
            if let Some(other) = owner.insert(fold(a), &c.name) {
                problems.push(format!("alias {a} names {other} and {}", c.name));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
