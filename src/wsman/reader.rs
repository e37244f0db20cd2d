//! A small pull cursor over `quick_xml::NsReader` used by the envelope, body and fault
//! decoders.
//!
//! Owns: namespace resolution to [`Ns`], the depth limit, the element path used in
//! errors, text accumulation (text, CDATA and entity references joined, unescaped) and
//! skipping of unknown subtrees. It must not know any WS-Management element: callers
//! match on `(Ns, local name)`.

use std::borrow::Cow;
use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::NsReader;

use super::envelope::Limits;
use super::error::WsmanError;
use super::ns;

/// The namespaces the decoders care about; everything else is [`Ns::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    Soap,
    Addressing,
    Transfer,
    Enumeration,
    Wsman,
    Wsmv,
    Shell,
    WsmanFault,
    PowerShell,
    /// A namespace we do not interpret.
    Other,
    /// No namespace (unprefixed element without a default namespace).
    None,
}

// === impl Ns ===

impl Ns {
    fn from_uri(raw: &[u8]) -> Ns {
        let uri = namespace_text(raw);
        let uri = uri.as_bytes();
        const TABLE: &[(&str, Ns)] = &[
            (ns::SOAP, Ns::Soap),
            (ns::ADDRESSING, Ns::Addressing),
            (ns::TRANSFER, Ns::Transfer),
            (ns::ENUMERATION, Ns::Enumeration),
            (ns::WSMAN, Ns::Wsman),
            (ns::WSMV, Ns::Wsmv),
            (ns::SHELL, Ns::Shell),
            (ns::WSMAN_FAULT, Ns::WsmanFault),
            (ns::POWERSHELL, Ns::PowerShell),
        ];
        TABLE
            .iter()
            .find(|(u, _)| u.as_bytes() == uri)
            .map(|(_, n)| *n)
            .unwrap_or(Ns::Other)
    }
}

/// An opened element: its namespace and start tag (attributes still unparsed).
#[derive(Debug)]
pub(crate) struct Elem<'i> {
    pub(crate) ns: Ns,
    pub(crate) start: BytesStart<'i>,
    /// Written as `<x/>`; the cursor still reports a matching [`Ev::End`].
    pub(crate) empty: bool,
}

// === impl Elem ===

impl Elem<'_> {
    /// True when this element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: Ns, local: &str) -> bool {
        self.ns == ns && self.start.local_name().as_ref() == local.as_bytes()
    }
}

/// One step of the cursor.
#[derive(Debug)]
pub(crate) enum Ev<'i> {
    /// An element opened (also for `<x/>`, followed by a synthetic [`Ev::End`]).
    Start(Elem<'i>),
    /// A piece of character data, already unescaped.
    Text(Cow<'i, str>),
    /// The innermost open element closed.
    End,
    /// End of input at depth 0.
    Eof,
}

/// The cursor. Positions it reports are byte offsets into the original input.
#[derive(Debug)]
pub(crate) struct Cursor<'i> {
    reader: NsReader<&'i [u8]>,
    /// The whole original input (positions index into it).
    input: &'i [u8],
    /// Bytes stripped before the reader saw the input (a UTF-8 BOM).
    base: usize,
    depth: usize,
    limits: Limits,
    /// Namespace declarations in scope (the resolver scans them for every name).
    namespaces: usize,
    /// Declarations each open element added to `namespaces`, innermost last.
    ns_marks: Vec<usize>,
    /// `/Envelope/Body/...` of the open elements, local names only.
    path: String,
    /// `path.len()` before each open element was pushed.
    marks: Vec<usize>,
    /// The last element was `<x/>`: the next call returns its `End`.
    pending_end: bool,
    /// Position before the last event read from the input (the `<` of a start tag).
    event_start: usize,
}

// === impl Cursor ===

