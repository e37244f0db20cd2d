//! Hostile input never panics: random bytes, every truncation and random corruption of real
//! envelopes. (The cargo-fuzz target in `fuzz/` covers the same entry point with coverage
//! guidance.)

use std::sync::LazyLock;

use proptest::prelude::*;

use super::corpus::pypsrp_sessions;
use crate::wsman::{build, parse, Limits, WsmanError};

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
    #![proptest_config(ProptestConfig::with_cases(2000))]

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
            let unlimited = Limits { max_bytes: usize::MAX, max_depth: 1024 };
            let back = parse(&build(&env), &unlimited).unwrap();
            let mut expected = env.header.clone();
            expected.unknown_must_understand.clear();
            prop_assert_eq!(back.header, expected);
            prop_assert_eq!(back.body, env.body);
        }
    }

    #[test]
    fn small_limits_give_limit_errors_not_panics(
        which in 0usize..5,
        max_bytes in 0usize..4000,
        max_depth in 0usize..8,
    ) {
        let seed = &seeds()[which];
        let limits = Limits { max_bytes, max_depth };
        match parse(seed, &limits) {
            Err(WsmanError::TooLarge { limit }) => prop_assert_eq!(limit, max_bytes),
            Err(WsmanError::TooDeep { limit }) => prop_assert_eq!(limit, max_depth),
            Ok(_) => prop_assert!(max_depth >= 4 && max_bytes >= seed.len()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
