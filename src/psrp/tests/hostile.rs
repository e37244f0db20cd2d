//! CLIXML shapes from issue #14's attacks: huge attribute lists, many siblings, many
//! references to shared objects. Each is refused or read in time linear in its size.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, Instant};

use crate::psrp::clixml::{parse_clixml_with, ClixmlLimits};
use crate::psrp::{ClixmlErrorKind, PsrpError};

fn obj_with_attributes(n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
    format!("<Obj RefId=\"0\"{attrs}><S>x</S></Obj>")
}

fn siblings(n: usize) -> String {
    format!("<Obj RefId=\"0\"><LST>{}</LST></Obj>", "<S>x</S>".repeat(n))
}

/// One object, then `n` objects each holding two references to the one before: a value
/// graph whose tree expansion is 2^n, read as shared references.
fn ref_ladder(n: usize) -> String {
    let mut out = String::from("<Obj RefId=\"0\"><S>base</S></Obj>");
    for i in 1..=n {
        let prev = i - 1;
        out.push_str(&format!(
            "<Obj RefId=\"{i}\"><LST><Ref RefId=\"{prev}\" /><Ref RefId=\"{prev}\" /></LST></Obj>"
        ));
    }
    out
}

fn roomy() -> ClixmlLimits {
    ClixmlLimits {
        max_values: usize::MAX,
        ..ClixmlLimits::default()
    }
}

const FAST: Duration = Duration::from_secs(2);

#[test]
fn attribute_floods_are_refused_fast() {
    let start = Instant::now();
    let err = parse_clixml_with(&obj_with_attributes(100_000), &roomy()).unwrap_err();
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());
    assert!(
        matches!(
            err,
            PsrpError::Clixml {
                kind: ClixmlErrorKind::TooManyAttributes(64),
                ..
            }
        ),
        "{err:?}"
    );
    // Real CLIXML is unaffected.
    assert!(parse_clixml_with(&obj_with_attributes(3), &roomy()).is_ok());
}

#[test]
fn wide_documents_and_reference_ladders_stay_fast() {
    let start = Instant::now();
    assert!(parse_clixml_with(&siblings(100_000), &roomy()).is_ok());
    assert!(parse_clixml_with(&ref_ladder(30_000), &roomy()).is_ok());
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());
}

#[test]
#[ignore = "timing; run explicitly with --release --nocapture"]
fn clixml_parse_time_grows_linearly() {
    let uncapped = ClixmlLimits {
        max_attributes: usize::MAX,
        ..roomy()
    };
    for (name, make) in [
        ("attributes", obj_with_attributes as fn(usize) -> String),
        ("siblings", siblings),
        ("ref-ladder", ref_ladder),
    ] {
        for k in [1usize, 2, 4, 8] {
            let xml = make(12_500 * k);
            let start = Instant::now();
            let _ = std::hint::black_box(parse_clixml_with(&xml, &uncapped));
            eprintln!("{name} x{k}: {} bytes, {:?}", xml.len(), start.elapsed());
        }
    }
}
