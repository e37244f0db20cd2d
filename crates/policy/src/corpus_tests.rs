//! Decisions on real client traffic: the WinRS command lines, stdin and PSRP pipelines
//! that pypsrp sent to real Windows hosts (`../shared/corpus/pypsrp-responses`, MIT).
//! The extraction below is test-only scaffolding (fragments → messages → the Cmd/Args
//! fields of CREATE_PIPELINE, Name of GET_COMMAND_METADATA); the gateway's own codec
//! lives in `psrp` and is not used here, to keep `policy` independent of it. Expected
//! decisions come from reading each captured command against the example roles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use regex::Regex;

use super::test_support::load_dir;
use super::*;

/// The shared corpus next to the repository (or next to the directory holding a git
/// worktree of it).
fn corpus(name: &str) -> PathBuf {
    let root = super::test_support::repo_root();
    root.ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpus/pypsrp-responses"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| root.join("../shared/corpus/pypsrp-responses"))
        .join(name)
}

fn requests(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(corpus(name)).unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    doc["messages"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|m| m["request"].as_str().map(str::to_string))
        .collect()
}

fn unescape(s: &str) -> String {
    let s = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    // CLIXML escapes control characters as _xHHHH_.
    let re = Regex::new("_x([0-9A-Fa-f]{4})_").unwrap();
    re.replace_all(&s, |c: &regex::Captures<'_>| {
        char::from_u32(u32::from_str_radix(&c[1], 16).unwrap())
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .to_string()
    })
    .into_owned()
}

/// WinRS cmd-shell commands: (Command, Arguments).
fn winrs_commands(name: &str) -> Vec<(String, Vec<String>)> {
    let cmd = Regex::new(r"<rsp:Command>([^<]*)</rsp:Command>").unwrap();
    let arg = Regex::new(r"<rsp:Arguments>([^<]*)</rsp:Arguments>").unwrap();
    requests(name)
        .iter()
        .filter(|r| r.contains("windows/shell/cmd") && r.contains("rsp:CommandLine"))
        .map(|r| {
            let c = cmd.captures(r).map(|c| unescape(&c[1])).unwrap_or_default();
            (c, arg.captures_iter(r).map(|a| unescape(&a[1])).collect())
        })
        .collect()
}

/// stdin chunks sent with rsp:Send in a cmd shell.
fn winrs_stdin(name: &str) -> Vec<String> {
    let re = Regex::new(r#"<rsp:Stream[^>]*Name="stdin"[^>]*>([^<]*)</rsp:Stream>"#).unwrap();
    requests(name)
        .iter()
        .flat_map(|r| {
            re.captures_iter(r)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .map(|b| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        })
        .collect()
}

/// PSRP messages (type, XML) in request order, reassembled from fragments.
fn psrp_messages(name: &str) -> Vec<(u32, String)> {
    let re = Regex::new(r"<rsp:Arguments>([^<]*)</rsp:Arguments>|<rsp:Stream[^>]*>([^<]*)</rsp:Stream>|<creationXml[^>]*>([^<]*)</creationXml>").unwrap();
    let mut partial: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for r in requests(name).iter().filter(|r| {
        r.to_ascii_lowercase()
            .contains("schemas.microsoft.com/powershell/")
    }) {
        for c in re.captures_iter(r) {
            let b64 = c.get(1).or(c.get(2)).or(c.get(3)).unwrap().as_str();
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                continue;
            };
            let mut i = 0;
            while i + 21 <= bytes.len() {
                let object = u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap());
                let flags = bytes[i + 16];
                let len = u32::from_be_bytes(bytes[i + 17..i + 21].try_into().unwrap()) as usize;
                let data = &bytes[i + 21..(i + 21 + len).min(bytes.len())];
                i += 21 + len;
                let buf = partial.entry(object).or_default();
                if flags & 1 != 0 {
                    buf.clear();
                }
                buf.extend_from_slice(data);
                if flags & 2 != 0 && buf.len() >= 40 {
                    let kind = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                    let body = String::from_utf8_lossy(&buf[40..])
                        .trim_start_matches('\u{feff}')
                        .to_string();
                    out.push((kind, body));
                    buf.clear();
                }
            }
        }
    }
    out
}

const CREATE_PIPELINE: u32 = 0x0002_1006;
const GET_COMMAND_METADATA: u32 = 0x0002_100A;

fn arg_value(tag: &str, text: &str) -> ArgValue {
    match tag {
        "S" => ArgValue::String(unescape(text)),
        "B" => ArgValue::Bool(text == "true"),
        "I32" | "I64" | "U32" | "By" | "I16" => ArgValue::Number(text.to_string()),
        "Nil" => ArgValue::Null,
        other => ArgValue::Other(other.to_string()),
    }
}

