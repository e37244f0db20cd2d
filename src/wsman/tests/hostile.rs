//! Hostile shapes from issue #14: huge attribute lists, deep and wide trees, characters
//! XML forbids. Each is refused (or parsed) in time linear in its size.

use std::time::{Duration, Instant};

use crate::wsman::{parse, FaultSubcode, Limits, WsmanError};

const HEAD: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">"#;

const CREATE: &str = "<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>";

fn env(header: &str, body: &str) -> Vec<u8> {
    format!("{HEAD}<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>").into_bytes()
}

/// Limits that let the whole hostile input reach the parser, as the gateway's body limit
/// (larger than `Limits::default().max_bytes`) did in the attack.
fn roomy() -> Limits {
    Limits {
        max_bytes: 64 << 20,
        ..Limits::default()
    }
}

/// The attack of issue #14: a Create whose `rsp:Shell` carries `n` empty attributes.
pub(crate) fn shell_with_attributes(n: usize) -> Vec<u8> {
    let mut attrs = String::with_capacity(n * 10);
    for i in 0..n {
        attrs.push_str(&format!(" a{i}=\"\""));
    }
    env(
        CREATE,
        &format!("<rsp:Shell{attrs}><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>"),
    )
}

/// A Create whose `rsp:Shell` holds `n` nested unknown elements.
pub(crate) fn shell_nested(n: usize) -> Vec<u8> {
    env(
        CREATE,
        &format!(
            "<rsp:Shell>{}{}</rsp:Shell>",
            "<x>".repeat(n),
            "</x>".repeat(n)
        ),
    )
}

/// A Create whose `rsp:Shell` holds `n` empty unknown siblings.
pub(crate) fn shell_siblings(n: usize) -> Vec<u8> {
    env(
        CREATE,
        &format!("<rsp:Shell>{}</rsp:Shell>", "<x/>".repeat(n)),
    )
}

/// Debug builds are ~20x slower than release; this is still far from the 17 s of the
/// attack.
const FAST: Duration = Duration::from_secs(2);

#[test]
fn hundred_thousand_attributes_are_refused_fast() {
    let xml = shell_with_attributes(100_000);
    let start = Instant::now();
    let err = parse(&xml, &roomy()).unwrap_err();
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());
    assert_eq!(
        err,
        WsmanError::TooManyAttributes {
            limit: 64,
            path: "/Envelope/Body/Shell".to_owned()
        }
    );
    assert_eq!(err.fault_subcode(), FaultSubcode::EncodingLimit);
    assert_eq!(
        err.to_string(),
        "more than 64 attributes on /Envelope/Body/Shell"
    );
}

#[test]
fn attribute_checks_are_linear_even_without_a_cap() {
    // With the cap lifted, the duplicate check alone must stay linear: quick-xml's own
    // check compared each key with every earlier one (17 s for 100,000).
    let limits = Limits {
        max_attributes: usize::MAX,
        ..roomy()
    };
    let start = Instant::now();
    assert!(parse(&shell_with_attributes(100_000), &limits).is_ok());
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());
    let mut dup = shell_with_attributes(50_000);
    let at = dup.windows(6).position(|w| w == b" a0=\"\"").unwrap();
    dup.splice(at..at, b" a49999=\"\"".iter().copied());
    let err = parse(&dup, &limits).unwrap_err();
    assert!(
        err.to_string().contains("duplicate attribute a49999"),
        "{err}"
    );
}

#[test]
fn deep_and_wide_trees_stay_fast() {
    let start = Instant::now();
    assert_eq!(
        parse(&shell_nested(100_000), &roomy()),
        Err(WsmanError::TooDeep { limit: 64 })
    );
    let env = parse(&shell_siblings(100_000), &roomy()).unwrap();
    assert!(matches!(env.body, crate::wsman::Body::Shell(_)));
    assert!(start.elapsed() < FAST, "{:?}", start.elapsed());
}

#[test]
fn long_attribute_values_and_namespace_floods_are_refused() {
    let long = "x".repeat(4097);
    assert_eq!(
        parse(
            &env(CREATE, &format!("<rsp:Shell Name=\"{long}\"/>")),
            &roomy()
        ),
        Err(WsmanError::AttributeTooLarge {
            limit: 4096,
            path: "/Envelope/Body/Shell".to_owned()
        })
    );
    // 60 declarations per element stay under the attribute cap, but three levels of them
    // pass the 128 in scope.
    let decls: String = (0..60)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    let body = format!("<rsp:Shell><x{decls}><y{decls}><z{decls}/></y></x></rsp:Shell>");
    assert!(matches!(
        parse(&env(CREATE, &body), &roomy()),
        Err(WsmanError::TooManyNamespaces { limit: 128, .. })
    ));
    // Siblings do not add up: declarations leave scope with their element.
    let body = format!("<rsp:Shell><x{decls}/><y{decls}/><z{decls}/></rsp:Shell>");
    assert!(parse(&env(CREATE, &body), &roomy()).is_ok());
}

