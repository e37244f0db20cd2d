//! The expressions family (issue 11 item 6) over the shipped example roles: script
//! blocks, hashtables and date values that `restricted` roles accept because the engine
//! can show they change nothing, the attempts to smuggle code through them, and the
//! messages that tell the operator what to change (item 7). Expected decisions follow
//! the role files and PowerShell's language (about_Operators, about_Script_Blocks,
//! about_Hash_Tables, about_Parsing), not the engine's output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::test_ops::{c, decide_op, named, pipe, pos, ps};
use super::test_support::{load_dir, policies_dir};
use super::*;

#[derive(Debug, Clone, Copy)]
struct Who {
    user: &'static str,
    groups: &'static [&'static str],
    host: &'static str,
    labels: &'static [&'static str],
}

/// demo: restricted, deny Stop-/Restart-Computer.
const ALICE: Who = Who {
    user: "alice@hopgate.test",
    groups: &[],
    host: "demo-host",
    labels: &[],
};
/// read-only-operator: restricted, deny remoting cmdlets and ComputerName/Session/CimSession.
const OPER: Who = Who {
    user: "carol",
    groups: &["operators"],
    host: "srv-01",
    labels: &[],
};
/// service-restarter: restricted, Name constrained by validate_set/pattern, no Get-Date.
const SVC: Who = Who {
    user: "dave",
    groups: &["svc-restarters"],
    host: "app-01",
    labels: &["app"],
};
/// demo and full-admin together: the full role would accept anything, demo's deny rules
/// still apply.
const ADMIN_OPS: Who = Who {
    user: "root",
    groups: &["hopgate-admins", "ops"],
    host: "demo-host",
    labels: &[],
};

