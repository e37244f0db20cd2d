//! WS-Enumeration of shells (`Get-PSSession -ComputerName`, pypsrp's
//! `RunspacePool.get_runspace_pools`, MS-PSRP 3.1.4.11, MS-WSMV 3.1.4.8).
//!
//! Owns the two pieces the gateway reads of an enumeration of WinRS shells: the ShellId a
//! client's `wsen:Enumerate` filters on (`wsman:Filter` with the SelectorFilter dialect, as
//! for the commands of one shell), and where each `rsp:Shell` item of an
//! `EnumerateResponse` sits, so the caller can drop the items it must not show, every other
//! byte unchanged. Which items those are is the caller's business.

use std::ops::Range;

use super::envelope::Limits;
use super::error::WsmanError;
use super::reader::{Cursor, Elem, Ev, Ns};

/// One item of an `EnumerateResponse` (`w:Items/rsp:Shell`, or any other element there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumeratedShell {
    /// Its `rsp:ShellId`, trimmed; `None` when the item names none or is not an
    /// `rsp:Shell` at all.
    pub shell_id: Option<String>,
    /// The whole element, tags included, in the parsed input.
    pub span: Range<usize>,
}

/// Opens the envelope and returns the cursor inside `s:Body` (its first child not read).
fn into_body<'i>(input: &'i [u8], limits: &Limits) -> Result<Cursor<'i>, WsmanError> {
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
    while let Some(elem) = cur.next_child()? {
        if elem.is(Ns::Soap, "Body") {
            return Ok(cur);
        }
        cur.skip()?;
    }
    Err(WsmanError::MissingBody)
}

fn is_local(elem: &Elem<'_>, local: &str) -> bool {
    elem.start.local_name().as_ref() == local.as_bytes()
}

