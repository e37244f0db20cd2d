//! Fuzz `hopgate::wsman::parse`: no input may panic, and whatever parses must survive
//! `build` → `parse` unchanged, and the byte splices (`rewrite_to`,
//! `remove_compression_type`) must leave a parseable envelope.
#![no_main]

use hopgate::wsman::{build, parse, remove_compression_type, rewrite_to, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = parse(data, &Limits::default()) else {
        return;
    };
    // Rebuilt envelopes may be larger (escaping) or deeper (fault detail); do not let the
    // default limits reject them.
    let unlimited = Limits {
        max_bytes: usize::MAX,
        max_depth: 1024,
        ..Limits::default()
    };
    let rebuilt = build(&env);
    let back = match parse(&rebuilt, &unlimited) {
        Ok(back) => back,
        Err(e) => panic!("rebuilt envelope does not parse: {e}"),
    };
    let mut expected = env.header.clone();
    expected.unknown_must_understand.clear();
    assert_eq!(back.header, expected);
    assert_eq!(back.body, env.body);

    if env.spans.to.is_some() {
        let spliced = rewrite_to(data, &env, "https://backend.invalid:5986/wsman?a=<&>");
        if let Err(e) = parse(&spliced, &unlimited) {
            panic!("rewritten envelope does not parse: {e}");
        }
    }
    if env.spans.compression_type.is_some() {
        match parse(&remove_compression_type(data, &env), &unlimited) {
            Ok(stripped) => assert_eq!(stripped.header.compression_type, None),
            Err(e) => panic!("envelope without CompressionType does not parse: {e}"),
        }
    }
});
