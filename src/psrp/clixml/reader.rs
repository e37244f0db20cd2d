//! CLIXML reader (MS-PSRP 2.2.5): XML text → [`Value`]s.
//!
//! Owns XML-level decoding: elements matched by (namespace, local name) with the namespace
//! either absent or the PowerShell 2004/04 one, entity and `_xHHHH_` decoding, `<Ref>` and
//! `<TNRef>` resolution, and the depth and value-count limits. It never panics on any
//! input, refuses DOCTYPEs, and reports errors with a byte offset and an element path. It
//! does not know what any object means (that is `pipeline.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::escape;
use super::value::{ListKind, Object, ObjectContent, Value, ValueKind};
use crate::psrp::error::{ClixmlErrorKind, PsrpError};

/// The namespace of `<Objs>` documents; PSRP message data uses no namespace.
pub const CLIXML_NAMESPACE: &[u8] = b"http://schemas.microsoft.com/powershell/2004/04";

/// Bounds on the work and memory one document may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClixmlLimits {
    /// Deepest element nesting.
    pub max_depth: usize,
    /// Most values (primitives, objects, references) in one document.
    pub max_values: usize,
}

impl Default for ClixmlLimits {
    fn default() -> Self {
        Self {
            max_depth: 100,
            max_values: 100_000,
        }
    }
}

/// Parses CLIXML with the default limits. The text holds either `<Objs>` (its children are
/// returned) or one or more values one after another (PSRP message data); empty text
/// holds no value.
pub fn parse_clixml(xml: &str) -> Result<Vec<Value>, PsrpError> {
    parse_clixml_with(xml, &ClixmlLimits::default())
}

/// Parses CLIXML with explicit limits; see [`parse_clixml`].
pub fn parse_clixml_with(xml: &str, limits: &ClixmlLimits) -> Result<Vec<Value>, PsrpError> {
    let mut reader = Reader {
        xml: NsReader::from_str(xml),
        limits: *limits,
        depth: 0,
        values: 0,
        objects: HashMap::new(),
        type_names: HashMap::new(),
    };
    reader.document().map_err(|fail| {
        let mut path: Vec<String> = fail.path;
        path.reverse();
        PsrpError::Clixml {
            offset: fail.offset,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.join("/")
            },
            kind: fail.kind,
        }
    })
}

/// An error on its way out; `path` collects segments innermost first while unwinding, so
/// the happy path never builds paths.
#[derive(Debug)]
struct Fail {
    offset: u64,
    kind: ClixmlErrorKind,
    path: Vec<String>,
}

type Res<T> = Result<T, Fail>;

/// The start tag of an element, reduced to what CLIXML uses.
struct Tag {
    local: Vec<u8>,
    name: Option<String>,
    ref_id: Option<String>,
    empty: bool,
}

impl Tag {
    fn segment(&self) -> String {
        let local = String::from_utf8_lossy(&self.local);
        match &self.name {
            Some(n) => format!("{local}[N={n}]"),
            None => local.into_owned(),
        }
    }
}

struct Reader<'x> {
    xml: NsReader<&'x [u8]>,
    limits: ClixmlLimits,
    depth: usize,
    values: usize,
    objects: HashMap<String, Arc<Object>>,
    type_names: HashMap<String, Arc<[String]>>,
}

/// What the next piece of element content is.
enum Next {
    Child(Tag),
    End,
}

impl<'x> Reader<'x> {
    fn fail(&self, kind: ClixmlErrorKind) -> Fail {
        Fail {
            offset: self.xml.buffer_position(),
            kind,
            path: Vec::new(),
        }
    }

