//! Pipelines of the corpus pinned by hand: command names, IsScript flags, argument names
//! and values. The values were read from psrpcore's decoding of the corpus
//! (tests/fixtures/psrp/expected.json, see dump_expected.py) and checked against the
//! CLIXML; they were not produced by hopgate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::corpus::Direction;
use super::corpus::{corpus_dir, load, PS_RESOURCE};
use super::corpus_tests::decode_file;
use crate::psrp::{
    extract_create_pipeline, extract_get_command_metadata, parse_fragments, MessageType, Pipeline,
};

/// (name, is_script, [(argument name, argument value as JSON)]). A name ending in `…` is
/// a prefix (long scripts).
type Cmd = (
    &'static str,
    bool,
    &'static [(Option<&'static str>, &'static str)],
);

struct Case {
    file: &'static str,
    /// Index among the file's CREATE_PIPELINE messages.
    index: usize,
    statements: &'static [&'static [Cmd]],
}

const EXECUTE_PS_TAIL: Cmd = ("Out-String", false, &[(Some("Stream"), "null")]);

const CASES: &[Case] = &[
    Case {
        file: "test_psrp_small_msg_size.yml",
        index: 0,
        statements: &[&[("begin {\n    $big_var = 'aaaa…", true, &[])]],
    },
    Case {
        file: "test_psrp_multiple_commands.yml",
        index: 0,
        statements: &[
            &[(
                "Set-Variable",
                false,
                &[
                    (Some("Name"), r#""sec_string""#),
                    (Some("Value"), r#"{"secure_string":"<redacted>"}"#),
                ],
            )],
            &[(
                "[System.Runtime.InteropServices.marshal]::PtrToStringAuto([System.Runtime.InteropServices.marshal]::SecureStringToBSTR($sec_string))",
                true,
                &[],
            )],
            &[(
                "ConvertTo-SecureString",
                false,
                &[(Some("String"), r#""abc""#), (Some("AsPlainText"), "null"), (Some("Force"), "null")],
            )],
            &[(
                "Set-Variable",
                false,
                &[
                    (Some("Name"), r#""unicode_string""#),
                    // `_x005F_x000A_` on the wire is a literal `_x000A_`; `_x000A_` is a
                    // newline; `_xD801__xDC37_` is one character outside the BMP.
                    (Some("Value"), "\"こんにちは - actual_x000A_string\\nnewline: \u{10437}\""),
                ],
            )],
            &[("$unicode_string", true, &[])],
            &[("cmd.exe", false, &[(None, r#""/c echo hi""#)])],
            &[("whoami.exe", false, &[])],
            &[("Set-Variable", false, &[(Some("Name"), r#""integer""#), (Some("Value"), "123")])],
            &[("$integer", true, &[])],
            &[("Get-Service", false, &[(Some("Name"), r#""winrm""#)])],
        ],
    },
    Case {
        file: "test_psrp_with_jea_configuration.yml",
        index: 0,
        statements: &[&[(
            "Get-Item",
            false,
            &[(Some("Path"), r#""WSMan:\\localhost\\Service\\AllowUnencrypted""#)],
        )]],
    },
    Case {
        file: "test_psrp_with_jea_configuration.yml",
        index: 1,
        statements: &[
            &[("Get-Item", false, &[(Some("Path"), r#""C:\\Windows""#)])],
            &[("Set-Item -Path WSMan:\\localhost\\Service\\AllowUnencrypted -Value $false", true, &[])],
        ],
    },
    Case {
        file: "test_client_execute_ps.yml",
        index: 0,
        statements: &[&[
            ("Invoke-Expression", false, &[(Some("Command"), r#""$serv = Get-Service -Name winrm; $serv.Name; $serv.Status; $serv""#)]),
            EXECUTE_PS_TAIL,
        ]],
    },
    Case {
        file: "test_client_execute_ps_failure.yml",
        index: 0,
        statements: &[&[
            ("Invoke-Expression", false, &[(Some("Command"), r#""Get-ServiceTypo -Name winrm""#)]),
            EXECUTE_PS_TAIL,
        ]],
    },
    Case {
        file: "test_client_execute_ps_environment.yml",
        index: 0,
        statements: &[
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""string""#),
                        (Some("Value"), r#""string value""#),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""int""#),
                        (Some("Value"), "1234"),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""bool""#),
                        (Some("Value"), "true"),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""double_quote""#),
                        (Some("Value"), r#""double \" quote""#),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""single_quote""#),
                        (Some("Value"), r#""single ' quote""#),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""hyphen - var""#),
                        (Some("Value"), r#""abc @ 123""#),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                (
                    "New-Item",
                    false,
                    &[
                        (Some("Path"), r#""env:""#),
                        (Some("Name"), r#""_-(){}[]<>*+-/\\?\"!@#$%^&|;:i,.`~0""#),
                        (Some("Value"), r#""_-(){}[]<>*+-/\\?\"!@#$%^&|;:i,.`~0""#),
                        (Some("Force"), "true"),
                    ],
                ),
                ("Out-Null", false, &[]),
            ],
            &[
                ("Invoke-Expression", false, &[(Some("Command"), r#""cmd.exe /c set""#)]),
                EXECUTE_PS_TAIL,
            ],
        ],
    },
    Case {
        file: "test_psrp_long_running_cmdlet.yml",
        index: 0,
        statements: &[&[("Start-Sleep", false, &[(Some("Seconds"), "10")])], &[("echo hi", true, &[])]],
    },
    Case {
        file: "test_client_copy_file.yml",
        index: 1,
        statements: &[&[(
            "begin {\n$ErrorActionPreference = \"Stop\"\n$WarningPreference = \"Continue\"\n…",
            true,
            &[(None, r#""C:\\Users\\vagrant-domain\\Documents\\test_file""#), (None, "false")],
        )]],
    },
    Case {
        file: "test_client_copy_expand_vars.yml",
        index: 0,
        statements: &[&[("begin {\n$ErrorActionPreference = \"Stop\"\n…", true, &[(None, r#""%TEMP%\\test_file""#), (None, "true")])]],
    },
    Case {
        file: "test_client_fetch_file.yml",
        index: 0,
        statements: &[&[(
            "$ErrorActionPreference = 'Stop'\n$raw_src_path = $MyInvocation.UnboundArguments[0…",
            true,
            &[(None, r#""C:\\temp\\file.txt""#), (None, "false")],
        )]],
    },
    Case {
        file: "test_psrp_clear_commands.yml",
        index: 0,
        statements: &[&[("echo new", true, &[])]],
    },
    Case {
        file: "test_psrp_error_failed.yml",
        index: 0,
        statements: &[&[("$ErrorActionPreference = 'Stop'; Write-Output before; Write-Error error; Write-O…", true, &[])]],
    },
    Case {
        file: "test_psrp_multiple_invocations.yml",
        index: 1,
        statements: &[&[("1+1", true, &[])]],
    },
    Case {
        file: "test_psrp_no_profile.yml",
        index: 0,
        statements: &[&[("$env:USERPROFILE.ToUpperInvariant()", true, &[])]],
    },
    Case {
        file: "test_psrp_reset_runspace_state.yml",
        index: 1,
        statements: &[&[("Get-History", false, &[])]],
    },
    Case {
        file: "test_psrp_with_history.yml",
        index: 0,
        statements: &[&[("Write-Output 1; Write-Output 2", true, &[])]],
    },
    Case {
        file: "test_psrp_disconnected_commands.yml",
        index: 1,
        statements: &[&[("Write-Output 'a'; Start-Sleep -Seconds 5; Write-Output 'b'", true, &[])]],
    },
    Case {
        file: "test_psrp_pshost_methods.yml",
        index: 0,
        statements: &[&[("$host.CurrentCulture; $host.SetShouldExit(1)", true, &[])]],
    },
];

fn pipelines(file: &str) -> Vec<Pipeline> {
    let decoded = decode_file(&corpus_dir().join(file));
    decoded[&Direction::ClientToServer]
        .iter()
        .filter(|m| m.message_type == MessageType::CreatePipeline)
        .map(|m| extract_create_pipeline(m).unwrap())
        .collect()
}

#[test]
fn pinned_corpus_pipelines() {
    let files: std::collections::BTreeSet<_> = CASES.iter().map(|c| c.file).collect();
    assert!(files.len() >= 15, "{} files pinned", files.len());
    for case in CASES {
        let got = &pipelines(case.file)[case.index];
        let ctx = format!("{} #{}", case.file, case.index);
        assert_eq!(
            got.statements.len(),
            case.statements.len(),
            "{ctx}: statements"
        );
        for (s, (got_stmt, want_stmt)) in got.statements.iter().zip(case.statements).enumerate() {
            assert_eq!(
                got_stmt.len(),
                want_stmt.len(),
                "{ctx} statement {s}: commands"
            );
            for (got_cmd, (name, is_script, args)) in got_stmt.iter().zip(want_stmt.iter()) {
                match name.strip_suffix('…') {
                    Some(prefix) => assert!(
                        got_cmd.name.starts_with(prefix),
                        "{ctx}: {:?}",
                        got_cmd.name
                    ),
                    None => assert_eq!(got_cmd.name, *name, "{ctx}"),
                }
                assert_eq!(got_cmd.is_script, *is_script, "{ctx}: {name}");
                let got_args: Vec<(Option<&str>, String)> = got_cmd
                    .args
                    .iter()
                    .map(|a| (a.name.as_deref(), serde_json::to_string(&a.value).unwrap()))
                    .collect();
                let want_args: Vec<(Option<&str>, String)> =
                    args.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
                assert_eq!(got_args, want_args, "{ctx}: {name}");
            }
        }
    }
}

#[test]
fn small_msg_size_create_pipeline_spans_command_and_send() {
    // The script is 30126 characters (psrpcore), larger than one 32 KiB envelope allows.
    let got = &pipelines("test_psrp_small_msg_size.yml")[0];
    assert_eq!(got.statements[0][0].name.chars().count(), 30126);

    // Fragment 0 (Start) rides in the Command's Arguments, fragment 1 (End) in a later Send.
    let exchanges = load(&corpus_dir().join("test_psrp_small_msg_size.yml"));
    let mut seen = Vec::new();
    for ex in &exchanges {
        if !ex.request.resource_uri.starts_with(PS_RESOURCE) {
            continue;
        }
        for p in &ex.request.payloads {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
            for f in parse_fragments(&bytes).unwrap() {
                if !(f.start && f.end) {
                    let action = ex.request.action.rsplit('/').next().unwrap().to_owned();
                    seen.push((action, f.object_id, f.fragment_id, f.start, f.end));
                }
            }
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].1, seen[1].1, "same object");
    assert_eq!(seen[0], ("Command".to_owned(), seen[0].1, 0, true, false));
    assert_eq!(seen[1], ("Send".to_owned(), seen[0].1, 1, false, true));
}

#[test]
fn get_command_metadata_names() {
    let decoded = decode_file(&corpus_dir().join("test_psrp_get_command_metadata.yml"));
    let names: Vec<Vec<String>> = decoded[&Direction::ClientToServer]
        .iter()
        .filter(|m| m.message_type == MessageType::GetCommandMetadata)
        .map(|m| extract_get_command_metadata(m).unwrap())
        .collect();
    assert_eq!(
        names,
        vec![vec!["new-pssession*"], vec!["new-*"], vec!["Get-*"]]
    );
}
