//! The formatter against RFC 5424's ABNF: hand-written expected messages, and an
//! independent parser of the grammar applied to messages built from arbitrary input.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

use super::*;
use proptest::prelude::*;

const HASH: &str = "9f2c1a5e0b7d4c3a9f2c1a5e0b7d4c3a9f2c1a5e0b7d4c3a9f2c1a5e0b7d4c3a";

fn gw() -> Rfc5424 {
    // authpriv (10)
    Rfc5424::new(10, "gw1.example.com", "hopgate", "4242")
}

fn denied_line() -> String {
    format!(
        r#"{{"event":"command.denied","session_id":"s-1","principal":"alice","command":["shutdown","/s"],"reason":"no rule","seq":7,"ts":"2026-11-23T06:41:44.123Z","prev":"00","hash":"{HASH}"}}"#
    )
}

#[test]
fn a_denied_command_is_a_warning_with_its_name_as_msgid() {
    let line = denied_line();
    assert_eq!(
        gw().message(&line),
        format!(
            "<84>1 2026-11-23T06:41:44.123Z gw1.example.com hopgate 4242 command.denied \
             [hopgate@32473 session_id=\"s-1\" seq=\"7\" hash=\"{HASH}\"] \u{feff}{line}"
        )
    );
}

#[test]
fn severity_follows_the_event_kind() {
    let pri = |event: &str, facility: u8| {
        let line = format!(r#"{{"event":"{event}","seq":1,"hash":"h"}}"#);
        let m = Rfc5424::new(facility, "h", "a", "1").message(&line);
        m[1..m.find('>').unwrap()].parse::<u16>().unwrap()
    };
    assert_eq!(pri("session.start", 10), 86);
    assert_eq!(pri("command.allowed", 10), 86);
    assert_eq!(pri("output", 10), 86);
    assert_eq!(pri("authn.failure", 10), 84);
    assert_eq!(pri("access.denied", 10), 84);
    assert_eq!(pri("backend.auth", 10), 84);
    assert_eq!(pri("audit.gap", 10), 83);
    assert_eq!(pri("admin.terminate", 10), 85);
    // local0 (16) and kern (0); out-of-range facilities clamp to local7.
    assert_eq!(pri("session.end", 16), 134);
    assert_eq!(pri("command.denied", 0), 4);
    assert_eq!(pri("command.denied", 200), 23 * 8 + 4);
}

#[test]
fn events_without_a_session_leave_the_parameter_out() {
    let line = format!(
        r#"{{"event":"authn.failure","source_ip":"::1","reason":"no credentials","seq":0,"ts":"2026-01-02T03:04:05.000Z","prev":"","hash":"{HASH}"}}"#
    );
    assert_eq!(
        gw().message(&line),
        format!(
            "<84>1 2026-01-02T03:04:05.000Z gw1.example.com hopgate 4242 authn.failure \
             [hopgate@32473 seq=\"0\" hash=\"{HASH}\"] \u{feff}{line}"
        )
    );
}

#[test]
fn param_values_escape_quote_backslash_and_bracket() {
    let line = r#"{"event":"output","session_id":"a\"b\\c]d","seq":3,"hash":"x"}"#;
    let m = gw().message(line);
    assert!(
        m.contains(r#"[hopgate@32473 session_id="a\"b\\c\]d" seq="3" hash="x"]"#),
        "{m}"
    );
    assert_eq!(parse(&m).unwrap().sd[0].1[0].1, "a\"b\\c]d");
}

#[test]
fn header_fields_are_forced_into_printable_ascii_and_their_lengths() {
    let long = "x".repeat(300);
    let r = Rfc5424::new(1, "gw 1\u{e9}", &long, "");
    let line = format!(r#"{{"event":"{}","seq":1,"hash":"h"}}"#, "e v".repeat(20));
    let m = r.message(&line);
    let p = parse(&m).unwrap();
    assert_eq!(p.hostname, "gw_1_");
    assert_eq!(p.app_name, "x".repeat(48));
    assert_eq!(p.procid, "-");
    assert_eq!(p.msgid, "e_ve_ve_ve_ve_ve_ve_ve_ve_ve_ve_");
    assert_eq!(p.msgid.len(), 32);
}

#[test]
fn timestamps_outside_the_grammar_become_nil() {
    let ts = |t: &str| {
        let line = format!(r#"{{"event":"output","ts":"{t}","seq":1,"hash":"h"}}"#);
        parse(&gw().message(&line)).unwrap().timestamp.to_owned()
    };
    assert_eq!(ts("2026-11-23T06:41:44Z"), "2026-11-23T06:41:44Z");
    assert_eq!(
        ts("2026-11-23T06:41:44.123456Z"),
        "2026-11-23T06:41:44.123456Z"
    );
    assert_eq!(
        ts("2026-11-23T06:41:44.5+02:00"),
        "2026-11-23T06:41:44.5+02:00"
    );
    assert_eq!(
        ts("2026-11-23T06:41:44.1234567Z"),
        "-",
        "at most 6 fraction digits"
    );
    assert_eq!(ts("2026-11-23t06:41:44Z"), "-", "the T is upper case");
    assert_eq!(ts("2026-11-23T06:41:44"), "-", "the offset is required");
    assert_eq!(ts("2026-11-23T06:41:44.Z"), "-");
    assert_eq!(ts("yesterday"), "-");
}

#[test]
fn a_line_that_is_not_json_still_goes_out_whole() {
    let m = gw().message("not json");
    assert_eq!(
        m,
        "<85>1 - gw1.example.com hopgate 4242 - - \u{feff}not json"
    );
}

#[test]
fn octet_counting_counts_bytes_of_the_whole_message() {
    let line = r#"{"event":"output","stdout":"grüße","seq":1,"hash":"h"}"#;
    let m = gw().message(line);
    let mut framed = Vec::new();
    octet_counted(&m, &mut framed);
    let (len, rest) = framed.split_at(framed.iter().position(|b| *b == b' ').unwrap());
    let len: usize = std::str::from_utf8(len).unwrap().parse().unwrap();
    assert_eq!(len, rest.len() - 1);
    assert_eq!(len, m.len());
    // The BOM is three octets and `ü`/`ß` two each: more octets than characters.
    assert_eq!(len, m.chars().count() + 2 + 1 + 1);
    assert_eq!(&rest[1..], m.as_bytes());
    octet_counted("x", &mut framed);
    assert!(framed.ends_with(b"1 x"));
}

proptest! {
    #[test]
    fn every_message_parses_under_the_grammar(
        host in any::<String>(),
        app in any::<String>(),
        event in any::<String>(),
        session in any::<String>(),
        stdout in any::<String>(),
        seq in any::<u64>(),
        facility in any::<u8>(),
    ) {
        let line = serde_json::json!({
            "event": event, "session_id": session, "stdout": stdout, "seq": seq,
            "ts": "2026-11-23T06:41:44.123Z", "prev": "p", "hash": HASH,
        })
        .to_string();
        let m = Rfc5424::new(facility, &host, &app, "77").message(&line);
        let p = parse(&m).map_err(|e| TestCaseError::fail(format!("{e}: {m:?}")))?;
        prop_assert_eq!(p.msg, line.as_str());
        prop_assert_eq!(&p.sd[0].0, SD_ID);
        prop_assert_eq!(&p.sd[0].1[0], &("session_id".to_string(), session));
        prop_assert_eq!(&p.sd[0].1[1], &("seq".to_string(), seq.to_string()));
        prop_assert_eq!(p.prival / 8, u16::from(facility.min(23)));
    }
}

/// What the grammar check found.
#[derive(Debug)]
struct Parsed<'a> {
    prival: u16,
    timestamp: &'a str,
    hostname: &'a str,
    app_name: &'a str,
    procid: &'a str,
    msgid: &'a str,
    sd: Vec<(String, Vec<(String, String)>)>,
    msg: &'a str,
}

/// An independent reading of RFC 5424 §6 (SYSLOG-MSG), strict where the formatter must
/// be: PRI, VERSION 1, TIMESTAMP, the printable-ASCII header fields and their lengths,
/// STRUCTURED-DATA with escaped PARAM-VALUEs, and a MSG that starts with the BOM.
fn parse(m: &str) -> Result<Parsed<'_>, String> {
    let rest = m.strip_prefix('<').ok_or("no PRI")?;
    let (pri, rest) = rest.split_once('>').ok_or("PRI not closed")?;
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad PRIVAL {pri:?}"));
    }
    if pri.len() > 1 && pri.starts_with('0') {
        return Err("PRIVAL with a leading zero".into());
    }
    let prival: u16 = pri.parse().map_err(|_| "PRIVAL")?;
    if prival > 191 {
        return Err("PRIVAL above 191".into());
    }
    let rest = rest.strip_prefix("1 ").ok_or("VERSION must be 1")?;
    let mut fields = rest.splitn(6, ' ');
    let mut field = |name: &str, max: usize| -> Result<&str, String> {
        let f = fields.next().ok_or(format!("no {name}"))?;
        if f.is_empty() || f.len() > max || !f.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(format!("bad {name} {f:?}"));
        }
        Ok(f)
    };
    let timestamp = field("TIMESTAMP", 32)?;
    if timestamp != "-" {
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("TIMESTAMP {timestamp}: {e}"))?;
    }
    let hostname = field("HOSTNAME", 255)?;
    let app_name = field("APP-NAME", 48)?;
    let procid = field("PROCID", 128)?;
    let msgid = field("MSGID", 32)?;
    let mut rest = fields.next().ok_or("no STRUCTURED-DATA")?;
    let mut sd = Vec::new();
    if let Some(r) = rest.strip_prefix('-') {
        rest = r;
    } else {
        while let Some(r) = rest.strip_prefix('[') {
            let (id, mut r) = sd_name(r)?;
            let mut params = Vec::new();
            while let Some(p) = r.strip_prefix(' ') {
                let (name, p) = sd_name(p)?;
                let p = p.strip_prefix("=\"").ok_or("PARAM without =\"")?;
                let mut value = String::new();
                let mut chars = p.char_indices();
                let end = loop {
                    match chars.next().ok_or("PARAM-VALUE not closed")? {
                        (_, '\\') => {
                            let (_, c) = chars.next().ok_or("dangling backslash")?;
                            if !matches!(c, '"' | '\\' | ']') {
                                value.push('\\');
                            }
                            value.push(c);
                        }
                        (i, '"') => break i,
                        (_, ']') => return Err("unescaped ] in PARAM-VALUE".into()),
                        (_, c) => value.push(c),
                    }
                };
                params.push((name.to_string(), value));
                r = &p[end + 1..];
            }
            rest = r.strip_prefix(']').ok_or("SD-ELEMENT not closed")?;
            sd.push((id.to_string(), params));
        }
        if sd.is_empty() {
            return Err("STRUCTURED-DATA is neither - nor an element".into());
        }
    }
    let msg = match rest {
        "" => "",
        r => r
            .strip_prefix(' ')
            .ok_or("no SP before MSG")?
            .strip_prefix('\u{feff}')
            .ok_or("UTF-8 MSG without BOM")?,
    };
    Ok(Parsed {
        prival,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd,
        msg,
    })
}

/// SD-NAME: 1*32 printable US-ASCII except `=`, SP, `]` and `"`.
fn sd_name(s: &str) -> Result<(&str, &str), String> {
    let n = s
        .bytes()
        .take_while(|b| (33..=126).contains(b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if n == 0 || n > 32 {
        return Err(format!("bad SD-NAME at {s:?}"));
    }
    Ok(s.split_at(n))
}
