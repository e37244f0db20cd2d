//! Hostile input never panics: random bytes, every truncation and random corruption of real
//! envelopes. (The cargo-fuzz target in `fuzz/` covers the same entry point with coverage
//! guidance.)

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::corpus::pypsrp_sessions;
use crate::wsman::{build, parse, rewrite_to, Limits, WsmanError};

/// A few real envelopes of different kinds (Create with creationXml, Command, Receive
/// response with streams and CommandState, a fault), read once.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(load_seeds);
    &SEEDS
}

fn load_seeds() -> Vec<Vec<u8>> {
    let sessions = pypsrp_sessions();
    let pick = |file: &str, index: usize, response: bool| -> Vec<u8> {
        let (_, ex) = sessions.iter().find(|(f, _)| f == file).unwrap();
        let e = &ex[index];
        let xml = if response { &e.response } else { &e.request };
        xml.clone().unwrap().into_bytes()
    };
    vec![
        pick("test_psrp_disconnected_commands.yml", 0, false),
        pick("test_winrs_send.yml", 1, false),
        pick("test_winrs_send.yml", 4, true),
        pick("test_psrp_is_alive_invalid_selectors.yml", 4, true),
        pick("test_winrs_environment.yml", 0, false),
    ]
}

#[test]
fn every_truncation_of_real_envelopes_is_an_error() {
    for seed in seeds() {
        let seed = seed.as_slice();
        for cut in 0..seed.len() {
            // A strict prefix of an envelope is never a complete envelope.
            assert!(
                parse(&seed[..cut], &Limits::default()).is_err(),
                "cut {cut}"
            );
        }
        assert!(parse(seed, &Limits::default()).is_ok());
    }
}

proptest! {
    // Failures are saved beside this file (src/wsman/tests/props.proptest-regressions).
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES raises it for longer local runs.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes, &Limits::default());
    }

    #[test]
    fn random_xmlish_text_never_panics(text in "[<>/a-z:=\"' &;#x0-9\\-\\]\\[!?]{0,400}") {
        let _ = parse(text.as_bytes(), &Limits::default());
    }

    #[test]
    fn corrupted_real_envelopes_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = seeds()[which].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        // Whatever still parses must survive build → parse unchanged (the fuzz target
        // checks the same property).
        if let Ok(env) = parse(&bytes, &Limits::default()) {
            let unlimited = Limits { max_bytes: usize::MAX, max_depth: 1024, ..Limits::default() };
            let back = parse(&build(&env), &unlimited).unwrap();
            let mut expected = env.header.clone();
            expected.unknown_must_understand.clear();
            prop_assert_eq!(back.header, expected);
            prop_assert_eq!(&back.body, &env.body);
            if env.spans.to.is_some() {
                let spliced = rewrite_to(&bytes, &env, "https://b.invalid/wsman?<&>");
                let again = parse(&spliced, &unlimited).unwrap();
                prop_assert_eq!(again.header.to.as_deref(), Some("https://b.invalid/wsman?<&>"));
                prop_assert_eq!(again.body, env.body);
            }
        }
    }

    #[test]
    fn small_limits_give_limit_errors_not_panics(
        which in 0usize..5,
        max_bytes in 0usize..4000,
        max_depth in 0usize..8,
    ) {
        let seed = &seeds()[which];
        let limits = Limits { max_bytes, max_depth, ..Limits::default() };
        match parse(seed, &limits) {
            Err(WsmanError::TooLarge { limit }) => prop_assert_eq!(limit, max_bytes),
            Err(WsmanError::TooDeep { limit }) => prop_assert_eq!(limit, max_depth),
            Ok(_) => prop_assert!(max_depth >= 4 && max_bytes >= seed.len()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

#[test]
fn escaped_namespace_names_round_trip() {
    // Found by `corrupted_real_envelopes_never_panic`: a namespace name needing escaping
    // (`<` here) must come back identical after build → parse.
    let seed = String::from_utf8(seeds()[3].clone()).unwrap();
    let odd = seed.replacen(
        r#"xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd""#,
        r#"xmlns:w="&lt;ttp://schemas.dmtf.org/wbem/wsman/1/wsman.xsd""#,
        1,
    );
    assert_ne!(odd, seed);
    let env = parse(odd.as_bytes(), &Limits::default()).unwrap();
    let crate::wsman::Body::Fault(f) = &env.body else {
        panic!("{:?}", env.body)
    };
    assert_eq!(
        f.subcode.as_ref().unwrap().namespace.as_deref(),
        Some("<ttp://schemas.dmtf.org/wbem/wsman/1/wsman.xsd")
    );
    let back = parse(&build(&env), &Limits::default()).unwrap();
    assert_eq!(back.body, env.body);
}
