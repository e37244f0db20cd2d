//! Every recorded request through the inspector: pypsrp's sessions against real Windows
//! hosts (`../shared/corpus/pypsrp-responses`, answers included) and the pywinrm and Go
//! winrm captures (`tests/fixtures/wsman`). No panic, and verdicts that make sense: an
//! administrator's traffic all goes through, the demo role's refusals are faults for cmd
//! and failed pipelines for PSRP.

use std::collections::HashMap;

use super::*;
use crate::psrp::{parse_fragments, read_host_message, HostEvent, InvocationState};

/// What happened to one recording (or the whole corpus).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    requests: usize,
    creates: usize,
    forwarded: usize,
    released_held: usize,
    replies: usize,
    faults: usize,
    allowed: usize,
    denied: usize,
    outputs: usize,
    failed_pipelines_sent: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.requests += o.requests;
        self.creates += o.creates;
        self.forwarded += o.forwarded;
        self.released_held += o.released_held;
        self.replies += o.replies;
        self.faults += o.faults;
        self.allowed += o.allowed;
        self.denied += o.denied;
        self.outputs += o.outputs;
        self.failed_pipelines_sent += o.failed_pipelines_sent;
    }
}

fn corpus() -> PathBuf {
    repo().join("../shared/corpus/pypsrp-responses")
}

fn recordings() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .filter(|p| !p.ends_with("_template.yml"))
        .collect();
    files.sort();
    files
}

