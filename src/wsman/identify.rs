//! WS-Management Identify (DSP0226 §11, MS-WSMV 3.1.4.16): `Test-WSMan`'s request and the
//! answer that names the service.
//!
//! An Identify envelope has no `wsa:Action`; its body is one `wsmid:Identify` element.
//! [`parse_identify`] recognises exactly that shape (under the same limits as [`parse`]);
//! [`build_identify_response`] writes the answer from the fields the caller chooses. What
//! the gateway puts in them (its own name, never a host's) is the caller's business.
//!
//! [`parse`]: super::parse

use std::io;

use super::build::Out;
use super::envelope::Limits;
use super::error::WsmanError;
use super::ns;
use super::reader::{Cursor, Ev, Ns};

/// The fields of an `wsmid:IdentifyResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyResponse {
    /// `wsmid:ProtocolVersion`: the WS-Management namespace the service speaks.
    pub protocol_version: String,
    /// `wsmid:ProductVendor`.
    pub product_vendor: String,
    /// `wsmid:ProductVersion`.
    pub product_version: String,
}

/// True when `input` is an Identify request: a SOAP envelope whose body's only element is
/// `wsmid:Identify`. Any other well-formed envelope is `Ok(false)`; malformed input is an
/// error, as for [`parse`](super::parse).
pub fn parse_identify(input: &[u8], limits: &Limits) -> Result<bool, WsmanError> {
    if input.len() > limits.max_bytes {
        return Err(WsmanError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let mut cur = Cursor::new(input, limits);
    let root = loop {
        match cur.next()? {
            Ev::Start(e) => break e,
            Ev::Text(t) if t.trim().is_empty() => continue,
            Ev::Text(_) | Ev::Eof | Ev::End => return Err(WsmanError::NotAnEnvelope),
        }
    };
    if !root.is(Ns::Soap, "Envelope") {
        return Err(WsmanError::NotAnEnvelope);
    }
    let mut identify = false;
    let mut bodies = 0;
    while let Some(elem) = cur.next_child()? {
        if elem.is(Ns::Soap, "Body") {
            bodies += 1;
            let mut children = 0;
            while let Some(child) = cur.next_child()? {
                children += 1;
                identify = children == 1
                    && cur.namespace_of(&child).as_deref() == Some(ns::IDENTITY)
                    && child.start.local_name().as_ref() == b"Identify";
                cur.skip()?;
            }
            if children != 1 {
                identify = false;
            }
        } else {
            cur.skip()?;
        }
    }
    loop {
        match cur.next()? {
            Ev::Eof => break,
            Ev::Text(t) if t.trim().is_empty() => continue,
            Ev::Start(_) | Ev::Text(_) | Ev::End => {
                return Err(WsmanError::Xml {
                    offset: cur.position() as u64,
                    message: "content after the root element".to_owned(),
                })
            }
        }
    }
    // Two bodies would let the gateway and a host disagree on what was asked.
    Ok(identify && bodies == 1)
}

/// Serialises an IdentifyResponse the way Windows shapes it (`s:` and `wsmid:` prefixes,
/// an empty header).
pub fn build_identify_response(resp: &IdentifyResponse) -> Vec<u8> {
    let mut out = Out::new();
    // Writing into a Vec cannot fail; the io::Result only comes from the Writer API.
    let _ = write_identify_response(&mut out, resp);
    out.finish()
}

fn write_identify_response(out: &mut Out, resp: &IdentifyResponse) -> io::Result<()> {
    out.start(
        "s:Envelope",
        &[("xmlns:s", ns::SOAP), ("xmlns:wsmid", ns::IDENTITY)],
    )?;
    out.empty("s:Header", &[])?;
    out.start("s:Body", &[])?;
    out.start("wsmid:IdentifyResponse", &[])?;
    out.leaf("wsmid:ProtocolVersion", &[], &resp.protocol_version)?;
    out.leaf("wsmid:ProductVendor", &[], &resp.product_vendor)?;
    out.leaf("wsmid:ProductVersion", &[], &resp.product_version)?;
    out.end("wsmid:IdentifyResponse")?;
    out.end("s:Body")?;
    out.end("s:Envelope")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// The request Windows' WinRM client sends for `Test-WSMan` (DSP0226 §11 example).
    const IDENTIFY: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
  xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">
  <s:Header/>
  <s:Body><wsmid:Identify/></s:Body>
</s:Envelope>"#;

    #[test]
    fn identify_is_recognised_by_namespace_not_prefix() {
        let limits = Limits::default();
        assert!(parse_identify(IDENTIFY, &limits).unwrap());
        let other_prefix = br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><i:Identify xmlns:i="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"/></e:Body></e:Envelope>"#;
        assert!(parse_identify(other_prefix, &limits).unwrap());
    }

    #[test]
    fn other_bodies_are_not_identify() {
        let limits = Limits::default();
        let wrong_ns = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><wsmid:Identify xmlns:wsmid="urn:other"/></s:Body></s:Envelope>"#;
        assert!(!parse_identify(wrong_ns, &limits).unwrap());
        let two = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Body><wsmid:Identify/><wsmid:Identify/></s:Body></s:Envelope>"#;
        assert!(!parse_identify(two, &limits).unwrap());
        let two_bodies = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Body><wsmid:Identify/></s:Body><s:Body/></s:Envelope>"#;
        assert!(!parse_identify(two_bodies, &limits).unwrap());
        let empty = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>"#;
        assert!(!parse_identify(empty, &limits).unwrap());
        assert!(parse_identify(b"<x/>", &limits).is_err());
        assert!(parse_identify(b"not xml", &limits).is_err());
        let tiny = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse_identify(IDENTIFY, &tiny),
            Err(WsmanError::TooLarge { .. })
        ));
    }

    #[test]
    fn response_round_trips_through_a_namespace_aware_reader() {
        let xml = build_identify_response(&IdentifyResponse {
            protocol_version: ns::WSMAN.into(),
            product_vendor: "hopgate <&>".into(),
            product_version: "1.2.3".into(),
        });
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.contains("<wsmid:ProductVendor>hopgate &lt;&amp;&gt;</wsmid:ProductVendor>"));
        assert!(text.contains(
            "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>"
        ));
        // A well-formed SOAP envelope, and not itself an Identify request.
        assert!(!parse_identify(&xml, &Limits::default()).unwrap());
    }
}
