//! CLIXML reader and writer: MS-PSRP 2.2.5 examples, escapes, references, limits, errors,
//! and a write/read round trip over every message of the corpus.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use super::corpus::corpus_files;
use super::corpus_tests::decode_file;
use crate::psrp::clixml::{
    decode_escapes, encode_escapes, eq_ignore_case, parse_clixml, parse_clixml_with, write_clixml,
    write_clixml_values, ClixmlLimits, ListKind, ObjectContent, Value, ValueKind,
};
use crate::psrp::{ClixmlErrorKind, PsrpError};

fn one(xml: &str) -> Value {
    let mut v = parse_clixml(xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn err_kind(xml: &str) -> ClixmlErrorKind {
    match parse_clixml(xml) {
        Err(PsrpError::Clixml { kind, .. }) => kind,
        other => panic!("{xml}: {other:?}"),
    }
}

#[test]
fn escapes_decode_like_dotnet() {
    // MS-PSRP 2.2.5.3.2 and the corpus (test_psrp_multiple_commands.yml).
    assert_eq!(decode_escapes("a_x000A_b"), "a\nb");
    assert_eq!(
        decode_escapes("actual_x005F_x000A_string"),
        "actual_x000A_string"
    );
    assert_eq!(decode_escapes("_xD801__xDC37_"), "\u{10437}");
    assert_eq!(decode_escapes("_x0001F600_"), "\u{1F600}");
    assert_eq!(
        decode_escapes("_xd83d__xde00_"),
        "\u{1F600}",
        "hex is case-insensitive"
    );
    assert_eq!(decode_escapes("lone _xD801_ high"), "lone \u{FFFD} high");
    assert_eq!(decode_escapes("_xDC37_"), "\u{FFFD}");
    assert_eq!(decode_escapes("end _xD801_"), "end \u{FFFD}");
    assert_eq!(
        decode_escapes("_X000A_ _xZZZZ_ _x00A _x"),
        "_X000A_ _xZZZZ_ _x00A _x"
    );
    assert!(matches!(
        decode_escapes("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}

#[test]
fn escapes_encode_like_psrpcore() {
    assert_eq!(encode_escapes("a\nb"), "a_x000A_b");
    assert_eq!(encode_escapes("_x000A_"), "_x005F_x000A_");
    assert_eq!(encode_escapes("_X"), "_x005F_X");
    assert_eq!(encode_escapes("\u{10437}"), "_xD801__xDC37_");
    assert_eq!(encode_escapes("\u{85}\u{7F}"), "_x0085__x007F_");
    for s in ["", "a_x_b", "tab\there", "\u{1F600} __x", "こんにちは"] {
        assert_eq!(decode_escapes(&encode_escapes(s)), s);
    }
}

#[test]
fn primitives_of_ms_psrp_2_2_5_1() {
    let cases: &[(&str, ValueKind)] = &[
        (
            "<S>a &lt;&amp;&gt; &#x41;&#66;</S>",
            ValueKind::String("a <&> AB".into()),
        ),
        ("<S />", ValueKind::String(String::new())),
        ("<C>97</C>", ValueKind::Char(97)),
        ("<B>true</B>", ValueKind::Bool(true)),
        ("<B>false</B>", ValueKind::Bool(false)),
        (
            "<DT>2008-04-11T10:42:32.2731993-07:00</DT>",
            ValueKind::DateTime("2008-04-11T10:42:32.2731993-07:00".into()),
        ),
        (
            "<TS>PT9.0269026S</TS>",
            ValueKind::Duration("PT9.0269026S".into()),
        ),
        ("<By>254</By>", ValueKind::U8(254)),
        ("<SB>-127</SB>", ValueKind::I8(-127)),
        ("<U16>65535</U16>", ValueKind::U16(65535)),
        ("<I16>-32767</I16>", ValueKind::I16(-32767)),
        ("<U32>4294967295</U32>", ValueKind::U32(u32::MAX)),
        ("<I32>-2147483648</I32>", ValueKind::I32(i32::MIN)),
        ("<U64>18446744073709551615</U64>", ValueKind::U64(u64::MAX)),
        ("<I64>-9223372036854775808</I64>", ValueKind::I64(i64::MIN)),
        ("<Sg>12.34</Sg>", ValueKind::Single(12.34)),
        ("<Db>1.1</Db>", ValueKind::Double(1.1)),
        ("<Db>-INF</Db>", ValueKind::Double(f64::NEG_INFINITY)),
        (
            "<D>1.00000000000000000000001</D>",
            ValueKind::Decimal("1.00000000000000000000001".into()),
        ),
        ("<BA>AQIDBA==</BA>", ValueKind::Bytes(vec![1, 2, 3, 4])),
        (
            "<G>792e5b37-4505-47ef-b7d2-8711bb7affa8</G>",
            ValueKind::Guid(uuid::Uuid::parse_str("792e5b37-4505-47ef-b7d2-8711bb7affa8").unwrap()),
        ),
        (
            "<URI>http://www.microsoft.com/</URI>",
            ValueKind::Uri("http://www.microsoft.com/".into()),
        ),
        (
            "<Version>6.2.1.3</Version>",
            ValueKind::Version("6.2.1.3".into()),
        ),
        (
            "<XD>&lt;name attribute=\"value\"&gt;Content&lt;/name&gt;</XD>",
            ValueKind::XmlDocument("<name attribute=\"value\">Content</name>".into()),
        ),
        (
            "<SBK>get-command -type cmdlet</SBK>",
            ValueKind::ScriptBlock("get-command -type cmdlet".into()),
        ),
        ("<SS>AAAA</SS>", ValueKind::SecureString("AAAA".into())),
        ("<Nil />", ValueKind::Nil),
    ];
    for (xml, want) in cases {
        assert_eq!(&one(xml).kind, want, "{xml}");
    }
    assert!(matches!(one("<Db>NaN</Db>").kind, ValueKind::Double(f) if f.is_nan()));
}

#[test]
fn objects_refs_type_names_lists_dicts() {
    let xml = r#"<Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><ToString>obj</ToString><Props><S N="P">adapted</S></Props><MS><Obj N="a" RefId="1"><TN RefId="1"><T>System.ConsoleColor</T><T>System.Enum</T></TN><ToString>Red</ToString><I32>12</I32></Obj><Ref N="b" RefId="1" /><Obj N="c" RefId="2"><TNRef RefId="1" /><ToString>Blue</ToString><I32>9</I32></Obj><Obj N="l" RefId="3"><LST><I32>1</I32><S>two</S></LST></Obj><Obj N="d" RefId="4"><DCT><En><S N="Key">k</S><I32 N="Value">5</I32></En></DCT></Obj><Obj N="q" RefId="5"><QUE /></Obj><Obj N="s" RefId="6"><STK><B>true</B></STK></Obj><Obj N="e" RefId="7"><IE /></Obj></MS></Obj>"#;
    let v = one(xml);
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.type_name(),
        Some("System.Management.Automation.PSCustomObject")
    );
    assert_eq!(obj.to_string.as_deref(), Some("obj"));
    assert_eq!(obj.member("P").unwrap().as_str(), Some("adapted"));
    let a = obj.member("a").unwrap();
    let b = obj.member("b").unwrap();
    let (ValueKind::Object(a_obj), ValueKind::Object(b_obj)) = (&a.kind, &b.kind) else {
        panic!("objects")
    };
    assert!(Arc::ptr_eq(a_obj, b_obj), "Ref shares the object");
    assert_eq!(b.name.as_deref(), Some("b"), "a Ref keeps its own name");
    assert_eq!(a.primitive(), &ValueKind::I32(12));
    let c = obj.member("c").unwrap().as_object().unwrap();
    assert_eq!(
        c.type_names.as_deref().unwrap(),
        ["System.ConsoleColor", "System.Enum"]
    );
    let l = obj.member("l").unwrap().as_list().unwrap();
    assert_eq!(
        l.iter().map(|v| v.kind.clone()).collect::<Vec<_>>(),
        vec![ValueKind::I32(1), ValueKind::String("two".into())]
    );
    let d = &obj.member("d").unwrap().as_object().unwrap().content;
    let ObjectContent::Dict(entries) = d else {
        panic!("dict")
    };
    assert_eq!(entries[0].0.as_str(), Some("k"));
    assert_eq!(entries[0].1.kind, ValueKind::I32(5));
    for (name, kind, len) in [
        ("q", ListKind::Queue, 0),
        ("s", ListKind::Stack, 1),
        ("e", ListKind::Enumerable, 0),
    ] {
        let ObjectContent::List(k, items) = &obj.member(name).unwrap().as_object().unwrap().content
        else {
            panic!("{name}")
        };
        assert_eq!((*k, items.len()), (kind, len), "{name}");
    }
}

#[test]
fn objs_documents_with_namespace() {
    let xml = "#< CLIXML\r\n";
    assert!(
        parse_clixml(xml).is_err(),
        "the file-format prefix is not XML"
    );
    let xml = r#"<?xml version="1.0"?><Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>a</S><I32>2</I32></Objs>"#;
    let v = parse_clixml(xml).unwrap();
    assert_eq!(v.len(), 2);
    let xml = r#"<x:S xmlns:x="urn:other">a</x:S>"#;
    assert!(matches!(
        err_kind(xml),
        ClixmlErrorKind::UnknownNamespace(_)
    ));
    assert_eq!(parse_clixml("").unwrap(), vec![]);
    assert_eq!(parse_clixml("  ").unwrap(), vec![]);
}

#[test]
fn errors_say_what_and_where() {
    let e = parse_clixml(
        r#"<Obj RefId="0"><MS><Obj N="Cmds" RefId="1"><LST><I32>x</I32></LST></Obj></MS></Obj>"#,
    )
    .unwrap_err();
    let PsrpError::Clixml { offset, path, kind } = e else {
        panic!()
    };
    assert_eq!(path, "Obj/MS/Obj[N=Cmds]/LST/I32");
    assert_eq!(
        kind,
        ClixmlErrorKind::InvalidValue {
            element: "I32",
            text: "x".into()
        }
    );
    assert!(offset > 40 && offset < 70, "{offset}");

    assert_eq!(
        err_kind(r#"<Ref RefId="9" />"#),
        ClixmlErrorKind::UnknownRefId("9".into())
    );
    assert_eq!(
        err_kind(r#"<Obj><TNRef RefId="3" /></Obj>"#),
        ClixmlErrorKind::UnknownTypeNameRef("3".into())
    );
    assert_eq!(
        err_kind("<Ref />"),
        ClixmlErrorKind::MissingAttribute("RefId")
    );
    assert_eq!(
        err_kind("<Foo />"),
        ClixmlErrorKind::UnexpectedElement("Foo".into())
    );
    assert_eq!(err_kind("<Obj>text</Obj>"), ClixmlErrorKind::UnexpectedText);
    assert_eq!(
        err_kind("<S><B>true</B></S>"),
        ClixmlErrorKind::UnexpectedElement("B".into())
    );
    assert_eq!(
        err_kind("<S>&foo;</S>"),
        ClixmlErrorKind::UnknownEntity("foo".into())
    );
    assert_eq!(
        err_kind(r#"<!DOCTYPE x [<!ENTITY a "b">]><S>&a;</S>"#),
        ClixmlErrorKind::DocType
    );
    assert_eq!(
        err_kind("<Obj><MS /><MS /></Obj>"),
        ClixmlErrorKind::DuplicateSection("MS")
    );
    assert_eq!(
        err_kind("<Obj><I32>1</I32><S>a</S></Obj>"),
        ClixmlErrorKind::DuplicateSection("content")
    );
    assert_eq!(
        err_kind(r#"<Obj RefId="1" /><Obj RefId="1" />"#),
        ClixmlErrorKind::DuplicateRefId("1".into())
    );
    assert_eq!(
        err_kind(r#"<Obj><DCT><En><S N="Key">k</S></En></DCT></Obj>"#),
        ClixmlErrorKind::BadDictEntry
    );
    assert_eq!(err_kind("<Obj><MS>"), ClixmlErrorKind::UnexpectedEof);
    assert!(matches!(err_kind("<S>a</B>"), ClixmlErrorKind::Xml(_)));
    assert!(matches!(
        err_kind(r#"<S N="a" N="b">x</S>"#),
        ClixmlErrorKind::BadAttribute(_)
    ));
    assert_eq!(
        err_kind("<B>yes</B>"),
        ClixmlErrorKind::InvalidValue {
            element: "B",
            text: "yes".into()
        }
    );
}

#[test]
fn limits_bound_depth_and_values() {
    let deep = "<Obj><MS>".repeat(60) + &"</MS></Obj>".repeat(60);
    assert_eq!(err_kind(&deep), ClixmlErrorKind::TooDeep(100));
    let limits = ClixmlLimits {
        max_depth: 1000,
        max_values: 10,
        ..ClixmlLimits::default()
    };
    let many = format!("<Obj><LST>{}</LST></Obj>", "<Nil />".repeat(10));
    assert!(matches!(
        parse_clixml_with(&many, &limits),
        Err(PsrpError::Clixml {
            kind: ClixmlErrorKind::TooManyValues(10),
            ..
        })
    ));
    // A deep document does not overflow the stack: the limit stops it first.
    let very_deep = "<Obj><LST>".repeat(100_000);
    assert_eq!(err_kind(&very_deep), ClixmlErrorKind::TooDeep(100));
}

/// Every corpus message survives write → read unchanged, and the client messages pypsrp
/// wrote come out byte for byte as pypsrp wrote them where their layout agrees with ours.
#[test]
fn writer_round_trips_the_corpus() {
    let mut checked = 0;
    for path in corpus_files() {
        for messages in decode_file(&path).values() {
            for msg in messages {
                let xml = msg.data_xml().unwrap();
                let values = parse_clixml(xml).unwrap();
                let written = write_clixml_values(&values);
                let again = parse_clixml(&written)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{written}", path.display()));
                assert_eq!(again, values, "{}", path.display());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 615);
}

#[test]
fn writer_shares_repeated_objects_with_ref_and_tnref() {
    let v = one(
        r#"<Obj RefId="0"><MS><Obj N="a" RefId="1"><TN RefId="0"><T>X</T></TN><ToString>t</ToString></Obj><Ref N="b" RefId="1" /><Obj N="c" RefId="2"><TNRef RefId="0" /></Obj></MS></Obj>"#,
    );
    let out = write_clixml(&v);
    assert_eq!(
        out,
        r#"<Obj RefId="0"><MS><Obj N="a" RefId="1"><TN RefId="0"><T>X</T></TN><ToString>t</ToString></Obj><Ref N="b" RefId="1" /><Obj N="c" RefId="2"><TNRef RefId="0" /></Obj></MS></Obj>"#
    );
    let s = write_clixml(&Value::named("x<y", ValueKind::String("a&b\n_x".into())));
    assert_eq!(s, r#"<S N="x&lt;y">a&amp;b_x000A__x005F_x</S>"#);
}

/// psrpcore (not our reader) reads every re-written corpus message as it reads the
/// original: tests/fixtures/psrp/check_writer.py deserializes both with psrpcore and compares
/// psrpcore's own re-serialization. Needs `python3` with psrpcore 0.3.1 (CI installs it for
/// the stand-in host).
#[test]
fn psrpcore_accepts_writer_output() {
    let mut pairs = Vec::new();
    for path in corpus_files() {
        for messages in decode_file(&path).values() {
            for msg in messages {
                let xml = msg.data_xml().unwrap();
                if xml.trim().is_empty() {
                    continue;
                }
                let ours = write_clixml_values(&parse_clixml(xml).unwrap());
                pairs.push(serde_json::json!({ "original": xml, "ours": ours }));
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pairs.json");
    std::fs::write(&file, serde_json::to_vec(&pairs).unwrap()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/psrp/check_writer.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 with psrpcore is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("ok {}", pairs.len()));
    assert!(pairs.len() > 600);
}

#[test]
fn member_name_comparison_is_ordinal_ignore_case() {
    assert!(eq_ignore_case("Cmds", "cmds"));
    assert!(eq_ignore_case("ExtraCmds", "EXTRACMDS"));
    assert!(
        eq_ignore_case("Cmd\u{17F}", "CMDS"),
        "long s upper-cases to S"
    );
    assert!(
        eq_ignore_case("\u{131}sScript", "IsScript"),
        "dotless i upper-cases to I"
    );
    assert!(!eq_ignore_case("Cmds", "Cmd"));
    assert!(!eq_ignore_case("Cmds", "Cmdx"));
    assert!(
        eq_ignore_case("stra\u{DF}e", "STRA\u{DF}E"),
        "sharp s has no one-char upper case"
    );
}