#[test]
fn control_characters_are_refused_in_text_and_attributes() {
    let signal = |attr: &str, code: &str| {
        env(
            "<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal</a:Action>",
            &format!("<rsp:Signal CommandId=\"{attr}\"><rsp:Code>{code}</rsp:Code></rsp:Signal>"),
        )
    };
    let code = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate";
    assert!(parse(&signal("C1", code), &roomy()).is_ok());
    // Tab, CR and LF are XML characters, raw or as references.
    assert!(parse(
        &signal("C\t1&#9;&#10;&#13;", &format!("\r\n{code}\n")),
        &roomy()
    )
    .is_ok());
    for (attr, text) in [
        ("C\u{0}1", code.to_owned()),
        ("C&#1;", code.to_owned()),
        ("C\u{1b}", code.to_owned()),
        ("C1", format!("{code}\u{0}")),
        ("C1", format!("{code}\u{7}")),
        ("C1", format!("{code}&#x1F;")),
        ("C1", format!("<![CDATA[{code}\u{8}]]>")),
        ("C1", format!("{code}\u{FFFE}")),
    ] {
        let err = parse(&signal(attr, &text), &roomy()).unwrap_err();
        assert!(
            matches!(&err, WsmanError::Xml { message, .. } if message.contains("is not allowed in xml")),
            "{attr:?} {text:?}: {err:?}"
        );
    }
    // Also inside unknown headers the gateway skips: the host would still read them.
    let xml = env(
        "<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal</a:Action><x:y xmlns:x=\"urn:x\">a\u{0}b</x:y>",
        &format!("<rsp:Signal><rsp:Code>{code}</rsp:Code></rsp:Signal>"),
    );
    assert!(parse(&xml, &roomy()).is_err());
}

#[test]
#[ignore = "timing; run explicitly with --release --nocapture"]
fn parse_time_grows_linearly() {
    for (name, make) in [
        ("attributes", shell_with_attributes as fn(usize) -> Vec<u8>),
        ("siblings", shell_siblings),
        ("nested", shell_nested),
    ] {
        for k in [1usize, 2, 4, 8] {
            let xml = make(25_000 * k);
            let limits = Limits {
                max_attributes: usize::MAX,
                ..roomy()
            };
            let start = Instant::now();
            let _ = std::hint::black_box(parse(&xml, &limits));
            eprintln!("{name} x{k}: {} bytes, {:?}", xml.len(), start.elapsed());
        }
    }
}

/// Every header a real client sends with `mustUnderstand="true"` is one the gateway
/// interprets: the recorded pypsrp sessions (both directions), the ironposh and WinRM
/// gem envelopes, and the pywinrm and Go winrm captures. The gateway refuses the others
/// with the SOAP `MustUnderstand` fault, so this keeps every real client working.
#[test]
fn no_real_client_header_is_an_unknown_must_understand() {
    let mut checked = 0;
    let mut check = |name: &str, xml: &[u8]| {
        let Ok(env) = parse(xml, &roomy()) else {
            return;
        };
        assert!(
            env.header.unknown_must_understand.is_empty(),
            "{name}: {:?}",
            env.header.unknown_must_understand
        );
        checked += 1;
    };
    for (file, exchanges) in super::corpus::pypsrp_sessions() {
        for ex in exchanges {
            for xml in [&ex.request, &ex.response].into_iter().flatten() {
                check(&file, xml.as_bytes());
            }
        }
    }
    let corpus = super::corpus::corpus_dir();
    let fixtures =
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wsman"));
    for dir in [
        corpus.join("ironposh"),
        corpus.join("winrb-stubs"),
        fixtures.join("pywinrm"),
        fixtures.join("go-winrm"),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                check(&path.display().to_string(), &std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(checked > 900, "{checked}");
}

/// An unknown header marked `mustUnderstand` (`true` or `1`) is listed; the fault built
/// for it has the SOAP 1.2 `MustUnderstand` code and a `NotUnderstood` block.
#[test]
fn unknown_must_understand_headers_get_the_soap_fault() {
    let code = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate";
    for flag in ["true", "1"] {
        let xml = env(
            &format!("<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal</a:Action><a:MessageID>uuid:1</a:MessageID><x:Impersonate xmlns:x=\"urn:evil\" s:mustUnderstand=\"{flag}\">admin</x:Impersonate><y:Hint xmlns:y=\"urn:ok\" s:mustUnderstand=\"false\"/>"),
            &format!("<rsp:Signal><rsp:Code>{code}</rsp:Code></rsp:Signal>"),
        );
        let env = parse(&xml, &roomy()).unwrap();
        assert_eq!(
            env.header.unknown_must_understand,
            vec![(Some("urn:evil".to_owned()), "Impersonate".to_owned())]
        );
        let fault_xml = crate::wsman::build_must_understand_fault(
            Some("uuid:1"),
            &env.header.unknown_must_understand,
        );
        let text = String::from_utf8(fault_xml.clone()).unwrap();
        assert!(
            text.contains(r#"<s:NotUnderstood xmlns:q="urn:evil" qname="q:Impersonate"/>"#),
            "{text}"
        );
        let back = parse(&fault_xml, &roomy()).unwrap();
        let crate::wsman::Body::Fault(f) = back.body else {
            panic!("{:?}", back.body)
        };
        assert!(f.code.is(crate::wsman::ns::SOAP, "MustUnderstand"), "{f:?}");
        assert_eq!(f.subcode, None);
        assert!(f.reason.unwrap().contains("{urn:evil}Impersonate"));
        assert_eq!(back.header.relates_to.as_deref(), Some("uuid:1"));
    }
}