/// The ShellId of an Enumerate's SelectorFilter (`wsen:Enumerate/wsman:Filter/
/// wsman:SelectorSet/wsman:Selector[@Name="ShellId"]`), if it has one.
pub fn enumerate_filter_shell_id(
    input: &[u8],
    limits: &Limits,
) -> Result<Option<String>, WsmanError> {
    let mut cur = into_body(input, limits)?;
    let mut found = None;
    while let Some(enumerate) = cur.next_child()? {
        if !(enumerate.is(Ns::Enumeration, "Enumerate")) {
            cur.skip()?;
            continue;
        }
        while let Some(filter) = cur.next_child()? {
            if !filter.is(Ns::Wsman, "Filter") {
                cur.skip()?;
                continue;
            }
            while let Some(set) = cur.next_child()? {
                if !set.is(Ns::Wsman, "SelectorSet") {
                    cur.skip()?;
                    continue;
                }
                while let Some(sel) = cur.next_child()? {
                    let name = cur.attr(&sel, "Name")?;
                    if sel.is(Ns::Wsman, "Selector")
                        && name.is_some_and(|n| n.eq_ignore_ascii_case("ShellId"))
                    {
                        if found.is_some() {
                            // Two ShellIds: which one would the host use?
                            return Err(WsmanError::Duplicate {
                                path: cur.path_with("/Selector"),
                            });
                        }
                        found = Some(cur.trimmed()?);
                    } else {
                        cur.skip()?;
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The items of an `EnumerateResponse`, in order: every `rsp:Shell` with its ShellId, and
/// any other element with none.
pub fn enumerated_shells(
    input: &[u8],
    limits: &Limits,
) -> Result<Vec<EnumeratedShell>, WsmanError> {
    let mut cur = into_body(input, limits)?;
    let mut shells = Vec::new();
    while let Some(resp) = cur.next_child()? {
        if !resp.is(Ns::Enumeration, "EnumerateResponse")
            && !resp.is(Ns::Enumeration, "PullResponse")
        {
            cur.skip()?;
            continue;
        }
        while let Some(items) = cur.next_child()? {
            // Items is `w:Items` after an optimised Enumerate, `n:Items` in a PullResponse.
            if !is_local(&items, "Items") {
                cur.skip()?;
                continue;
            }
            while let Some(item) = cur.next_child()? {
                let start = cur.event_start();
                if !item.is(Ns::Shell, "Shell") {
                    // Not a shell the caller can recognise: listed without an id, so a
                    // filter that keeps only known shells drops it.
                    cur.skip()?;
                    shells.push(EnumeratedShell {
                        shell_id: None,
                        span: start..cur.position(),
                    });
                    continue;
                }
                let mut shell_id = None;
                while let Some(child) = cur.next_child()? {
                    if child.is(Ns::Shell, "ShellId") && shell_id.is_none() {
                        shell_id = Some(cur.trimmed()?);
                    } else {
                        cur.skip()?;
                    }
                }
                shells.push(EnumeratedShell {
                    shell_id,
                    span: start..cur.position(),
                });
            }
        }
    }
    Ok(shells)
}

/// `input` without the byte ranges in `drop` (sorted, not overlapping, inside `input`);
/// `input` unchanged where a range does not fit.
pub fn remove_ranges(input: &[u8], drop: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut at = 0;
    for r in drop {
        if r.start < at || r.end < r.start || r.end > input.len() {
            continue;
        }
        out.extend_from_slice(input.get(at..r.start).unwrap_or_default());
        at = r.end;
    }
    out.extend_from_slice(input.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    const NS: &str = r#"xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd""#;

    fn shell(id: &str) -> String {
        format!(
            r#"<rsp:Shell xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><rsp:ShellId>{id}</rsp:ShellId><rsp:State>Disconnected</rsp:State></rsp:Shell>"#
        )
    }

    #[test]
    fn shells_are_found_and_dropped_byte_exactly() {
        let (a, b, c) = (shell("A-1"), shell("B-2"), shell("C-3"));
        let xml = format!(
            r#"<s:Envelope {NS}><s:Header/><s:Body><n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>{a}{b}{c}</w:Items><w:EndOfSequence/></n:EnumerateResponse></s:Body></s:Envelope>"#
        );
        let found = enumerated_shells(xml.as_bytes(), &Limits::default()).unwrap();
        let ids: Vec<_> = found.iter().map(|s| s.shell_id.clone().unwrap()).collect();
        assert_eq!(ids, ["A-1", "B-2", "C-3"]);
        assert_eq!(&xml.as_bytes()[found[1].span.clone()], b.as_bytes());
        let kept = remove_ranges(
            xml.as_bytes(),
            &[found[0].span.clone(), found[2].span.clone()],
        );
        assert_eq!(
            String::from_utf8(kept).unwrap(),
            xml.replace(&a, "").replace(&c, "")
        );
        // An item in another namespace has no id (a filter keeping known shells drops it).
        let odd = xml.replace(
            &b,
            r#"<x:Shell xmlns:x="urn:other"><x:ShellId>B-2</x:ShellId></x:Shell>"#,
        );
        let found = enumerated_shells(odd.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].shell_id, None);
        let found = enumerated_shells(xml.as_bytes(), &Limits::default()).unwrap();
        let none = remove_ranges(
            xml.as_bytes(),
            &found.iter().map(|s| s.span.clone()).collect::<Vec<_>>(),
        );
        assert!(enumerated_shells(&none, &Limits::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_filter_names_the_shell() {
        let xml = format!(
            r#"<s:Envelope {NS}><s:Header/><s:Body><n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>32000</w:MaxElements><w:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"><w:SelectorSet><w:Selector Name="ShellId">ABC-1</w:Selector></w:SelectorSet></w:Filter></n:Enumerate></s:Body></s:Envelope>"#
        );
        assert_eq!(
            enumerate_filter_shell_id(xml.as_bytes(), &Limits::default()).unwrap(),
            Some("ABC-1".into())
        );
        let twice = xml.replace(
            "</w:SelectorSet>",
            r#"<w:Selector Name="shellid">XYZ</w:Selector></w:SelectorSet>"#,
        );
        assert!(enumerate_filter_shell_id(twice.as_bytes(), &Limits::default()).is_err());
        let plain = format!(
            r#"<s:Envelope {NS}><s:Header/><s:Body><n:Enumerate><w:OptimizeEnumeration/></n:Enumerate></s:Body></s:Envelope>"#
        );
        assert_eq!(
            enumerate_filter_shell_id(plain.as_bytes(), &Limits::default()).unwrap(),
            None
        );
    }
}