    fn document(&mut self) -> Res<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match self.next_in_elements(true)? {
                None => return Ok(out),
                Some(Next::End) => {
                    return Err(self.fail(ClixmlErrorKind::UnexpectedElement("/".to_owned())))
                }
                Some(Next::Child(tag)) if tag.local == b"Objs" => {
                    let seg = tag.segment();
                    self.enter()?;
                    let r = self.value_list(&tag);
                    self.depth -= 1;
                    out.extend(r.map_err(|f| within(f, seg))?);
                }
                Some(Next::Child(tag)) => out.push(self.value(tag)?),
            }
        }
    }

    /// Reads the next child tag or end tag in element-only content, skipping whitespace,
    /// comments, processing instructions and the XML declaration. `None` only at end of
    /// document when `top` is set.
    fn next_in_elements(&mut self, top: bool) -> Res<Option<Next>> {
        loop {
            let (ns_ok, event) = match self.xml.read_resolved_event() {
                Ok((ns, event)) => (namespace_ok(&ns), event),
                Err(e) => return Err(self.fail(ClixmlErrorKind::Xml(e.to_string()))),
            };
            match event {
                Event::Start(e) | Event::Empty(e) if !ns_ok => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(self.fail(ClixmlErrorKind::UnknownNamespace(name)));
                }
                Event::Start(e) => return self.tag(&e, false).map(|t| Some(Next::Child(t))),
                Event::Empty(e) => return self.tag(&e, true).map(|t| Some(Next::Child(t))),
                Event::End(_) => return Ok(Some(Next::End)),
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(self.fail(ClixmlErrorKind::UnexpectedText));
                    }
                }
                Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self.fail(ClixmlErrorKind::UnexpectedText))
                }
                Event::DocType(_) => return Err(self.fail(ClixmlErrorKind::DocType)),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
                Event::Eof if top => return Ok(None),
                Event::Eof => return Err(self.fail(ClixmlErrorKind::UnexpectedEof)),
            }
        }
    }

    fn tag(&self, e: &BytesStart<'_>, empty: bool) -> Res<Tag> {
        let mut tag = Tag {
            local: e.local_name().as_ref().to_vec(),
            name: None,
            ref_id: None,
            empty,
        };
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| self.fail(ClixmlErrorKind::BadAttribute(err.to_string())))?;
            let key = attr.key.local_name();
            if key.as_ref() != b"N" && key.as_ref() != b"RefId" {
                continue;
            }
            let value = attr
                .unescape_value()
                .map_err(|err| self.fail(ClixmlErrorKind::BadAttribute(err.to_string())))?;
            if key.as_ref() == b"N" {
                tag.name = Some(escape::decode(&value).into_owned());
            } else {
                tag.ref_id = Some(value.into_owned());
            }
        }
        Ok(tag)
    }

    fn enter(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.fail(ClixmlErrorKind::TooDeep(self.limits.max_depth)));
        }
        Ok(())
    }

    fn count_value(&mut self) -> Res<()> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(self.fail(ClixmlErrorKind::TooManyValues(self.limits.max_values)));
        }
        Ok(())
    }

    /// Reads one value element whose start tag was just read.
    fn value(&mut self, tag: Tag) -> Res<Value> {
        self.enter()?;
        let r = self.value_inner(&tag);
        self.depth -= 1;
        let kind = r.map_err(|f| within(f, tag.segment()))?;
        Ok(Value {
            name: tag.name,
            kind,
        })
    }

    fn value_inner(&mut self, tag: &Tag) -> Res<ValueKind> {
        self.count_value()?;
        let kind = match tag.local.as_slice() {
            b"Obj" => return self.object(tag).map(ValueKind::Object),
            b"Ref" => {
                let id = tag
                    .ref_id
                    .as_deref()
                    .ok_or_else(|| self.fail(ClixmlErrorKind::MissingAttribute("RefId")))?;
                let obj = self
                    .objects
                    .get(id)
                    .cloned()
                    .ok_or_else(|| self.fail(ClixmlErrorKind::UnknownRefId(id.to_owned())))?;
                self.expect_no_text(tag)?;
                return Ok(ValueKind::Object(obj));
            }
            b"Nil" => {
                self.expect_no_text(tag)?;
                return Ok(ValueKind::Nil);
            }
            _ => {
                let text = self.text(tag)?;
                primitive(&tag.local, &text).map_err(|kind| self.fail(kind))?
            }
        };
        Ok(kind)
    }

    /// Reads the text content of a primitive element (entities resolved, line ends
    /// normalised as XML requires).
    fn text(&mut self, tag: &Tag) -> Res<String> {
        let mut out = String::new();
        if tag.empty {
            return Ok(out);
        }
        loop {
            let event = self
                .xml
                .read_event()
                .map_err(|e| self.fail(ClixmlErrorKind::Xml(e.to_string())))?;
            match event {
                Event::Text(t) => {
                    let s = t
                        .xml_content()
                        .map_err(|e| self.fail(ClixmlErrorKind::Xml(e.to_string())))?;
                    out.push_str(&s);
                }
                Event::CData(t) => {
                    let s = t
                        .xml_content()
                        .map_err(|e| self.fail(ClixmlErrorKind::Xml(e.to_string())))?;
                    out.push_str(&s);
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        Ok(None) => None,
                        Err(e) => return Err(self.fail(ClixmlErrorKind::Xml(e.to_string()))),
                    };
                    match resolved {
                        Some(c) => out.push(c),
                        None => {
                            let name = String::from_utf8_lossy(&r).into_owned();
                            let text = quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| {
                                    self.fail(ClixmlErrorKind::UnknownEntity(name.clone()))
                                })?;
                            out.push_str(text);
                        }
                    }
                }
                Event::End(_) => return Ok(out),
                Event::Start(e) | Event::Empty(e) => {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(self.fail(ClixmlErrorKind::UnexpectedElement(name)));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(self.fail(ClixmlErrorKind::DocType)),
                Event::Decl(_) => {
                    return Err(self.fail(ClixmlErrorKind::UnexpectedElement("?xml".to_owned())))
                }
                Event::Eof => return Err(self.fail(ClixmlErrorKind::UnexpectedEof)),
            }
        }
    }

    /// For elements that must be empty (`Nil`, `Ref`, `TNRef`): whitespace only.
    fn expect_no_text(&mut self, tag: &Tag) -> Res<()> {
        let text = self.text(tag)?;
        if text.trim().is_empty() {
            Ok(())
        } else {
            Err(self.fail(ClixmlErrorKind::UnexpectedText))
        }
    }

    /// Reads child values until the end tag of `tag`.
    fn value_list(&mut self, tag: &Tag) -> Res<Vec<Value>> {
        let mut out = Vec::new();
        if tag.empty {
            return Ok(out);
        }
        while let Some(Next::Child(child)) = self.next_in_elements(false)? {
            out.push(self.value(child)?);
        }
        Ok(out)
    }

    fn object(&mut self, tag: &Tag) -> Res<Arc<Object>> {
        let mut obj = Object::default();
        let mut have_props = false;
        let mut have_ms = false;
        if !tag.empty {
            while let Some(Next::Child(child)) = self.next_in_elements(false)? {
                let seg = child.segment();
                self.object_part(&mut obj, child, &mut have_props, &mut have_ms)
                    .map_err(|f| within(f, seg))?;
            }
        }
        let obj = Arc::new(obj);
        if let Some(id) = &tag.ref_id {
            if self.objects.insert(id.clone(), Arc::clone(&obj)).is_some() {
                return Err(self.fail(ClixmlErrorKind::DuplicateRefId(id.clone())));
            }
        }
        Ok(obj)
    }

    /// One child of `<Obj>`.
    fn object_part(
        &mut self,
        obj: &mut Object,
        child: Tag,
        have_props: &mut bool,
        have_ms: &mut bool,
    ) -> Res<()> {
        let dup = |this: &Self, what| Err(this.fail(ClixmlErrorKind::DuplicateSection(what)));
        match child.local.as_slice() {
            b"TN" | b"TNRef" if obj.type_names.is_some() => dup(self, "TN"),
            b"TN" => {
                self.enter()?;
                let r = self.type_name_list(&child);
                self.depth -= 1;
                let names: Arc<[String]> = r?.into();
                if let Some(id) = child.ref_id {
                    self.type_names.insert(id, Arc::clone(&names));
                }
                obj.type_names = Some(names);
                Ok(())
            }
            b"TNRef" => {
                let id = child
                    .ref_id
                    .as_deref()
                    .ok_or_else(|| self.fail(ClixmlErrorKind::MissingAttribute("RefId")))?;
                let names =
                    self.type_names.get(id).cloned().ok_or_else(|| {
                        self.fail(ClixmlErrorKind::UnknownTypeNameRef(id.to_owned()))
                    })?;
                self.expect_no_text(&child)?;
                obj.type_names = Some(names);
                Ok(())
            }
            b"ToString" if obj.to_string.is_some() => dup(self, "ToString"),
            b"ToString" => {
                let text = self.text(&child)?;
                obj.to_string = Some(escape::decode(&text).into_owned());
                Ok(())
            }
            b"Props" | b"MS" => {
                let flag = if child.local == b"MS" {
                    have_ms
                } else {
                    have_props
                };
                if *flag {
                    return dup(self, if child.local == b"MS" { "MS" } else { "Props" });
                }
                *flag = true;
                self.enter()?;
                let r = self.value_list(&child);
                self.depth -= 1;
                let props = r?;
                if child.local == b"MS" {
                    obj.extended = props;
                } else {
                    obj.adapted = props;
                }
                Ok(())
            }
            _ if !matches!(obj.content, ObjectContent::None) => dup(self, "content"),
            b"LST" | b"IE" | b"QUE" | b"STK" => {
                let kind = match child.local.as_slice() {
                    b"LST" => ListKind::List,
                    b"IE" => ListKind::Enumerable,
                    b"QUE" => ListKind::Queue,
                    _ => ListKind::Stack,
                };
                self.enter()?;
                let r = self.value_list(&child);
                self.depth -= 1;
                obj.content = ObjectContent::List(kind, r?);
                Ok(())
            }
            b"DCT" => {
                self.enter()?;
                let r = self.dict(&child);
                self.depth -= 1;
                obj.content = ObjectContent::Dict(r?);
                Ok(())
            }
            _ => {
                let value = self.value(child)?;
                obj.content = ObjectContent::Primitive(Box::new(value));
                Ok(())
            }
        }
    }

    fn type_name_list(&mut self, tag: &Tag) -> Res<Vec<String>> {
        let mut names = Vec::new();
        if tag.empty {
            return Ok(names);
        }
        while let Some(Next::Child(child)) = self.next_in_elements(false)? {
            if child.local != b"T" {
                let name = String::from_utf8_lossy(&child.local).into_owned();
                return Err(self.fail(ClixmlErrorKind::UnexpectedElement(name)));
            }
            let text = self.text(&child)?;
            names.push(escape::decode(&text).into_owned());
        }
        Ok(names)
    }

    fn dict(&mut self, tag: &Tag) -> Res<Vec<(Value, Value)>> {
        let mut entries = Vec::new();
        if tag.empty {
            return Ok(entries);
        }
        while let Some(Next::Child(entry)) = self.next_in_elements(false)? {
            if entry.local != b"En" {
                let name = String::from_utf8_lossy(&entry.local).into_owned();
                return Err(self.fail(ClixmlErrorKind::UnexpectedElement(name)));
            }
            let index = entries.len();
            self.enter()?;
            let r = self.value_list(&entry);
            self.depth -= 1;
            let parts = r.map_err(|f| within(f, format!("En[{index}]")))?;
            let mut key = None;
            let mut value = None;
            for part in parts {
                let slot = match part.name.as_deref() {
                    Some("Key") => &mut key,
                    Some("Value") => &mut value,
                    _ => return Err(self.fail(ClixmlErrorKind::BadDictEntry)),
                };
                if slot.replace(part).is_some() {
                    return Err(self.fail(ClixmlErrorKind::BadDictEntry));
                }
            }
            match (key, value) {
                (Some(k), Some(v)) => entries.push((k, v)),
                _ => return Err(self.fail(ClixmlErrorKind::BadDictEntry)),
            }
        }
        Ok(entries)
    }
}

