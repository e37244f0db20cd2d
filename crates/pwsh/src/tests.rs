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

/// Refused constructs: (script, construct, snippet, line, column).
#[rustfmt::skip]
fn refusals() -> Vec<(&'static str, Construct, &'static str, usize, usize)> {
    use Construct as C;
    vec![
        ("Get-Process $x", C::Variable, "$x", 1, 13),
        ("$a = 1", C::Variable, "$a", 1, 1),
        ("Get-Process $(whoami)", C::Subexpression, "$(whoami)", 1, 13),
        ("& (gcm Stop-Computer)", C::CallOperator, "&", 1, 1),
        ("&(gcm Stop-Computer)", C::CallOperator, "&", 1, 1),
        (". .\\x.ps1", C::DotSource, ".", 1, 1),
        ("[Diagnostics.Process]::Start('calc')", C::TypeLiteral, "[Diagnostics.Process]", 1, 1),
        ("Get-Process > out.txt", C::Redirection, ">", 1, 13),
        ("Get-Process 2>&1", C::Redirection, ">&1", 1, 14),
        ("Get-Date && whoami", C::PipelineChain, "&&", 1, 10),
        ("Get-Date || whoami", C::PipelineChain, "||", 1, 10),
        ("if ($true) { hostname }", C::Keyword("if".into()), "if", 1, 1),
        ("function f { }", C::Keyword("function".into()), "function", 1, 1),
        ("Get-Date; while", C::Keyword("while".into()), "while", 1, 11),
        ("Write-Output \"$env:PATH\"", C::StringExpansion, "$env:PATH", 1, 15),
        ("Write-Output (Get-Process)", C::Command, "Get-Process", 1, 15),
        ("Write-Output (1)", C::Parenthesized, "(1)", 1, 14),
        ("Get-Process @params", C::Splatting, "@params", 1, 13),
        ("Write-Output a$b", C::Variable, "$b", 1, 15),
        ("I`nvoke-Expression x", C::Escape, "`nvoke-Expression", 1, 2),
        ("cmd --% /c whoami", C::StopParsing, "--%", 1, 5),
        ("Write-Output @(Stop-Computer)", C::Command, "Stop-Computer", 1, 16),
        ("Write-Output @{a=Stop-Computer}", C::Command, "Stop-Computer", 1, 18),
        ("Write-Output @{a=$x}", C::Variable, "$x", 1, 18),
        ("Write-Output @{$x=1}", C::Variable, "$x", 1, 16),
        ("Write-Output @{a=1}.Keys", C::MemberAccess, ".Keys", 1, 20),
        ("Write-Output 'abc'.Length", C::MemberAccess, ".Length", 1, 19),
        ("Write-Output (Get-Date).GetType().Assembly", C::MethodCall, ".GetType()", 1, 24),
        ("Write-Output (Get-Date).AddDays($x)", C::Variable, "$x", 1, 33),
        ("Write-Output (Get-Date).Ticks.ToString()", C::MethodCall, ".ToString()", 1, 30),
        ("Write-Output ([datetime]::Parse('1'))", C::StaticMember, "[datetime]::Parse", 1, 15),
        ("Write-Output ([IO.File]::Now)", C::TypeLiteral, "[IO.File]", 1, 15),
        ("Write-Output ([datetime]'2020')", C::TypeLiteral, "[datetime]", 1, 15),
        ("Write-Output (Get-Date | Stop-Computer)", C::Parenthesized, "(Get-Date | Stop-Computer)", 1, 14),
        ("Get-Process | ? { $_.Kill() }", C::MethodCall, ".Kill()", 1, 21),
        ("Get-Process | ? { $_.'Kill'() }", C::MethodCall, ".'Kill'()", 1, 21),
        ("Write-Output @{$(Stop-Computer)=1}", C::Subexpression, "$(Stop-Computer)", 1, 16),
        ("Get-Date -Format x\u{85}y", C::Character('\u{85}'), "\u{85}y", 1, 19),
        ("? { $_ }\u{85}Stop-Computer", C::Character('\u{85}'), "\u{85}Stop-Computer", 1, 9),
        ("Get-Process | ? { $_.Where{ $true } }", C::MethodCall, ".Where{ $true }", 1, 21),
        ("? { & Stop-Computer }", C::CallOperator, "&", 1, 5),
        ("? { . Stop-Computer }", C::DotSource, ".", 1, 5),
        ("? { $(Stop-Computer) }", C::Subexpression, "$(Stop-Computer)", 1, 5),
        ("? { \"$(Stop-Computer)\" }", C::StringExpansion, "$(Stop-Computer)", 1, 6),
        ("Sort-Object { [IO.File]::Delete('x') }", C::TypeLiteral, "[IO.File]", 1, 15),
        ("Select-Object @{n='x';e={Stop-Computer}}", C::Command, "Stop-Computer", 1, 26),
        ("% { iex 'Stop-Computer' }", C::Command, "iex", 1, 5),
        ("? { $x = 1 }", C::Variable, "$x", 1, 5),
        ("? { $_ = 1 }", C::Assignment, "=", 1, 8),
        ("? { $_.A += 1 }", C::Assignment, "+=", 1, 10),
        ("? { $_.A -replace 'a' }", C::Operator, "-replace", 1, 10),
        ("? { $_.A - 1 }", C::Operator, "-", 1, 10),
        ("? { $_.A -eq1 }", C::Operator, "-eq1", 1, 10),
        ("? { $_.A -band 1 }", C::Operator, "-band", 1, 10),
        ("? { $_.A \u{2010}eq 1 }", C::Other("unexpected character".into()), "\u{2010}eq", 1, 10),
        ("? { $env:X }", C::Variable, "$env:X", 1, 5),
        ("? { ${x} }", C::Variable, "${x}", 1, 5),
        ("? { $_?.A }", C::Variable, "$_?", 1, 5),
        ("? { $global:_ }", C::Variable, "$global:_", 1, 5),
        ("? { $_[0] }", C::Index, "[0]", 1, 7),
        ("? { $_::A }", C::StaticMember, "::A", 1, 7),
        ("? { $_.$x }", C::Variable, "$x", 1, 8),
        ("? { $_ | Stop-Process }", C::Other("pipeline in an expression".into()), "|", 1, 8),
        ("? { if ($_) { 1 } }", C::Keyword("if".into()), "if", 1, 5),
        ("? { { $_ }.Invoke() }", C::MethodCall, ".Invoke()", 1, 11),
        ("? { $_.A.StartTime.AddDays(1) }", C::MethodCall, ".AddDays(1)", 1, 19),
        ("? { (Stop-Computer) }", C::Command, "Stop-Computer", 1, 6),
        ("? { (Get-Date).GetType() }", C::MethodCall, ".GetType()", 1, 15),
        ("? { 1..10 }", C::Operator, "..", 1, 6),
        ("? { @($_) }", C::Variable, "$_", 1, 7),
        ("? { [int]$_ }", C::TypeLiteral, "[int]", 1, 5),
        ("? { -split $_ }", C::Operator, "-split", 1, 5),
        ("? { $_ -and }", C::Other("unmatched '}'".into()), "}", 1, 13),
        ("? {\n  $_.Name -eq 'x' -and\n  $_.Kill() }", C::MethodCall, ".Kill()", 3, 5),
        ("? {\r\n $_.A -eq 1\r\n $_.Kill() }", C::MethodCall, ".Kill()", 3, 4),
        ("Write-Output 'é€𝄞' $x", C::Variable, "$x", 1, 20),
        ("Get-Date\r\nWrite-Output 'ü'\r\n  $y", C::Variable, "$y", 3, 3),
        ("Get-Date\rWrite-Output $y", C::Variable, "$y", 2, 14),
        ("Get-Date\u{0085}Stop-Computer", C::Character('\u{0085}'), "\u{0085}Stop-Computer", 1, 9),
    ]
}

