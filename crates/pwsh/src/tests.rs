//! Parser, alias and data-file tests. Expected structures are written from the
//! PowerShell language specification (about_Parsing, about_Quoting_Rules).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::*;

fn cmd(name: &str, args: Vec<Arg>) -> Element {
    Element::Command(Command {
        name: name.into(),
        args,
    })
}

fn s(v: &str) -> Literal {
    Literal::Str(v.into())
}

fn p(name: &str) -> Arg {
    Arg::Param {
        name: name.into(),
        value: None,
    }
}

fn only_pipeline(text: &str) -> Vec<Element> {
    let script = parse_script(text).unwrap();
    assert_eq!(script.statements.len(), 1, "{text}");
    match script.statements.into_iter().next().unwrap() {
        Statement::Pipeline(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn simple_pipeline_with_parameters() {
    let e = only_pipeline("Get-Service -Name 'Spooler' | Select-Object Name,Status");
    assert_eq!(
        e,
        vec![
            cmd("Get-Service", vec![p("Name"), Arg::Value(s("Spooler"))]),
            cmd(
                "Select-Object",
                vec![Arg::Value(Literal::List(vec![s("Name"), s("Status")]))]
            ),
        ]
    );
}

#[test]
fn statements_split_on_semicolons_and_newlines() {
    let script =
        parse_script("hostname; whoami\r\nGet-Date\n\n# comment\n<# block\n #> Get-Process")
            .unwrap();
    assert_eq!(script.statements.len(), 4);
}

#[test]
fn colon_form_and_unicode_dashes() {
    let e = only_pipeline("Get-Service \u{2013}Name:Spooler \u{2014}Force \u{2015}X");
    assert_eq!(
        e,
        vec![cmd(
            "Get-Service",
            vec![
                Arg::Param {
                    name: "Name".into(),
                    value: Some(s("Spooler"))
                },
                p("Force"),
                p("X")
            ]
        )]
    );
}

#[test]
fn literals() {
    let e = only_pipeline(
        "Write-Output 42 -5 0x1F 1kb $true $false $null 'it''s' \"a`tb\" @('x','y') -- -Name",
    );
    let Element::Command(c) = &e[0] else { panic!() };
    assert_eq!(
        c.args,
        vec![
            Arg::Value(Literal::Number("42".into())),
            Arg::Value(Literal::Number("-5".into())),
            Arg::Value(Literal::Number("0x1F".into())),
            Arg::Value(Literal::Number("1kb".into())),
            Arg::Value(Literal::Bool(true)),
            Arg::Value(Literal::Bool(false)),
            Arg::Value(Literal::Null),
            Arg::Value(s("it's")),
            Arg::Value(s("a\tb")),
            Arg::Value(Literal::List(vec![s("x"), s("y")])),
            Arg::EndOfParams,
            Arg::Value(s("-Name")),
        ]
    );
}

#[test]
fn here_strings() {
    let e = only_pipeline("Write-Output @'\nline $notavar\n'@ | Out-String");
    let Element::Command(c) = &e[0] else { panic!() };
    assert_eq!(c.args, vec![Arg::Value(s("line $notavar"))]);
    assert!(parse_script("Write-Output @\"\n$x\n\"@").is_err());
}

#[test]
fn smart_quotes_are_quotes() {
    let e = only_pipeline("Write-Output \u{2018}a b\u{2019} \u{201C}c\u{201D}");
    let Element::Command(c) = &e[0] else { panic!() };
    assert_eq!(c.args, vec![Arg::Value(s("a b")), Arg::Value(s("c"))]);
}

#[test]
fn exit_forms() {
    let script = parse_script("Get-Date\nexit $LASTEXITCODE").unwrap();
    assert_eq!(
        script.statements[1],
        Statement::Exit(ExitCode::LastExitCode)
    );
    assert_eq!(
        parse_script("exit 3").unwrap().statements[0],
        Statement::Exit(ExitCode::Number("3".into()))
    );
    assert!(parse_script("exit $x").is_err());
}

#[test]
fn unsupported_constructs_are_named() {
    let cases = [
        ("Get-Process $x", "variable"),
        ("Get-Process $(whoami)", "subexpression"),
        ("& (gcm Stop-Computer)", "call operator"),
        ("&(gcm Stop-Computer)", "call operator"),
        (". .\\x.ps1", "dot-source"),
        ("Get-Service | ForEach-Object { $_.Stop() }", "script block"),
        ("[Diagnostics.Process]::Start('calc')", "type literal"),
        ("Get-Process > out.txt", "redirection"),
        ("Get-Process 2>&1", "redirection"),
        ("Get-Date && whoami", "call operator"),
        ("Get-Date || whoami", "pipeline chain"),
        ("if ($true) { hostname }", "keyword 'if'"),
        ("function f { }", "keyword 'function'"),
        ("$a = 1", "variable"),
        ("Write-Output \"$env:PATH\"", "variable expansion"),
        ("Write-Output (Get-Date)", "parenthesized"),
        ("Get-Process @params", "splatting"),
        ("Write-Output @{a=1}", "hashtable"),
        ("Write-Output a$b", "variable in a bare word"),
        ("I`nvoke-Expression x", "escape character"),
        ("Write-Output 'a'b", "concatenated"),
        ("cmd --% /c whoami", "stop-parsing"),
        ("'a' | 'b'", "expression after the first"),
        ("1 + 1", "expression"),
        ("Get-Date;;", ""),
    ];
    for (text, what) in cases {
        match parse_script(text) {
            Err(PwshError::Unsupported { what: got, .. }) => {
                assert!(got.contains(what), "{text}: {got}")
            }
            Err(e) => panic!("{text}: {e}"),
            Ok(s) if what.is_empty() => assert_eq!(s.statements.len(), 1),
            Ok(s) => panic!("{text} parsed: {s:?}"),
        }
    }
}

#[test]
fn unterminated_is_an_error() {
    for text in [
        "Write-Output 'abc",
        "Write-Output \"abc",
        "<# x",
        "Write-Output @'\nabc",
    ] {
        assert!(
            matches!(parse_script(text), Err(PwshError::Unterminated { .. })),
            "{text}"
        );
    }
}

#[test]
fn literal_first_element() {
    let e = only_pipeline("'Stop-Computer' | Invoke-Expression");
    assert_eq!(e[0], Element::Value(s("Stop-Computer")));
}

#[test]
fn aliases_resolve() {
    assert_eq!(resolve_alias("GSV"), Some("Get-Service"));
    assert_eq!(resolve_alias("iex"), Some("Invoke-Expression"));
    assert_eq!(resolve_alias("%"), Some("ForEach-Object"));
    assert_eq!(resolve_alias("?"), Some("Where-Object"));
    assert_eq!(resolve_alias("Get-Service"), None);
}

#[test]
fn data_file_jea_role_capabilities() {
    let text = r#"
@{
GUID = 'a1b2c3d4-0000-0000-0000-000000000000'
Author = "Ops"
# The cmdlets operators may run
VisibleCmdlets = 'Get-Service', @{ Name = 'Restart-Service'; Parameters = @{ Name = 'Name'; ValidateSet = 'Spooler', 'W32Time' } },
    @{ Name = 'Get-Process'; Parameters = @{ Name = 'Name' }, @{ Name = 'Id'; ValidatePattern = '\d+' } }
VisibleExternalCommands = @('C:\Windows\System32\whoami.exe')
FunctionDefinitions = @{ Name = 'f'; ScriptBlock = { param($x) "}" ; $x } }
Enabled = $true
}
"#;
    let DataValue::Table(entries) = parse_data_file(text).unwrap() else {
        panic!()
    };
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "GUID",
            "Author",
            "VisibleCmdlets",
            "VisibleExternalCommands",
            "FunctionDefinitions",
            "Enabled"
        ]
    );
    let cmdlets = &entries[2].1;
    assert_eq!(cmdlets.items().len(), 3);
    let DataValue::Table(fd) = &entries[4].1 else {
        panic!()
    };
    assert!(matches!(&fd[1].1, DataValue::ScriptBlock(t) if t.contains("param($x)")));
    assert_eq!(entries[5].1, DataValue::Bool(true));
}

#[test]
fn data_file_rejects_code() {
    assert!(parse_data_file("@{ A = $env:X }").is_err());
    assert!(parse_data_file("@{ A = (Get-Date) }").is_err());
    assert!(parse_data_file("'x'").is_err());
    assert!(parse_data_file("@{ A = 1 } extra").is_err());
}

mod properties {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the parsers.
        #[test]
        fn parsers_never_panic(text in "\\PC{0,80}") {
            let _ = parse_script(&text);
            let _ = parse_data_file(&text);
        }

        /// Text built from PowerShell's interesting characters never panics either, and
        /// whatever parses has non-empty command names.
        #[test]
        fn syntax_soup_never_panics(text in "[-a-zA-Z0-9 $@(){}\\[\\];|&.,'\"`#<>=\\n\\r\u{2013}\u{2018}\u{201C}]{0,60}") {
            if let Ok(script) = parse_script(&text) {
                for s in &script.statements {
                    if let Statement::Pipeline(elements) = s {
                        for e in elements {
                            if let Element::Command(c) = e {
                                prop_assert!(!c.name.is_empty());
                            }
                        }
                    }
                }
            }
            let _ = parse_data_file(&text);
        }
    }
}