/// The statements of a CREATE_PIPELINE: ExtraCmds when present (the last `Cmds` is the
/// duplicate of the first statement), otherwise `Cmds`.
fn invocation(xml: &str) -> Invocation {
    let cmd_re = Regex::new(r#"<S N="Cmd">(.*?)</S><B N="IsScript">(true|false)</B>.*?<Obj N="Args"[^>]*>(?:<TNRef[^>]*/>)?(?:<LST />|<LST>(.*?)</LST>)"#).unwrap();
    let arg_re = Regex::new(r#"<MS>(?:<S N="N">(.*?)</S>|<Nil N="N" />)(?:<(\w+) N="V">(.*?)</\w+>|<Nil N="V" />)</MS>"#).unwrap();
    let mut regions: Vec<&str> = xml.split(r#"<Obj N="Cmds""#).skip(1).collect();
    if xml.contains(r#"<Obj N="ExtraCmds""#) {
        regions.pop();
    }
    let statements = regions
        .iter()
        .map(|region| {
            cmd_re
                .captures_iter(region)
                .map(|c| InvokedCommand {
                    name: unescape(&c[1]),
                    is_script: &c[2] == "true",
                    args: c.get(3).map_or(Vec::new(), |l| {
                        arg_re
                            .captures_iter(l.as_str())
                            .map(|a| InvokedArg {
                                name: a.get(1).map(|n| unescape(n.as_str())),
                                value: match (a.get(2), a.get(3)) {
                                    (Some(t), Some(v)) => arg_value(t.as_str(), v.as_str()),
                                    _ => ArgValue::Null,
                                },
                            })
                            .collect()
                    }),
                })
                .collect()
        })
        .collect();
    Invocation {
        statements,
        client_input: false,
    }
}

fn pipelines(name: &str) -> Vec<Invocation> {
    psrp_messages(name)
        .into_iter()
        .filter(|(k, _)| *k == CREATE_PIPELINE)
        .map(|(_, x)| invocation(&x))
        .collect()
}

fn engine() -> Engine {
    load_dir(&super::test_support::policies_dir()).unwrap()
}

fn decide(
    user: &str,
    groups: &[&str],
    host: &str,
    labels: &[String],
    op: &Operation<'_>,
) -> Decision {
    let who = Subject {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    engine().decide(&who, &HostRef { name: host, labels }, op)
}

fn alice(op: &Operation<'_>) -> Decision {
    decide("alice@hopgate.test", &[], "demo-host", &[], op)
}

fn admin(op: &Operation<'_>) -> Decision {
    decide("root", &["hopgate-admins"], "db-07", &[], op)
}

fn operator(op: &Operation<'_>) -> Decision {
    decide("carol", &["operators"], "srv-01", &[], op)
}

#[test]
fn corpus_pipelines_are_extracted_as_captured() {
    // Pinned from the captured CLIXML: pypsrp's execute_ps wrapper and a two-statement
    // pipeline whose first statement is repeated in Cmds.
    let p = pipelines("test_client_execute_ps.yml");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].statements.len(), 1);
    let names: Vec<&str> = p[0].statements[0].iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["Invoke-Expression", "Out-String"]);
    assert_eq!(
        p[0].statements[0][0].args[0].name.as_deref(),
        Some("Command")
    );
    let long = pipelines("test_psrp_long_running_cmdlet.yml");
    assert_eq!(long[0].statements.len(), 2);
    assert_eq!(long[0].statements[1][0].name, "echo hi");
    assert!(long[0].statements[1][0].is_script);
}

#[test]
fn corpus_psrp_pipelines_against_the_demo_role() {
    // (file, index of the CREATE_PIPELINE, allowed for alice on demo-host)
    let cases = [
        // "$serv = Get-Service -Name winrm; $serv.Name; ..." inside Invoke-Expression
        ("test_client_execute_ps.yml", 0, false),
        ("test_client_copy_file.yml", 0, false),
        ("test_client_fetch_file.yml", 0, false),
        ("test_client_execute_ps_environment.yml", 0, false),
        // script "echo new": echo is Write-Output
        ("test_psrp_clear_commands.yml", 0, true),
        // Start-Sleep is not visible to demo
        ("test_psrp_disconnected_commands.yml", 0, false),
        ("test_psrp_long_running_cmdlet.yml", 0, false),
        // [System.Runtime.InteropServices.marshal]::PtrToStringAuto(...)
        ("test_psrp_multiple_commands.yml", 0, false),
        // "1+1"
        ("test_psrp_multiple_invocations.yml", 0, false),
        ("test_psrp_no_profile.yml", 0, false),
        ("test_psrp_pshost_methods.yml", 0, false),
        // "echo hi" then Get-History
        ("test_psrp_reset_runspace_state.yml", 0, true),
        ("test_psrp_reset_runspace_state.yml", 1, false),
        // "Write-Output 1; Write-Output 2"
        ("test_psrp_with_history.yml", 0, true),
        ("test_psrp_with_no_history.yml", 0, true),
        // Get-Item -Path WSMan:\..., then a Set-Item script in an extra statement
        ("test_psrp_with_jea_configuration.yml", 0, false),
        ("test_psrp_with_jea_configuration.yml", 1, false),
    ];
    for (file, index, allowed) in cases {
        let inv = &pipelines(file)[index];
        let d = alice(&Operation::Pipeline(inv));
        assert_eq!(d.is_allow(), allowed, "{file}[{index}]: {d:?} for {inv:?}");
        // The break-glass role allows everything it is given.
        assert!(
            admin(&Operation::Pipeline(inv)).is_allow(),
            "{file}[{index}]"
        );
    }
}

#[test]
fn corpus_extra_statement_is_judged() {
    // test_psrp_with_jea_configuration: Get-Item (visible to operators) followed by an
    // ExtraCmds script statement that changes WinRM settings.
    let p = pipelines("test_psrp_with_jea_configuration.yml");
    assert!(
        operator(&Operation::Pipeline(&p[0])).is_allow(),
        "{:?}",
        p[0]
    );
    let Decision::Deny { reason, .. } = operator(&Operation::Pipeline(&p[1])) else {
        panic!("{:?}", p[1])
    };
    assert!(reason.contains("Set-Item"), "{reason}");
}

#[test]
fn corpus_get_command_metadata() {
    let name_re =
        Regex::new(r#"<Obj N="Name"[^>]*>(?:<TN .*?</TN>|<TNRef[^>]*/>)?<LST>(.*?)</LST>"#)
            .unwrap();
    let s_re = Regex::new(r"<S>(.*?)</S>").unwrap();
    let requests: Vec<Vec<String>> = psrp_messages("test_psrp_get_command_metadata.yml")
        .into_iter()
        .filter(|(k, _)| *k == GET_COMMAND_METADATA)
        .map(|(_, x)| {
            s_re.captures_iter(&name_re.captures(&x).unwrap()[1])
                .map(|c| unescape(&c[1]))
                .collect()
        })
        .collect();
    assert_eq!(
        requests,
        vec![
            vec!["new-pssession*".to_string()],
            vec!["new-*".to_string()],
            vec!["Get-*".to_string()]
        ]
    );
    for names in &requests {
        // Wildcard metadata queries only reveal command metadata: allowed for PSRP roles.
        assert!(alice(&Operation::CommandMetadata { names }).is_allow());
    }
}

#[test]
fn corpus_winrs_command_lines() {
    let mut seen = Vec::new();
    for file in [
        "test_winrs_standard.yml",
        "test_winrs_stderr_rc.yml",
        "test_winrs_send.yml",
        "test_client_execute_cmd.yml",
        "test_winrs_noprofile.yml",
        "test_winrs_no_cmd_shell.yml",
        "test_client_copy_file.yml",
    ] {
        for (command, arguments) in winrs_commands(file) {
            let op = Operation::CmdLine {
                command: &command,
                arguments: &arguments,
                skip_cmd_shell: false,
            };
            seen.push((
                format!("{command} {}", arguments.join(" "))
                    .trim()
                    .to_string(),
                alice(&op).is_allow(),
                admin(&op).is_allow(),
            ));
        }
    }
    let expect = |line: &str, demo: bool| {
        let hit = seen
            .iter()
            .find(|(l, _, _)| l == line)
            .unwrap_or_else(|| panic!("{line} not in corpus: {seen:?}"));
        assert_eq!(hit.1, demo, "{line}");
        assert!(hit.2, "{line} for full-admin");
    };
    expect("cmd.exe /c echo out && echo err>&2 && exit 1", false);
    expect("echo abc", true);
    expect("powershell.exe -", true);
    expect("dir", false);
    expect("cmd.exe /c set", false);
    expect("cmd.exe /c echo hi", true);
    expect("powershell.exe Write-Host hi", false);
    expect(
        r"C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe Write-Host hi",
        false,
    );
    assert!(seen
        .iter()
        .any(|(l, demo, _)| l.starts_with("powershell Remove-Item -Path") && !demo));
}

#[test]
fn corpus_stdin_to_powershell() {
    let chunks = winrs_stdin("test_winrs_send.yml");
    assert_eq!(
        chunks,
        vec![
            "Write-Host \"output 1\";".to_string(),
            "Write-Host \"output 2\";".to_string()
        ]
    );
    for data in &chunks {
        let op = Operation::CmdStdin {
            program: "powershell.exe -",
            data,
        };
        // Write-Host is not visible to demo; the admin may run it.
        assert!(!alice(&op).is_allow());
        assert!(admin(&op).is_allow());
        let op = Operation::CmdStdin {
            program: "powershell.exe -",
            data: &data.replace("Write-Host", "Write-Output"),
        };
        assert!(alice(&op).is_allow());
    }
}