#[test]
fn refused_constructs_are_named_with_their_text_and_position() {
    let mut failures = Vec::new();
    for (text, construct, snippet, line, column) in refusals() {
        match parse_script(text) {
            Err(PwshError::Unsupported {
                construct: got,
                snippet: got_snippet,
                at,
                ..
            }) => {
                if (&got, got_snippet.as_str(), at.line, at.column)
                    != (&construct, snippet, line, column)
                {
                    failures.push(format!(
                        "{text:?}: got {got:?} {got_snippet:?} {}:{}",
                        at.line, at.column
                    ));
                }
                // The byte offset is where the snippet starts.
                if !text
                    .get(at.offset..)
                    .is_some_and(|rest| rest.starts_with(got_snippet.trim_end_matches('\u{2026}')))
                {
                    failures.push(format!(
                        "{text:?}: offset {} is not at the snippet",
                        at.offset
                    ));
                }
            }
            other => failures.push(format!("{text:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn block_errors_say_they_are_in_a_block() {
    let e = parse_script("Get-Process | ? { $_.Kill() }").unwrap_err();
    assert!(matches!(e, PwshError::Unsupported { in_block: true, .. }));
    assert_eq!(
        e.to_string(),
        "method call `.Kill()` in a script block at line 1, column 21"
    );
    let e = parse_script("Get-Process $x").unwrap_err();
    assert!(matches!(
        e,
        PwshError::Unsupported {
            in_block: false,
            ..
        }
    ));
    assert_eq!(e.to_string(), "variable `$x` at line 1, column 13");
    // A hashtable value outside a block is not in a block; a block inside one is.
    let e = parse_script("Select-Object @{n='x';e={ $_.Kill() }}").unwrap_err();
    assert!(
        matches!(e, PwshError::Unsupported { in_block: true, .. }),
        "{e}"
    );
}

#[test]
fn positions_count_lines_and_characters() {
    let text = "a\r\nbé\n\rc𝄞d";
    assert_eq!(
        Position::locate(text, 0),
        Position {
            offset: 0,
            line: 1,
            column: 1
        }
    );
    let at = |needle: char| {
        let p = Position::locate(text, text.find(needle).unwrap());
        (p.line, p.column)
    };
    assert_eq!(at('b'), (2, 1));
    assert_eq!(at('é'), (2, 2));
    // `\n` then `\r`: two line breaks; a four-byte character is one column.
    assert_eq!(at('c'), (4, 1));
    assert_eq!(at('d'), (4, 3));
    assert_eq!(Position::locate(text, text.len() + 10).line, 4);
    // An offset inside a character counts as that character.
    let inside = text.find('é').unwrap() + 1;
    assert_eq!(Position::locate(text, inside).column, 3);
}

#[test]
fn unterminated_positions_point_at_the_opening() {
    for (text, what, line, column) in [
        ("Write-Output 'abc", "single-quoted string", 1, 14),
        ("Get-Date\n  ? { $_.A", "script block", 2, 5),
        ("Write-Output @{a=1", "hashtable literal", 1, 14),
        ("Write-Output @(1,", "array literal", 1, 14),
        ("Write-Output (Get-Date", "parenthesized expression", 1, 14),
        (
            "Write-Output (Get-Date).AddDays(1",
            "method argument list",
            1,
            32,
        ),
        ("<# x", "block comment", 1, 1),
    ] {
        match parse_script(text) {
            Err(PwshError::Unterminated { what: w, at }) => {
                assert_eq!((w, at.line, at.column), (what, line, column), "{text:?}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

fn first_arg(text: &str) -> Literal {
    let e = only_pipeline(text);
    let Element::Command(c) = e.last().unwrap() else {
        panic!()
    };
    match c.args.iter().find(|a| matches!(a, Arg::Value(_))) {
        Some(Arg::Value(v)) => v.clone(),
        _ => panic!("{text}"),
    }
}

fn block(text: &str) -> SafeBlock {
    match first_arg(text) {
        Literal::ScriptBlock(b) => b,
        other => panic!("{text}: {other:?}"),
    }
}

fn prop(names: &[&str]) -> SafeExpr {
    SafeExpr::Properties {
        target: Box::new(SafeExpr::Item),
        names: names.iter().map(|n| n.to_string()).collect(),
    }
}

fn op(op: BinaryOp) -> Operator {
    Operator {
        op,
        case: Case::Default,
    }
}

#[test]
fn safe_blocks_parse_to_expressions() {
    let b = block("Get-Service | Where-Object { $_.Status -eq 'Running' }");
    assert_eq!(b.text, " $_.Status -eq 'Running' ");
    assert_eq!(
        b.statements,
        vec![SafeExpr::Chain {
            first: Box::new(prop(&["Status"])),
            rest: vec![(op(BinaryOp::Eq), SafeExpr::Literal(s("Running")))],
        }]
    );
    // -and/-or share one precedence level, below the comparisons; -not binds tighter.
    let b = block("? { -not $_.A.B -ceq 1 -or $PSItem -inotlike 'x*' -and !$true }");
    assert_eq!(
        b.statements,
        vec![SafeExpr::Chain {
            first: Box::new(SafeExpr::Chain {
                first: Box::new(SafeExpr::Not(Box::new(prop(&["A", "B"])))),
                rest: vec![(
                    Operator {
                        op: BinaryOp::Eq,
                        case: Case::Sensitive
                    },
                    SafeExpr::Literal(Literal::Number("1".into()))
                )],
            }),
            rest: vec![
                (
                    op(BinaryOp::Or),
                    SafeExpr::Chain {
                        first: Box::new(SafeExpr::Item),
                        rest: vec![(
                            Operator {
                                op: BinaryOp::NotLike,
                                case: Case::Insensitive
                            },
                            SafeExpr::Literal(s("x*"))
                        )],
                    }
                ),
                (
                    op(BinaryOp::And),
                    SafeExpr::Not(Box::new(SafeExpr::Literal(Literal::Bool(true))))
                ),
            ],
        }]
    );
    // Comma lists bind tighter than comparisons; unicode dashes are dashes.
    let b = block("? { $_.Name \u{2013}in 'a', 'b' }");
    assert_eq!(
        b.statements,
        vec![SafeExpr::Chain {
            first: Box::new(prop(&["Name"])),
            rest: vec![(
                op(BinaryOp::In),
                SafeExpr::List(vec![SafeExpr::Literal(s("a")), SafeExpr::Literal(s("b"))])
            )],
        }]
    );
    // Several statements, an empty block, grouping, quoted property names.
    assert_eq!(block("% { $_.A; $_.B\n$_.'C D' }").statements.len(), 3);
    assert!(block("% { }").statements.is_empty());
    assert_eq!(block("? { ($_.A) }").statements, vec![prop(&["A"])]);
}

#[test]
fn everyday_forms_parse() {
    for text in [
        "Get-Service | Where-Object { $_.Status -eq 'Running' } | Sort-Object Name",
        "Get-Service | Where-Object Status -eq Running",
        "Get-Process | Sort-Object CPU -Descending | Select-Object -First 5 Name, CPU",
        "Get-Process | Sort-Object { $_.WorkingSet64 } -Descending",
        "Get-Process | Select-Object Name, @{Name='MB'; Expression={ $_.WorkingSet64 }}",
        "Get-Process | Select-Object Name, @{n='Id';e={$_.Id}}",
        "Get-Service | Group-Object { $_.Status }",
        "Get-Service | ForEach-Object { $_.Name }",
        "Get-Service | % { $_.DisplayName }",
        "Get-ChildItem C:\\Logs | ? { $_.LastWriteTime -lt (Get-Date).AddDays(-7) }",
        "Get-WinEvent -FilterHashtable @{LogName='System'; Level=2; StartTime=(Get-Date).AddDays(-1)}",
        "Get-WinEvent -FilterHashtable @{\n  LogName = 'System'\n  Id = 41, 6008\n}",
        "Get-EventLog -LogName System -After (Get-Date).AddHours(-4)",
        "Get-EventLog -LogName System -After ([datetime]::Today)",
        "Get-EventLog -LogName System -After:(Get-Date -Hour 0)",
        "(Get-Date).ToString('yyyy-MM-dd')",
        "Write-Output ([datetime]::UtcNow.AddMinutes(-5).ToUniversalTime())",
        "Write-Output (Get-Date).Date.AddMonths(-1).DayOfWeek",
        "? { $_.StartTime -gt [System.DateTime]::Now.AddDays(-1) }",
        "? { $_.Name -match '^svc' -and $_.Status -ne 'Stopped' }",
        "? { $_.Id -notin @(0, 4) }",
        "? { $_.Tags -contains 'prod' }",
        "? { -not $_.Responding }",
        "? { !($_.A -eq $null) }",
        "? { $_.A -gt -1.5e3 }",
        "? {\n    $_.A -eq 1 -or\n    $_.B -eq 2\n}",
        "Write-Output @{a=@{b=@(1,2)}; c={ $_ }}",
    ] {
        parse_script(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn date_values_record_get_date() {
    let v = first_arg("Write-Output (Get-Date -Hour 0).AddDays(-1).ToString('d')");
    let Literal::Expr(e) = &v else {
        panic!("{v:?}")
    };
    let c = e.command().unwrap();
    assert_eq!(c.name, "Get-Date");
    assert_eq!(
        c.args,
        vec![p("Hour"), Arg::Value(Literal::Number("0".into()))]
    );
    assert_eq!(
        e.members,
        vec![
            Member {
                name: "AddDays".into(),
                args: Some(vec![Literal::Number("-1".into())])
            },
            Member {
                name: "ToString".into(),
                args: Some(vec![s("d")])
            },
        ]
    );
    assert_eq!(v.commands().len(), 1);
    // Commands inside a hashtable, a block and a list are all found.
    let v = first_arg(
        "Write-Output @{a=(Get-Date); b={ $_.T -gt (Get-Date).AddDays(1) }; c=[datetime]::Now}",
    );
    assert_eq!(v.commands().len(), 2);
    let b = parse_block("$_.T -lt (Microsoft.PowerShell.Utility\\Get-Date)").unwrap();
    assert_eq!(b.commands().len(), 1);
    assert!(parse_block("$_.T -lt (Other\\Get-Date)").is_err());
}

#[test]
fn psrp_block_text_parses_alone() {
    let b = parse_block("$_.Status -eq 'Running'").unwrap();
    assert_eq!(b.statements.len(), 1);
    let e = parse_block("\n$_.Kill()").unwrap_err();
    assert_eq!(
        e,
        PwshError::Unsupported {
            construct: Construct::MethodCall,
            snippet: ".Kill()".into(),
            at: Position {
                offset: 3,
                line: 2,
                column: 3
            },
            in_block: true
        }
    );
    assert!(parse_block("Stop-Computer").is_err());
    assert!(parse_block("}").is_err());
    assert!(parse_block("").unwrap().statements.is_empty());
}

#[test]
fn nesting_is_bounded() {
    for open in [
        "(",
        "@(",
        "@{a=",
        "{ ",
        "{ (",
        "(Get-Date -Date ",
        "@{a={ @{b=",
    ] {
        let deep = format!("Write-Output {}", open.repeat(10_000));
        assert!(
            matches!(
                parse_script(&deep),
                Err(PwshError::Unsupported {
                    construct: Construct::Nesting,
                    ..
                })
            ),
            "{open}"
        );
    }
    let deep_ok = format!("Write-Output {}1{}", "@(".repeat(20), ")".repeat(20));
    assert!(parse_script(&deep_ok).is_ok());
    let deep_block = format!("? {{ {}$_{} }}", "(".repeat(20), ")".repeat(20));
    assert!(parse_script(&deep_block).is_ok(), "{deep_block}");
    let too_deep = format!("? {{ {}$_{} }}", "(".repeat(40), ")".repeat(40));
    assert!(matches!(
        parse_script(&too_deep),
        Err(PwshError::Unsupported {
            construct: Construct::Nesting,
            ..
        })
    ));
    // Long chains are loops, bounded in length; negations collapse.
    let chain = format!("? {{ $_ {} }}", "-eq 1 ".repeat(200));
    assert!(parse_script(&chain).is_ok());
    let chain = format!("? {{ $_ {} }}", "-or $_ ".repeat(300));
    assert!(parse_script(&chain).is_err());
    let nots = format!("? {{ {}$_ }}", "-not ".repeat(100_000));
    assert!(parse_script(&nots).is_ok());
    let members = format!("? {{ $_{} }}", ".a".repeat(300));
    assert!(parse_script(&members).is_err());
}

#[test]
fn a_date_value_may_start_a_pipeline() {
    assert_eq!(only_pipeline("(Get-Date).Year | Write-Output").len(), 2);
    assert!(parse_script("Get-Date | (Get-Date)").is_err());
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

        /// Expression soup: whatever is refused names a position inside the text
        /// where its snippet starts.
        #[test]
        fn expression_soup_errors_point_at_their_snippet(
            text in "[-a-zA-Z0-9_ $@(){}\\[\\];|&.,:'\"!=?%+\n\u{2013}]{0,60}"
        ) {
            check(&text)?;
            let _ = parse_block(&text);
        }

        /// Single edits of accepted scripts never panic, and their errors point into
        /// the text.
        #[test]
        fn mutated_accepted_scripts(
            which in 0..ACCEPTED.len(),
            at in any::<prop::sample::Index>(),
            delete in 0usize..4,
            insert in "(\\PC|[$(){}@.'\"\\[\\]|;=-]){0,4}",
        ) {
            let base: Vec<char> = ACCEPTED[which].chars().collect();
            let at = at.index(base.len() + 1);
            let end = (at + delete).min(base.len());
            let mut text: String = base[..at].iter().collect();
            text.push_str(&insert);
            text.extend(&base[end..]);
            check(&text)?;
        }
    }

    const ACCEPTED: &[&str] = &[
        "Get-Service | Where-Object { $_.Status -eq 'Running' } | Sort-Object Name",
        "Get-Process | Select-Object Name, @{n='MB'; e={ $_.WorkingSet64 -gt 1mb }}",
        "Get-WinEvent -FilterHashtable @{LogName='System'; Level=2; StartTime=(Get-Date).AddDays(-1)}",
        "? { $_.StartTime -gt [datetime]::Now.AddHours(-1) -and -not $_.HasExited }",
        "% { $_.Name }\nGet-Date -Format 'yyyy'",
        "Write-Output @(1, 'a', $true) (Get-Date).Date.ToString('d')",
    ];

    fn check(text: &str) -> Result<(), TestCaseError> {
        match parse_script(text) {
            Ok(_) => {}
            Err(PwshError::Unsupported { snippet, at, .. }) => {
                let rest = text.get(at.offset..);
                prop_assert!(rest.is_some(), "offset {} outside {text:?}", at.offset);
                let prefix = snippet.trim_end_matches('\u{2026}');
                prop_assert!(
                    rest.is_some_and(|r| r.starts_with(prefix)),
                    "{text:?}: snippet {snippet:?} not at {}",
                    at.offset
                );
                prop_assert_eq!(at, Position::locate(text, at.offset));
            }
            Err(PwshError::Unterminated { at, .. }) => {
                prop_assert!(text.get(at.offset..).is_some());
            }
        }
        Ok(())
    }
}