fn within(mut fail: Fail, segment: String) -> Fail {
    fail.path.push(segment);
    fail
}

fn namespace_ok(ns: &ResolveResult<'_>) -> bool {
    match ns {
        ResolveResult::Unbound => true,
        ResolveResult::Bound(ns) => ns.as_ref() == CLIXML_NAMESPACE,
        ResolveResult::Unknown(_) => false,
    }
}

/// Decodes a primitive element's text (MS-PSRP 2.2.5.1).
fn primitive(local: &[u8], text: &str) -> Result<ValueKind, ClixmlErrorKind> {
    fn num<T: std::str::FromStr>(element: &'static str, text: &str) -> Result<T, ClixmlErrorKind> {
        text.trim().parse().map_err(|_| invalid(element, text))
    }
    Ok(match local {
        b"S" => ValueKind::String(escape::decode(text).into_owned()),
        b"C" => ValueKind::Char(num("C", text)?),
        b"B" => ValueKind::Bool(match text.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(invalid("B", text)),
        }),
        b"DT" => ValueKind::DateTime(text.to_owned()),
        b"TS" => ValueKind::Duration(text.to_owned()),
        b"By" => ValueKind::U8(num("By", text)?),
        b"SB" => ValueKind::I8(num("SB", text)?),
        b"U16" => ValueKind::U16(num("U16", text)?),
        b"I16" => ValueKind::I16(num("I16", text)?),
        b"U32" => ValueKind::U32(num("U32", text)?),
        b"I32" => ValueKind::I32(num("I32", text)?),
        b"U64" => ValueKind::U64(num("U64", text)?),
        b"I64" => ValueKind::I64(num("I64", text)?),
        b"Sg" => ValueKind::Single(float("Sg", text)?),
        b"Db" => ValueKind::Double(float("Db", text)?),
        b"D" => ValueKind::Decimal(text.trim().to_owned()),
        b"BA" => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            ValueKind::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| invalid("BA", text))?,
            )
        }
        b"G" => {
            ValueKind::Guid(uuid::Uuid::parse_str(text.trim()).map_err(|_| invalid("G", text))?)
        }
        b"URI" => ValueKind::Uri(escape::decode(text).into_owned()),
        b"Version" => ValueKind::Version(text.trim().to_owned()),
        b"XD" => ValueKind::XmlDocument(escape::decode(text).into_owned()),
        b"SBK" => ValueKind::ScriptBlock(escape::decode(text).into_owned()),
        b"SS" => ValueKind::SecureString(text.trim().to_owned()),
        other => {
            return Err(ClixmlErrorKind::UnexpectedElement(
                String::from_utf8_lossy(other).into_owned(),
            ))
        }
    })
}

/// .NET writes infinities and NaN as `INF`, `-INF` and `NaN` (XmlConvert).
fn float<T: std::str::FromStr>(element: &'static str, text: &str) -> Result<T, ClixmlErrorKind> {
    let special = match text.trim() {
        "INF" => "inf",
        "-INF" => "-inf",
        "NaN" => "NaN",
        other => other,
    };
    match special {
        "inf" | "-inf" | "NaN" => special.parse().map_err(|_| invalid(element, text)),
        t if t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            t.parse().map_err(|_| invalid(element, text))
        }
        _ => Err(invalid(element, text)),
    }
}

fn invalid(element: &'static str, text: &str) -> ClixmlErrorKind {
    ClixmlErrorKind::InvalidValue {
        element,
        text: text.chars().take(64).collect(),
    }
}
