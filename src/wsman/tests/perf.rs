//! Parse speed of a typical large Command envelope (run with
//! `cargo test --release --lib wsman::tests::perf -- --ignored --nocapture`).

use std::time::Instant;

use super::corpus::pypsrp_sessions;
use crate::wsman::{build, parse, Body, Limits};

#[test]
#[ignore = "timing; run explicitly, preferably with --release"]
fn twenty_kb_command_parses_quickly() {
    // A real PSRP Command with its Arguments padded to ~20 KB of base64.
    let (_, exchanges) = pypsrp_sessions()
        .into_iter()
        .find(|(f, _)| f == "test_psrp_disconnected_commands.yml")
        .unwrap();
    let mut env = exchanges
        .iter()
        .map(|ex| {
            parse(
                ex.request.as_deref().unwrap().as_bytes(),
                &Limits::default(),
            )
            .unwrap()
        })
        .find(|env| matches!(env.body, Body::CommandLine(_)))
        .unwrap();
    let Body::CommandLine(cl) = &mut env.body else {
        panic!("{:?}", env.body)
    };
    let first = cl.arguments[0].clone();
    while cl.arguments.iter().map(String::len).sum::<usize>() < 20_000 {
        cl.arguments.push(first.clone());
    }
    let xml = build(&env);
    assert!(xml.len() > 20_000);
    let rounds = 2000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(parse(std::hint::black_box(&xml), &Limits::default()).unwrap());
    }
    let per = start.elapsed() / rounds;
    eprintln!("{} bytes: {per:?} per parse", xml.len());
    if !cfg!(debug_assertions) {
        assert!(per.as_micros() < 50, "{per:?}");
    }
}