impl<'i> Cursor<'i> {
    pub(crate) fn new(input: &'i [u8], limits: &Limits) -> Cursor<'i> {
        // quick-xml drops a UTF-8 BOM without counting it in its offsets, so strip it here
        // and add it back to every position we report.
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let (base, body) = match input.strip_prefix(BOM) {
            Some(rest) => (BOM.len(), rest),
            None => (0, input),
        };
        let mut reader = NsReader::from_reader(body);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Cursor {
            reader,
            input,
            base,
            depth: 0,
            limits: *limits,
            namespaces: 0,
            ns_marks: Vec::new(),
            path: String::new(),
            marks: Vec::new(),
            pending_end: false,
            event_start: base,
        }
    }

    /// Byte offset (into the original input) just after the last event.
    pub(crate) fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position())
            .unwrap_or(usize::MAX)
            .saturating_add(self.base)
    }

    /// Byte offset where the last event read from the input began: for a start tag, its
    /// `<`.
    pub(crate) fn event_start(&self) -> usize {
        self.event_start
    }

    /// A slice of the original input, if the range is inside it.
    pub(crate) fn input_slice(&self, start: usize, end: usize) -> Option<&'i [u8]> {
        self.input.get(start..end)
    }

    /// The byte range of an element's content, given the position just after its start
    /// tag and that its end tag has just been consumed: from `start` to the `<` of the end
    /// tag (the last `<` before the current position; the end tag holds no other).
    pub(crate) fn content_span(&self, start: usize) -> std::ops::Range<usize> {
        let end = self.position();
        let stop = self
            .input_slice(start, end)
            .and_then(|s| s.iter().rposition(|&b| b == b'<'))
            .map_or(start, |i| start + i);
        start..stop
    }

    /// The current element path, for errors.
    pub(crate) fn path(&self) -> String {
        if self.path.is_empty() {
            "/".to_owned()
        } else {
            self.path.clone()
        }
    }

    /// The current element path with a suffix (e.g. `/@Code`), for errors.
    pub(crate) fn path_with(&self, suffix: &str) -> String {
        let mut p = self.path.clone();
        p.push_str(suffix);
        p
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    fn xml_error(&self, err: impl std::fmt::Display, at_error: bool) -> WsmanError {
        let raw = if at_error {
            self.reader.error_position()
        } else {
            self.reader.buffer_position()
        };
        WsmanError::Xml {
            offset: raw.saturating_add(self.base as u64),
            message: err.to_string(),
        }
    }

    fn push(&mut self, start: &BytesStart<'_>) -> Result<(), WsmanError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(WsmanError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        self.marks.push(self.path.len());
        self.path.push('/');
        self.path
            .push_str(&String::from_utf8_lossy(start.local_name().as_ref()));
        let declared = self.check_attributes(start)?;
        self.ns_marks.push(declared);
        self.namespaces = self.namespaces.saturating_add(declared);
        if self.namespaces > self.limits.max_namespaces {
            return Err(WsmanError::TooManyNamespaces {
                limit: self.limits.max_namespaces,
                path: self.path(),
            });
        }
        Ok(())
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if let Some(mark) = self.marks.pop() {
            self.path.truncate(mark);
        }
        if let Some(declared) = self.ns_marks.pop() {
            self.namespaces = self.namespaces.saturating_sub(declared);
        }
    }

    /// One linear pass over a start tag's attributes, before anyone reads them: the count
    /// and value-size caps, names, duplicates (by a hash set: quick-xml's own check
    /// compares each key with every earlier one, which made a 100,000-attribute tag cost
    /// 17 s, issue #14) and XML characters in the unescaped values. Returns the number of
    /// namespace declarations. Later lookups ([`Cursor::attr`]) skip quick-xml's check.
    fn check_attributes(&self, start: &BytesStart<'_>) -> Result<usize, WsmanError> {
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut declared = 0usize;
        for (count, attr) in start.attributes().with_checks(false).enumerate() {
            if count >= self.limits.max_attributes {
                return Err(WsmanError::TooManyAttributes {
                    limit: self.limits.max_attributes,
                    path: self.path(),
                });
            }
            let attr = attr.map_err(|e| self.xml_error(e, false))?;
            let key = attr.key.into_inner();
            if !is_xml_name(key) {
                return Err(self.xml_error("invalid attribute name", false));
            }
            if attr.value.len() > self.limits.max_attribute_bytes {
                return Err(WsmanError::AttributeTooLarge {
                    limit: self.limits.max_attribute_bytes,
                    path: self.path(),
                });
            }
            if !seen.insert(key) {
                let name = String::from_utf8_lossy(key).into_owned();
                return Err(self.xml_error(format_args!("duplicate attribute {name}"), false));
            }
            let value = attr
                .unescape_value()
                .map_err(|e| self.xml_error(e, false))?;
            self.check_chars(&value)?;
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                declared += 1;
            }
        }
        Ok(declared)
    }

    /// Refuses characters outside the XML 1.0 `Char` production (controls other than tab,
    /// CR and LF; U+FFFE, U+FFFF), in text and attribute values alike: a host's parser
    /// refuses them, and a NUL the gateway let through could end a string early in
    /// whatever reads the audit record.
    fn check_chars(&self, text: &str) -> Result<(), WsmanError> {
        match text.chars().find(|&c| !is_xml_char(c)) {
            None => Ok(()),
            Some(c) => Err(self.xml_error(
                format_args!("character U+{:04X} is not allowed in xml", u32::from(c)),
                false,
            )),
        }
    }

    /// The next child element of the element just entered, skipping text between children;
    /// `None` at its end tag, an error at end of input.
    pub(crate) fn next_child(&mut self) -> Result<Option<Elem<'i>>, WsmanError> {
        loop {
            match self.next()? {
                Ev::Start(e) => return Ok(Some(e)),
                Ev::Text(_) => continue,
                Ev::End => return Ok(None),
                Ev::Eof => return Err(WsmanError::UnexpectedEof { path: self.path() }),
            }
        }
    }

    /// Reads the next event, skipping declarations, comments and processing instructions.
    /// Errors on a DOCTYPE (SOAP forbids DTDs) and on end of input inside an element.
    pub(crate) fn next(&mut self) -> Result<Ev<'i>, WsmanError> {
        if self.pending_end {
            self.pending_end = false;
            self.pop();
            return Ok(Ev::End);
        }
        loop {
            self.event_start = self.position();
            let (ns, event) = match self.reader.read_resolved_event() {
                Ok((res, ev)) => (resolve(res), ev),
                Err(e) => return Err(self.xml_error(e, true)),
            };
            // Only start tags can carry an unknown prefix: end tags were checked against
            // their start, other events resolve to `Unbound`.
            let ns = match ns {
                Ok(ns) => ns,
                Err(prefix) => {
                    return Err(
                        self.xml_error(format_args!("unknown namespace prefix '{prefix}'"), false)
                    )
                }
            };
            if let Event::Start(start) | Event::Empty(start) = &event {
                // quick-xml does not check names; a host's parser would refuse these, and a
                // rebuilt envelope must never differ from what was read.
                if !is_xml_name(start.name().as_ref()) {
                    return Err(self.xml_error(format_args!("invalid element name"), false));
                }
            }
            match event {
                Event::Start(start) => {
                    self.push(&start)?;
                    return Ok(Ev::Start(Elem {
                        ns,
                        start,
                        empty: false,
                    }));
                }
                Event::Empty(start) => {
                    self.push(&start)?;
                    self.pending_end = true;
                    return Ok(Ev::Start(Elem {
                        ns,
                        start,
                        empty: true,
                    }));
                }
                Event::End(_) => {
                    self.pop();
                    return Ok(Ev::End);
                }
                Event::Text(text) => {
                    let s = text.xml_content().map_err(|e| self.xml_error(e, false))?;
                    self.check_chars(&s)?;
                    return Ok(Ev::Text(s));
                }
                Event::CData(data) => {
                    let s = data.xml_content().map_err(|e| self.xml_error(e, false))?;
                    self.check_chars(&s)?;
                    return Ok(Ev::Text(s));
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => match predefined_entity(&r) {
                            Some(c) => c,
                            None => {
                                let name = String::from_utf8_lossy(&r).into_owned();
                                return Err(
                                    self.xml_error(format_args!("unknown entity &{name};"), false)
                                );
                            }
                        },
                        Err(e) => return Err(self.xml_error(e, false)),
                    };
                    // quick-xml refuses only `&#0;`; XML 1.0 refuses every non-Char.
                    if !is_xml_char(ch) {
                        return Err(self.xml_error(
                            format_args!("character U+{:04X} is not allowed in xml", u32::from(ch)),
                            false,
                        ));
                    }
                    return Ok(Ev::Text(Cow::Owned(ch.to_string())));
                }
                Event::DocType(_) => {
                    return Err(self.xml_error("document type declarations are not allowed", false));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
                Event::Eof => {
                    if self.depth > 0 {
                        return Err(WsmanError::UnexpectedEof { path: self.path() });
                    }
                    return Ok(Ev::Eof);
                }
            }
        }
    }

    /// After an [`Ev::Start`], consumes everything up to and including its end.
    pub(crate) fn skip(&mut self) -> Result<(), WsmanError> {
        let target = self.depth.saturating_sub(1);
        while self.depth > target {
            if let Ev::Eof = self.next()? {
                return Err(WsmanError::UnexpectedEof { path: self.path() });
            }
        }
        Ok(())
    }

    /// After an [`Ev::Start`], returns the character data inside the element and consumes
    /// its end. Borrows when the text is one piece.
    ///
    /// A child element is an error ([`WsmanError::UnexpectedElement`]): in a text-only
    /// element the host's schema would refuse it, and guessing which text it reads could
    /// let the gateway check a different value than the host runs.
    pub(crate) fn text(&mut self) -> Result<Cow<'i, str>, WsmanError> {
        let target = self.depth.saturating_sub(1);
        let mut acc: Option<Cow<'i, str>> = None;
        while self.depth > target {
            match self.next()? {
                Ev::Start(_) => return Err(WsmanError::UnexpectedElement { path: self.path() }),
                Ev::Text(piece) => {
                    acc = Some(match acc {
                        None => piece,
                        Some(mut s) => {
                            s.to_mut().push_str(&piece);
                            s
                        }
                    });
                }
                Ev::End => {}
                Ev::Eof => return Err(WsmanError::UnexpectedEof { path: self.path() }),
            }
        }
        Ok(acc.unwrap_or(Cow::Borrowed("")))
    }

    /// Like [`Cursor::text`], trimmed of XML whitespace, as an owned string (for ids,
    /// URIs, numbers: pretty-printed replies put newlines around them).
    pub(crate) fn trimmed(&mut self) -> Result<String, WsmanError> {
        Ok(self.text()?.trim().to_owned())
    }

    /// Value of the unprefixed attribute `local` of `elem`, unescaped.
    pub(crate) fn attr(&self, elem: &Elem<'i>, local: &str) -> Result<Option<String>, WsmanError> {
        // Checked for duplicates once, in `check_attributes`.
        for attr in elem.start.attributes().with_checks(false) {
            let attr = attr.map_err(|e| self.xml_error(e, false))?;
            if attr.key.prefix().is_none() && attr.key.local_name().as_ref() == local.as_bytes() {
                let value = attr
                    .unescape_value()
                    .map_err(|e| self.xml_error(e, false))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    /// Value of the attribute `local` in namespace `ns_uri` (e.g. `xml:lang`).
    pub(crate) fn attr_ns(
        &self,
        elem: &Elem<'i>,
        ns_uri: &str,
        local: &str,
    ) -> Result<Option<String>, WsmanError> {
        for attr in elem.start.attributes().with_checks(false) {
            let attr = attr.map_err(|e| self.xml_error(e, false))?;
            if attr.key.local_name().as_ref() != local.as_bytes() {
                continue;
            }
            let (res, _) = self.reader.resolve_attribute(attr.key);
            if matches!(res, ResolveResult::Bound(n) if n.as_ref() == ns_uri.as_bytes()) {
                let value = attr
                    .unescape_value()
                    .map_err(|e| self.xml_error(e, false))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    /// The namespace URI of an element just returned by [`Cursor::next`] (only valid
    /// before the next call), for reporting unknown elements.
    pub(crate) fn namespace_of(&self, elem: &Elem<'i>) -> Option<String> {
        match self.reader.resolve_element(elem.start.name()).0 {
            ResolveResult::Bound(n) => Some(namespace_text(n.as_ref()).into_owned()),
            _ => None,
        }
    }

    /// Resolves a qualified name written as text (`w:TimedOut`) with the namespace
    /// bindings in scope of the current element. An unknown prefix gives no namespace.
    /// Resolves `xs:QName` text (`prefix:Local` or `Local`). Anything else (whitespace or
    /// control characters inside, several colons, an empty or unbound prefix) is refused:
    /// the gateway must never read a different name than the host's parser would.
    pub(crate) fn resolve_qname(&self, text: &str) -> Option<(Option<String>, String)> {
        let ncname = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
                && s.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let valid = match text.split_once(':') {
            Some((prefix, local)) => ncname(prefix) && ncname(local),
            None => ncname(text),
        };
        if !valid {
            return None;
        }
        let (res, local) = self.reader.resolve_element(QName(text.as_bytes()));
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        match res {
            ResolveResult::Bound(n) => Some((Some(namespace_text(n.as_ref()).into_owned()), local)),
            ResolveResult::Unbound => Some((None, local)),
            ResolveResult::Unknown(_) => None,
        }
    }
}

/// Whether `name` is an XML element name (`prefix:local` or `local`) made of name
/// characters: letters, digits (not first), `_`, `-`, `.` and non-ASCII characters.
fn is_xml_name(name: &[u8]) -> bool {
    let part = |p: &[u8]| {
        !p.is_empty()
            && !p
                .first()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.'))
            && p.iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.') || c >= 0x80)
    };
    let mut parts = name.splitn(2, |&c| c == b':');
    match (parts.next(), parts.next()) {
        (Some(prefix), Some(local)) => part(prefix) && part(local),
        (Some(local), None) => part(local),
        _ => false,
    }
}

/// The XML 1.0 `Char` production for a Rust `char` (which cannot be a surrogate).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Maps a resolution result to [`Ns`], or the unknown prefix as the error.
fn resolve(res: ResolveResult<'_>) -> Result<Ns, String> {
    match res {
        ResolveResult::Bound(n) => Ok(Ns::from_uri(n.as_ref())),
        ResolveResult::Unbound => Ok(Ns::None),
        ResolveResult::Unknown(p) => Err(String::from_utf8_lossy(&p).into_owned()),
    }
}

/// A namespace name as written in `xmlns` (quick-xml keeps it escaped), unescaped: an
/// entity-encoded namespace must resolve to the same URI the host's XML parser sees.
/// Undecodable references stay as written, so the name matches nothing we know.
fn namespace_text(raw: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
    if !text.contains('&') {
        return text;
    }
    match quick_xml::escape::unescape(&text) {
        Ok(u) => Cow::Owned(u.into_owned()),
        Err(_) => text,
    }
}

/// The five entities XML predefines; no others exist without a DTD.
fn predefined_entity(name: &[u8]) -> Option<char> {
    Some(match name {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        _ => return None,
    })
}

/// Parses `xs:boolean` (`true`, `false`, `1`, `0`; pypsrp also sends `True`/`False`).
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}