fn pairs(path: &Path) -> Vec<(String, Option<String>)> {
    let doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["messages"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["request"].as_str().unwrap().to_string(),
                m["response"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn created_id(answer: &Envelope) -> Option<String> {
    answer.shell_id().map(str::to_string)
}

/// Plays one recording through inspectors judged for `who`; `facts_of` collects the
/// facts per request (for pinned checks).
fn play(path: &Path, who: &Who, mut facts_of: impl FnMut(&Envelope, &Verdict, &[Fact])) -> Tally {
    let mut t = Tally::default();
    let mut shells: HashMap<String, Inspector> = HashMap::new();
    let mut ids = counter();
    let limits = wsman::Limits::default();
    for (req, resp) in pairs(path) {
        let env = wsman::parse(req.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let answer = resp.and_then(|r| wsman::parse(r.as_bytes(), &limits).ok());
        t.requests += 1;
        if *env.action() == Action::Create {
            let (opened, facts) = Inspector::open(&env, &who.judge());
            facts_of(&env, &Verdict::Forward(vec![]), &facts);
            if let (Ok(inspector), Some(id)) = (opened, answer.as_ref().and_then(created_id)) {
                t.creates += 1;
                shells.insert(id.to_ascii_uppercase(), inspector);
            }
            continue;
        }
        let Some(sh) = env
            .shell_id()
            .and_then(|id| shells.get_mut(&id.to_ascii_uppercase()))
        else {
            continue;
        };
        let (verdict, facts) = inspect(sh, who, &env, &mut ids);
        facts_of(&env, &verdict, &facts);
        for f in &facts {
            match f {
                Fact::Allowed { .. } => t.allowed += 1,
                Fact::Denied { .. } => t.denied += 1,
                _ => {}
            }
        }
        match &verdict {
            Verdict::Forward(bodies) => {
                t.forwarded += 1;
                if bodies.len() > 1 {
                    t.released_held += 1;
                }
                if let Some(answer) = &answer {
                    let facts = sh.on_answer(&env, answer);
                    t.outputs += facts.len();
                    facts_of(answer, &verdict, &facts);
                }
            }
            Verdict::Reply(r) => {
                t.replies += 1;
                assert_eq!(r.header.relates_to, env.header.message_id);
                if let Body::ReceiveResponse { streams, .. } = &r.body {
                    for s in streams {
                        for f in parse_fragments(&s.data).unwrap() {
                            let m = Message::parse(&f.blob).unwrap();
                            let ev = read_host_message(&m, 4096).unwrap();
                            assert!(
                                matches!(
                                    ev,
                                    Some(HostEvent::State {
                                        state: InvocationState::Failed,
                                        ..
                                    })
                                ),
                                "{ev:?}"
                            );
                            t.failed_pipelines_sent += 1;
                        }
                    }
                }
            }
            Verdict::Deny(_) => {
                t.faults += 1;
                assert!(
                    !denied_reasons(&facts).is_empty(),
                    "every fault is recorded: {}",
                    path.display()
                );
            }
        }
    }
    t
}

#[test]
fn an_administrators_recorded_traffic_all_goes_through() {
    let who = Who::admin();
    let mut total = Tally::default();
    for path in recordings() {
        let t = play(&path, &who, |_, _, _| {});
        assert_eq!((t.faults, t.denied), (0, 0), "{}: {t:?}", path.display());
        total += t;
    }
    // Pinned from the corpus (counted apart from the gateway's codecs, by decoding the
    // recordings with Python): 470 requests, 67 Creates, 43 client messages that open a
    // pipeline (CREATE_PIPELINE, GET_COMMAND_METADATA), 19 cmd Commands and 2 stdin
    // streams: each judged exactly once. The one pipeline split across Command and Send
    // (test_psrp_small_msg_size) is held once and released once.
    assert_eq!(total.requests, 470, "{total:?}");
    assert_eq!(total.creates, 67, "{total:?}");
    assert_eq!(total.allowed, 43 + 19 + 2, "{total:?}");
    assert_eq!(total.released_held, 1, "{total:?}");
    assert_eq!(
        total.replies, 1,
        "only the held Command is answered by the gateway"
    );
    assert!(total.outputs > 50, "{total:?}");
}

#[test]
fn the_demo_roles_refusals_keep_psrp_sessions_alive() {
    // alice may use demo-host only; the recordings run on her host under the demo role.
    let who = Who::alice();
    let mut total = Tally::default();
    for path in recordings() {
        let mut psrp_command_faults = 0;
        let t = play(&path, &who, |env, verdict, _| {
            let psrp = env
                .header
                .resource_uri
                .as_deref()
                .is_some_and(|r| r.starts_with(PSRP_RESOURCE_PREFIX));
            if psrp && *env.action() == Action::Command && matches!(verdict, Verdict::Deny(_)) {
                psrp_command_faults += 1;
            }
        });
        assert_eq!(
            psrp_command_faults,
            0,
            "{}: a PSRP pipeline refused with a fault",
            path.display()
        );
        total += t;
    }
    assert!(total.denied > 20, "{total:?}");
    assert!(total.allowed > 0, "{total:?}");
    assert!(
        total.failed_pipelines_sent > 10,
        "refused pipelines are answered as failed ones when the client asks: {total:?}"
    );
}

#[test]
fn pinned_split_pipeline_and_multiple_statements() {
    let who = Who::admin();
    let mut seen = Vec::new();
    play(
        &corpus().join("test_psrp_small_msg_size.yml"),
        &who,
        |env, verdict, facts| {
            seen.push((env.action().clone(), verdict.clone(), allowed(facts)));
        },
    );
    let command = seen
        .iter()
        .position(|(a, _, _)| *a == Action::Command)
        .unwrap();
    assert!(
        matches!(&seen[command].1, Verdict::Reply(r) if r.header.action == Action::CommandResponse)
    );
    assert!(seen[command].2.is_empty(), "not judged before it is whole");
    let (action, verdict, judged) = &seen[command + 1];
    assert_eq!(*action, Action::Send);
    assert!(matches!(verdict, Verdict::Forward(b) if b.len() == 2));
    assert_eq!(judged.len(), 1);

    let mut statements = Vec::new();
    play(
        &corpus().join("test_psrp_multiple_commands.yml"),
        &who,
        |_, _, facts| {
            statements.extend(allowed(facts));
        },
    );
    assert!(statements.iter().any(|s| s.len() >= 2), "{statements:?}");
}

#[test]
fn pinned_outputs_of_real_windows_answers() {
    let who = Who::admin();
    let mut outs = Vec::new();
    let mut grab = |_: &Envelope, _: &Verdict, facts: &[Fact]| {
        for f in facts {
            if let Fact::Output(o) = f {
                outs.push(o.clone());
            }
        }
    };
    play(&corpus().join("test_winrs_stderr_rc.yml"), &who, &mut grab);
    play(
        &corpus().join("test_psrp_error_failed.yml"),
        &who,
        &mut grab,
    );
    assert!(
        outs.iter().any(|o| o.stdout.as_deref() == Some("out \r\n")
            && o.stderr.as_deref() == Some("err \r\n")
            && o.exit_code == Some(1)),
        "{outs:#?}"
    );
    assert!(
        outs.iter()
            .any(|o| o.pipeline_state.as_deref() == Some("Failed")
                && o.stdout.as_deref().is_some_and(|s| s.contains("before"))),
        "{outs:#?}"
    );
}

#[test]
fn pywinrm_and_go_captures_go_through() {
    let who = Who::admin();
    for dir in ["pywinrm", "go-winrm"] {
        let base = repo().join("tests/fixtures/wsman").join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort_by_key(|p| {
            // pywinrm's files are named by action; put them in session order.
            let order = ["create", "command", "send", "receive", "signal", "delete"];
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            (
                order.iter().position(|o| name.ends_with(o)).unwrap_or(9),
                name,
            )
        });
        let limits = wsman::Limits::default();
        let mut sh: Option<Inspector> = None;
        let mut ids = counter();
        for f in files {
            let env = wsman::parse(&std::fs::read(&f).unwrap(), &limits).unwrap();
            if *env.action() == Action::Create {
                sh = Some(Inspector::open(&env, &who.judge()).0.unwrap());
                continue;
            }
            let sh = sh.as_mut().unwrap();
            let (verdict, facts) = inspect(sh, &who, &env, &mut ids);
            match (env.action(), &verdict) {
                (Action::Command, Verdict::Forward(_)) => {
                    assert_eq!(allowed(&facts).len(), 1);
                    // The host's answer, as Windows would give it, starts the program.
                    if let Body::CommandLine(cl) = &env.body {
                        let id = cl.command_id.clone().unwrap_or_else(|| "C1".into());
                        let answer = request(
                            Action::CommandResponse,
                            "",
                            Body::CommandResponse { command_id: id },
                        );
                        sh.on_answer(&env, &answer);
                    }
                }
                // Without the host's real CommandId the capture's stdin names a command
                // the inspector never saw start: refused, never forwarded unjudged.
                (Action::Send, Verdict::Deny(_)) => {}
                (_, Verdict::Forward(_)) => {}
                (a, v) => panic!("{dir} {}: {a:?} {v:?}", f.display()),
            }
        }
    }
}