#[derive(Debug)]
enum Op {
    /// Script text (a PSRP command with IsScript).
    Ps(&'static str),
    /// One PSRP pipeline of commands.
    Inv(Vec<InvokedCommand>),
}

fn sb(text: &str) -> ArgValue {
    ArgValue::ScriptBlock(text.into())
}

fn decide(engine: &Engine, who: Who, op: &Op) -> Decision {
    let op = match op {
        Op::Ps(script) => ps(script),
        Op::Inv(cmds) => pipe(vec![cmds.clone()]),
    };
    decide_op(engine, who.user, who.groups, who.host, who.labels, &op)
}

fn engine() -> Engine {
    load_dir(&policies_dir()).unwrap()
}

use Op::Ps;

/// Attempts to run code through the expression subset: every one must be denied.
/// (who, request, why it is denied).
fn red_team() -> Vec<(Who, Op, &'static str)> {
    vec![
        // ---- method calls ----
        (ALICE, Ps("Get-Process | ? { $_.Kill() }"), "method call in a Where-Object block"),
        (OPER, Ps("Get-Process | Where-Object { $_.Name -eq 'x' -or $_.Kill() }"), "method call after a comparison"),
        (ALICE, Ps("Get-Service | % { $_.Stop() }"), "method call in a ForEach-Object block"),
        (ALICE, Ps("Get-Process | Sort-Object { $_.Kill() }"), "method call in a Sort-Object block"),
        (ALICE, Ps("Get-Process | Select-Object @{n='x';e={$_.Kill()}}"), "method call in a calculated property"),
        (OPER, Ps("Get-Process | Group-Object { $_.Kill() }"), "method call in a Group-Object block"),
        (ALICE, Ps("Get-Process | ? { $_.'Kill'() }"), "quoted method name is still a call"),
        (ALICE, Ps("Get-Process | ? { $_.Modules.Where{ $_.Dispose() } }"), ".Where{} is a method call"),
        (ALICE, Ps("Get-Process | ? { $_.Threads.ForEach('Dispose') }"), ".ForEach() is a method call"),
        (ALICE, Ps("Get-Process | % Kill"), "ForEach-Object member name may call a method"),
        (ALICE, Ps("Get-Process | % -MemberName Kill"), "-MemberName may call a method"),
        (OPER, Ps("Get-Process | ForEach-Object Kill"), "member name, read-only role"),
        (ALICE, Ps("Get-Process | % ToString"), "without types a name may be a method"),
        (ALICE, Ps("Get-Process | % -mem Kill"), "-MemberName by prefix"),
        (ALICE, Ps("Get-Process | ? { $_.StartTime.AddDays(1) -gt 0 }"), "date methods only on values the engine knows are dates"),
        (ALICE, Ps("Write-Output (Get-Date).GetType().Assembly"), "GetType is not a listed date method"),
        (ALICE, Ps("Write-Output (Get-Date).Ticks.ToString()"), "method after a member of unknown type"),
        (ALICE, Ps("Write-Output ([datetime]::Parse('2020-01-01'))"), "static methods are not in the subset"),
        (ALICE, Ps("Write-Output (Get-Date).AddDays((Stop-Computer))"), "method arguments are constants only"),
        (ALICE, Ps("Write-Output (Get-Date).AddDays($x)"), "variable as a method argument"),
        // ---- commands inside blocks ----
        (ALICE, Ps("Get-Process | ? { & Stop-Computer }"), "call operator in a block"),
        (ALICE, Ps("Get-Process | ? { . Stop-Computer }"), "dot-sourcing in a block"),
        (ALICE, Ps("Get-Process | ? { Stop-Computer }"), "command in a block"),
        (ALICE, Ps("Get-Process | ? { Get-Date }"), "a command in a block, even a visible one"),
        (ALICE, Ps("Get-Process | ? { $(Stop-Computer) }"), "subexpression in a block"),
        (ALICE, Ps("Get-Process | ? { \"$(Stop-Computer)\" }"), "subexpression in an expandable string"),
        (ALICE, Ps("Get-Process | ? { @(Stop-Computer) }"), "command in an array subexpression"),
        (ALICE, Ps("Get-Process | ? { (Stop-Computer) }"), "parenthesized command other than Get-Date"),
        (ALICE, Ps("Get-Process | % { iex 'Stop-Computer' }"), "Invoke-Expression in a block"),
        (ALICE, Ps("Get-Process | Select-Object @{n='x';e={Stop-Computer}}"), "command in a calculated property"),
        (ALICE, Ps("Get-Process | Sort-Object { [IO.File]::Delete('x') }"), "static call on a type"),
        (ALICE, Ps("Get-Process | ? { [Diagnostics.Process]::Start('calc') }"), "static call on a type"),
        (ALICE, Ps("Get-Process | ? { $_ | Stop-Process }"), "pipeline inside a block"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq (Get-Process -Name x).Kill() }"), "parenthesized command other than Get-Date"),
        (ALICE, Ps("Get-Process | ? { & { Stop-Computer } }"), "call operator on a nested block"),
        (ALICE, Ps("Get-Process | ? { { Stop-Computer }.Invoke() }"), "invoking a nested block"),
        (ALICE, Ps("Get-Process | ? { ${function:Stop-Computer} }"), "function drive variable"),
        (ALICE, Ps("Get-Process | ? { $ExecutionContext.InvokeCommand.InvokeScript('Stop-Computer') }"), "automatic variable and method"),
        (ALICE, Ps("Get-Process | ? { $host.SetShouldExit(1) }"), "automatic variable"),
        (ALICE, Ps("Get-Process | % -Begin { Stop-Computer } -Process { $_ }"), "command in -Begin"),
        (ALICE, Ps("Get-Process | % -Process { $_ } -End { Stop-Computer }"), "command in -End"),
        (ALICE, Ps("Get-Process | ? { [scriptblock]::Create('Stop-Computer') }"), "scriptblock type literal"),
        (ALICE, Ps("Get-Process | ? { $_ } ; Stop-Computer"), "safe block then a denied command"),
        (ALICE, Ps("Get-Service | ? { $_.Name -eq 'x' } | Stop-Computer"), "safe block, denied command downstream"),
        (OPER, Ps("Get-Service | Where-Object { $_.Status -eq 'Running' } | Stop-Service"), "Stop-Service is not visible"),
        (ALICE, Ps("Get-Process | % { $_.Name } | iex"), "Invoke-Expression reading pipeline input"),
        // ---- variables and assignments ----
        (ALICE, Ps("Get-Process | ? { $x = 1 }"), "other variables"),
        (ALICE, Ps("Get-Process | ? { $_.Name = 'x' }"), "assignment to a property"),
        (ALICE, Ps("Get-Process | ? { $global:x }"), "scoped variable"),
        (ALICE, Ps("Get-Process | ? { $env:COMPUTERNAME -eq 'x' }"), "environment variable"),
        (ALICE, Ps("Get-Process | ? { $_ -eq $args }"), "automatic variable"),
        (ALICE, Ps("Get-Process | ? { $_.Id++ }"), "increment"),
        (ALICE, Ps("Get-Service | ? { $_.Status -eq $using:x }"), "using: variable"),
        (ALICE, Ps("$x = Get-Date"), "top-level assignment"),
        (ALICE, Ps("Get-Process | ? { $_?.Name }"), "$_? is another variable"),
        // ---- operators outside the subset ----
        (ALICE, Ps("Get-Process | ? { [int]$_.Id -gt 4 }"), "casts"),
        (ALICE, Ps("Get-Process | ? { $_.Id -gt 4 -bor 1 }"), "bitwise operator"),
        (ALICE, Ps("Get-Process | ? { $_.Id -f 'x' }"), "format operator"),
        (ALICE, Ps("Get-Process | ? { $_.Name -replace 'a', 'b' }"), "replace operator"),
        (ALICE, Ps("Get-Process | ? { $_.Name -split 'a' }"), "split operator"),
        (ALICE, Ps("Get-Process | ? { $_ -as [type] }"), "-as with a type"),
        (ALICE, Ps("Get-Process | ? { 1..1e9 }"), "range operator"),
        (ALICE, Ps("Get-Process | ? { $_.Name * 1e9 }"), "arithmetic"),
        (ALICE, Ps("Get-Process | ? { $_.Modules[0] }"), "indexing"),
        // ---- keywords ----
        (ALICE, Ps("Get-Process | ? { param($x) $x }"), "param block"),
        (ALICE, Ps("Get-Process | ? { begin { Stop-Computer } }"), "named blocks"),
        (ALICE, Ps("Get-Process | ? { function f {} }"), "function definition"),
        (ALICE, Ps("Get-Process | ? { trap { } $_ }"), "trap"),
        (ALICE, Ps("Get-Process | ? { if ($_) { $true } }"), "if"),
        // ---- hashtables ----
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName=$(Stop-Computer)}"), "subexpression as a hashtable value"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName=(Stop-Computer)}"), "parenthesized command as a value"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName=Stop-Computer}"), "a bare word value is a command"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName=\"$env:x\"}"), "expandable string"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{$(Stop-Computer)=1}"), "computed key"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'; StartTime=(Get-Date).AddDays((Stop-Computer))}"), "command as a method argument"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'} -ComputerName dc01"), "denied parameter next to a hashtable"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'; StartTime=(Get-Date -ComputerName dc01)}"), "the Get-Date an expression runs meets the deny rules"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'} | % { $_.Message.Replace('a','b') }"), "method call downstream"),
        (ALICE, Ps("Write-Output @{a=1}.Keys"), "member access on a hashtable"),
        (ALICE, Ps("Write-Output @(Stop-Computer)"), "a bare word in @( ) is a command (was read as a string)"),
        (ALICE, Ps("Write-Output @('a'; Restart-Computer -Force)"), "second statement of @( ) is a command"),
        (OPER, Ps("Get-Service -Name @(Invoke-Command -ComputerName dc01 { 1 })"), "command in @( ) as an argument"),
        (ALICE, Ps("Write-Output @{a=1 | Out-File x}"), "pipeline in a hashtable value"),
        (ALICE, Ps("Get-Process | Sort-Object @{e={$_.Kill()}; d=$true}"), "method call in a sort hashtable"),
        (ALICE, Ps("Get-Process | Select-Object -Property @{n='x';e={& $_.Path}}"), "call operator in a calculated property"),
        // ---- value-constrained parameters refuse non-literal values ----
        (SVC, Ps("Restart-Service -Name @{n='Spooler'}"), "hashtable for a validate_set parameter"),
        (SVC, Ps("Restart-Service -Name { 'Spooler' }"), "script block for a validate_set parameter"),
        (SVC, Ps("Restart-Service { $_.Name }"), "positional script block for a validate_set parameter"),
        (SVC, Ps("Start-Service -Name (Get-Date).ToString('Spooler')"), "expression for a validate_pattern parameter; Get-Date not visible"),
        (SVC, Ps("Get-Service | ? { $_.Name -eq 'Spooler' }"), "Where-Object is not visible to the role"),
        // ---- unicode and lookalikes ----
        (ALICE, Ps("Get-Process | ? { $_.Kill\u{2060}() }"), "invisible character"),
        (ALICE, Ps("Get-Process | ? { $_.Name \u{2013}eq 'x' \u{2013}or $_.Kill() }"), "en dashes are dashes; the method is still refused"),
        (ALICE, Ps("Get-Process | ? { $_.Name \u{2010}eq 'x' }"), "U+2010 is not a PowerShell dash"),
        (ALICE, Ps("Get-Process | ? { $_.Name \u{2212}eq 'x' }"), "U+2212 minus is not a PowerShell dash"),
        (ALICE, Ps("Get-Process | ? { \u{2018}x\u{2019} -eq \u{201C}$(Stop-Computer)\u{201D} }"), "typographic double quotes expand"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq 'x'\u{2018}; Stop-Computer; \u{2019}' }"), "mixed quotes pair as an escaped quote: unterminated"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq 'x' }\u{0085}Stop-Computer"), "NEL between statements"),
        (ALICE, Ps("Get-Process | ? { $_.Name -like \"*$(Stop-Computer)*\" }"), "expansion inside a wildcard"),
        (ALICE, Ps("Get-Process | ? { $_.Name -in @('a', (Stop-Computer)) }"), "command inside an array of constants"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq 'a' `\n; Stop-Computer }"), "continuation then a command"),
        // ---- script blocks sent as PSRP objects ----
        (ALICE, Op::Inv(vec![c("Get-Process", vec![]), c("Where-Object", vec![named("FilterScript", sb("$_.Kill()"))])]), "method call in a PSRP block"),
        (ALICE, Op::Inv(vec![c("Get-Process", vec![]), c("Where-Object", vec![named("FilterScript", sb("Stop-Computer"))])]), "a PSRP block that is a script meets the deny rules"),
        (ALICE, Op::Inv(vec![c("Get-Process", vec![]), c("ForEach-Object", vec![pos(ArgValue::String("Kill".into()))])]), "member name over PSRP"),
        (ALICE, Op::Inv(vec![c("Get-Process", vec![]), c("Sort-Object", vec![named("Property", sb("[IO.File]::Delete('x')"))])]), "static call in a PSRP block"),
        (ALICE, Op::Inv(vec![c("Get-Process", vec![]), c("Where-Object", vec![named("FilterScript", sb("$x"))])]), "variable in a PSRP block"),
    ]
}

/// What administrators type every day: every one must be allowed.
/// (who, request, what it does).
fn everyday() -> Vec<(Who, Op, &'static str)> {
    vec![
        (ALICE, Ps("Get-Service | Where-Object { $_.Status -eq 'Running' } | Sort-Object Name"), "running services by name"),
        (OPER, Ps("Get-Service | Where-Object { $_.Status -eq 'Running' } | Sort-Object Name"), "same, read-only role"),
        (ALICE, Ps("Get-Process | Sort-Object CPU -Descending | Select-Object -First 5 Name, CPU"), "top five by CPU"),
        (OPER, Ps("Get-Process | Sort-Object CPU -Descending | Select-Object -First 5 Name, CPU"), "same, read-only role"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'; Level=2; StartTime=(Get-Date).AddDays(-1)}"), "errors of the last day"),
        (ALICE, Ps("Get-Service | Where-Object Status -eq Running"), "simplified Where-Object syntax"),
        (ALICE, Ps("Get-Service | ? Status -eq 'Stopped'"), "simplified syntax with the alias"),
        (ALICE, Ps("Get-Service | ? { $_.StartType -eq 'Automatic' -and $_.Status -ne 'Running' }"), "automatic services not running"),
        (ALICE, Ps("Get-Process | ? { $_.WorkingSet64 -gt 500mb }"), "memory hogs"),
        (ALICE, Ps("Get-Process | ? CPU -gt 100"), "simplified syntax with a number"),
        (ALICE, Ps("Get-Process | Sort-Object { $_.WorkingSet64 } -Descending | Select-Object -First 10"), "sort by a block"),
        (ALICE, Ps("Get-Process | Select-Object Name, @{Name='MB'; Expression={ $_.WorkingSet64 }}"), "calculated property, long keys"),
        (ALICE, Ps("Get-Process | Select-Object Name, @{n='Id';e={$_.Id}}"), "calculated property, short keys"),
        (ALICE, Ps("Get-Service | % { $_.Name }"), "property through ForEach-Object"),
        (OPER, Ps("Get-Service | ForEach-Object { $_.DisplayName }"), "same, full name"),
        (ALICE, Ps("Get-Service | Group-Object Status"), "group by a property name"),
        (OPER, Ps("Get-Service | Group-Object { $_.StartType }"), "group by a block"),
        (ALICE, Ps("Get-Process | Measure-Object WorkingSet64 -Sum"), "sum of a property"),
        (OPER, Ps("Get-ChildItem C:\\Logs | ? { $_.LastWriteTime -lt (Get-Date).AddDays(-7) }"), "old log files"),
        (OPER, Ps("Get-ChildItem C:\\Logs -Recurse | ? { -not $_.PSIsContainer } | Sort-Object Length -Descending | Select-Object -First 20 FullName, Length"), "largest files"),
        (OPER, Ps("Get-EventLog -LogName System -After (Get-Date).AddHours(-4)"), "date value as an argument"),
        (OPER, Ps("Get-EventLog -LogName System -EntryType Error -After ([datetime]::Today)"), "[datetime]::Today"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='Application'; Id=1000,1001}"), "list as a hashtable value"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{\n    LogName = 'System'\n    Level = 1, 2\n}"), "hashtable over several lines"),
        (OPER, Ps("Get-WinEvent -FilterHashtable @{LogName='System'; StartTime=[datetime]::Today.AddDays(-1)}"), "static date with a method"),
        (OPER, Ps("Get-HotFix | ? { $_.InstalledOn -gt (Get-Date).AddMonths(-1) }"), "recent updates"),
        (OPER, Ps("Get-Volume | ? { $_.SizeRemaining -lt 10gb } | Select-Object DriveLetter, SizeRemaining"), "full disks"),
        (OPER, Ps("Get-NetIPAddress | ? { $_.AddressFamily -eq 'IPv4' -and $_.PrefixOrigin -ne 'WellKnown' }"), "IPv4 addresses"),
        (ALICE, Ps("Get-Service | ? { $_.Name -like 'Win*' -or $_.Name -match '^W32' }"), "wildcard and regex"),
        (ALICE, Ps("Get-Service | ? { $_.Name -in 'Spooler','W32Time' }"), "-in a list"),
        (ALICE, Ps("Get-Service | ? { $_.Name -notin @('a','b') }"), "-notin an array literal"),
        (ALICE, Ps("Get-Service | ? { $_.DependentServices.Count -gt 0 }"), "nested property"),
        (ALICE, Ps("Get-Process | ? { $_.StartTime -gt (Get-Date).AddMinutes(-30) }"), "started recently"),
        (ALICE, Ps("Get-Process | ? { $PSItem.Responding -eq $false }"), "$PSItem"),
        (ALICE, Ps("Get-Service | ? { !$_.CanStop }"), "! negation"),
        (ALICE, Ps("Get-Date -Format 'yyyy-MM-dd'"), "formatted date"),
        (ALICE, Ps("(Get-Date).ToString('s')"), "date value starting a pipeline"),
        (ALICE, Ps("Write-Output (Get-Date).AddDays(-1).Date"), "yesterday"),
        (ALICE, Ps("Get-Service | Sort-Object @{Expression='Status'; Descending=$true}, Name"), "sort hashtable"),
        (OPER, Ps("Get-Process | Format-Table Name, @{L='CPU(s)'; E={ $_.CPU }} -AutoSize"), "Format-Table calculated column"),
        (ALICE, Ps("Get-Service | Where-Object {\n    $_.Status -eq 'Running' -and\n    $_.StartType -eq 'Manual'\n}"), "block over several lines"),
        (ALICE, Ps("Get-Service | ? { $_.Status \u{2013}eq 'Running' }"), "en dash operator, as pasted from documents"),
        (ALICE, Ps("Get-Service | ? { $_.Name -eq \u{2018}Spooler\u{2019} }"), "typographic quotes"),
        (ALICE, Ps("Get-Service | ? { $_.Status -ceq 'Running' -and $_.Name -ilike 'w*' }"), "case-sensitive and -insensitive forms"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq 'svchost' } | Measure-Object"), "count"),
        (ALICE, Ps("Get-Service | ? { $_.Status -eq 'Running' } | Select-Object -ExpandProperty Name"), "names only"),
        (OPER, Ps("Get-ChildItem C:\\Logs\\*.log | ? { $_.Length -gt 1mb -and $_.LastWriteTime -lt [datetime]::Now.AddDays(-30) }"), "large old logs"),
        (ALICE, Ps("Get-Process | ? { ($_.CPU -gt 10) -or ($_.Handles -gt 1000) }"), "grouping"),
        (ALICE, Ps("Get-Process | ? { $_.Name -eq 'x' } # comment"), "trailing comment"),
        (ALICE, Ps("gsv | where { $_.Status -eq 'Running' } | sort Name"), "aliases where and sort"),
        (ALICE, Ps("gps | sort CPU -desc | select -f 5 Name, CPU"), "aliases and parameter prefixes"),
        (ALICE, Op::Inv(vec![c("Get-Service", vec![]), c("Where-Object", vec![named("FilterScript", sb("$_.Status -eq 'Running'"))])]), "PSRP script block object"),
        (OPER, Op::Inv(vec![c("Get-Process", vec![]), c("Sort-Object", vec![named("Property", sb("$_.CPU")), named("Descending", ArgValue::Bool(true))])]), "PSRP sort block"),
        (ALICE, Op::Inv(vec![c("Get-Service", vec![]), c("ForEach-Object", vec![pos(sb(" $_.Name "))])]), "PSRP ForEach-Object block"),
    ]
}

#[test]
fn expressions_red_team_is_denied() {
    let engine = engine();
    let cases = red_team();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(who, op, why)| {
            let d = decide(&engine, *who, op);
            d.is_allow()
                .then(|| format!("{} {op:?} ({why}): expected deny, got {d:?}", who.user))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} allowed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn everyday_expressions_are_allowed() {
    let engine = engine();
    let cases = everyday();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(who, op, why)| {
            let d = decide(&engine, *who, op);
            (!d.is_allow())
                .then(|| format!("{} {op:?} ({why}): expected allow, got {d:?}", who.user))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} denied:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn reason(who: Who, op: Op) -> String {
    match decide(&engine(), who, &op) {
        Decision::Deny { reason, .. } => reason,
        d => panic!("{op:?}: {d:?}"),
    }
}

#[test]
fn restricted_roles_name_the_construct_and_where_it_is() {
    assert_eq!(
        reason(ALICE, Ps("$x")),
        "role 'demo' allows no variables: `$x` at line 1, column 1"
    );
    assert_eq!(
        reason(ALICE, Ps("Get-Process |\n? { $_ -or $_.Kill() }")),
        "role 'demo' allows no script blocks except the safe subset: method call `.Kill()` \
         at line 2, column 14"
    );
    // Columns count characters, not bytes; CRLF is one line break.
    assert_eq!(
        reason(ALICE, Ps("Write-Output 'é€𝄞' $x")),
        "role 'demo' allows no variables: `$x` at line 1, column 20"
    );
    assert_eq!(
        reason(
            ALICE,
            Ps("Get-Date\r\nGet-Service |\r\n  ? { $_.Status -eq $(Stop-Computer) }")
        ),
        "role 'demo' allows no script blocks except the safe subset: subexpression \
         `$(Stop-Computer)` at line 3, column 21"
    );
    assert_eq!(
        reason(
            OPER,
            Ps("Get-WinEvent -FilterHashtable @{LogName=Stop-Computer}")
        ),
        "role 'read-only-operator' allows no commands inside expressions except \
         (Get-Date ...): `Stop-Computer` at line 1, column 41"
    );
    assert_eq!(
        reason(ALICE, Ps("Write-Output (Get-Date).GetType()")),
        "role 'demo' allows no method calls except the listed date methods: `.GetType()` \
         at line 1, column 24"
    );
    assert_eq!(
        reason(ALICE, Ps("Get-Date | Out-File x; & { Stop-Computer }")),
        "role 'demo' allows no call operators (&): `&` at line 1, column 24"
    );
    // `&` with a literal name is the command it names.
    assert_eq!(
        reason(ALICE, Ps("Get-Date | Out-File x; & Stop-Computer")),
        "command 'Stop-Computer' is denied by role 'demo'"
    );
    assert_eq!(
        reason(ALICE, Ps("Write-Output 'abc")),
        "role 'demo' cannot analyse an incomplete script: unterminated single-quoted string \
         starting at line 1, column 14"
    );
    assert_eq!(
        reason(ALICE, Ps("if ($true) { Get-Date }")),
        "role 'demo' allows no keyword 'if': `if` at line 1, column 1"
    );
}

#[test]
fn nested_code_says_which_text_the_position_is_in() {
    assert_eq!(
        reason(ALICE, Ps("Invoke-Expression 'Get-Date; $x'")),
        "role 'demo' allows no variables: `$x` at line 1, column 11 (in Invoke-Expression)"
    );
    assert_eq!(
        reason(
            ALICE,
            Op::Inv(vec![
                c("Get-Process", vec![]),
                c(
                    "Where-Object",
                    vec![named("FilterScript", sb("$_.Name -eq 'x' -or\n$_.Kill()"))]
                ),
            ])
        ),
        "role 'demo' allows no script blocks except the safe subset: method call `.Kill()` \
         at line 2, column 3 (in script block passed to Where-Object)"
    );
}

#[test]
fn member_names_and_unanalysable_code_say_what_to_write() {
    assert_eq!(
        reason(ALICE, Ps("Get-Process | % Kill")),
        "role 'demo' accepts only code the gateway can analyse: ForEach-Object member name \
         'Kill' may call a method (without types the gateway cannot tell a property from a \
         method); to read a property write `ForEach-Object { $_.Kill }`"
    );
    assert_eq!(
        reason(ALICE, Ps("Invoke-Expression -Command { $_ }")),
        "role 'demo' accepts only code the gateway can analyse: Invoke-Expression without a \
         literal command string"
    );
}

#[test]
fn deny_rules_explain_why_even_a_full_role_cannot_allow() {
    let engine = engine();
    let d = decide(&engine, ADMIN_OPS, &Ps("$x = 1"));
    assert_eq!(
        d,
        Decision::Deny {
            reason: "script is outside what the gateway can analyse: variable `$x` at line 1, \
                     column 1; role 'demo' has deny rules, which cannot be checked against it, \
                     so no role can allow it (language = \"full\" accepts such code only where \
                     no role that applies has deny rules)"
                .into(),
            rule: Some("demo: deny".into()),
        }
    );
    let d = decide(&engine, ADMIN_OPS, &Ps("Get-Process | % Kill"));
    let Decision::Deny { reason, .. } = d else {
        panic!()
    };
    assert!(
        reason.starts_with(
            "code is outside what the gateway can analyse: ForEach-Object member name 'Kill'"
        ),
        "{reason}"
    );
    // Without a full role the deny rules are not the reason: the language is.
    let d = decide(&engine, ALICE, &Ps("$x = 1"));
    assert_eq!(
        d,
        Decision::Deny {
            reason: "role 'demo' allows no variables: `$x` at line 1, column 1".into(),
            rule: None,
        }
    );
    // A full role alone accepts what it cannot analyse.
    let admin = Who {
        user: "root",
        groups: &["hopgate-admins"],
        host: "db-07",
        labels: &[],
    };
    assert!(decide(&engine, admin, &Ps("$x = 1; $x")).is_allow());
}

#[test]
fn expression_commands_are_judged_as_uses() {
    // The Get-Date an expression runs is a command use: visibility and deny rules
    // apply to it like to any other.
    let Decision::Deny { reason, .. } = decide(
        &engine(),
        SVC,
        &Ps("Restart-Service -Name Spooler -Force:(Get-Date).Date"),
    ) else {
        panic!()
    };
    assert_eq!(
        reason,
        "command 'Get-Date' is not visible to role 'service-restarter'"
    );
    let Decision::Deny { reason, rule } = decide(
        &engine(),
        OPER,
        &Ps("Get-WinEvent -FilterHashtable @{LogName='System'; StartTime=(Get-Date -ComputerName dc01)}"),
    ) else {
        panic!()
    };
    assert!(reason.contains("-ComputerName"), "{reason}");
    assert!(rule.is_some_and(|r| r.contains("read-only-operator")));
}
