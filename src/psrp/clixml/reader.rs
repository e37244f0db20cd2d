//! CLIXML reader (MS-PSRP 2.2.5): XML text → [`Value`]s.
//!
//! Owns XML-level decoding: elements matched by name with no namespace prefix and no default
//! namespace other than the PowerShell 2004/04 one (CLIXML never uses prefixes; anything
//! else is refused), entity and `_xHHHH_` decoding, `<Ref>` and
//! `<TNRef>` resolution, and the depth and value-count limits. It never panics on any
//! input, refuses DOCTYPEs, and reports errors with a byte offset and an element path. It
//! does not know what any object means (that is `pipeline.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};

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
    /// Most attributes on one element. CLIXML uses at most three (`N`, `RefId`, `xmlns`);
    /// the others are skipped, and the cap keeps skipping cheap (issue #14).
    pub max_attributes: usize,
}

impl Default for ClixmlLimits {
    fn default() -> Self {
        Self {
            max_depth: 100,
            max_values: 100_000,
            max_attributes: 64,
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
        xml: quick_xml::Reader::from_str(xml),
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

/// The CLIXML primitive elements (MS-PSRP 2.2.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    S,
    C,
    B,
    Dt,
    Ts,
    By,
    Sb,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    Sg,
    Db,
    D,
    Ba,
    G,
    Uri,
    Version,
    Xd,
    Sbk,
    Ss,
}

impl Prim {
    fn name(self) -> &'static str {
        match self {
            Prim::S => "S",
            Prim::C => "C",
            Prim::B => "B",
            Prim::Dt => "DT",
            Prim::Ts => "TS",
            Prim::By => "By",
            Prim::Sb => "SB",
            Prim::U16 => "U16",
            Prim::I16 => "I16",
            Prim::U32 => "U32",
            Prim::I32 => "I32",
            Prim::U64 => "U64",
            Prim::I64 => "I64",
            Prim::Sg => "Sg",
            Prim::Db => "Db",
            Prim::D => "D",
            Prim::Ba => "BA",
            Prim::G => "G",
            Prim::Uri => "URI",
            Prim::Version => "Version",
            Prim::Xd => "XD",
            Prim::Sbk => "SBK",
            Prim::Ss => "SS",
        }
    }
}

/// Every element name CLIXML uses; matched once per start tag, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Objs,
    Obj,
    Ref,
    Nil,
    Tn,
    TnRef,
    T,
    ToString,
    Props,
    Ms,
    List(ListKind),
    Dct,
    En,
    Prim(Prim),
    Other,
}

impl Elem {
    fn name(self) -> &'static str {
        match self {
            Elem::Objs => "Objs",
            Elem::Obj => "Obj",
            Elem::Ref => "Ref",
            Elem::Nil => "Nil",
            Elem::Tn => "TN",
            Elem::TnRef => "TNRef",
            Elem::T => "T",
            Elem::ToString => "ToString",
            Elem::Props => "Props",
            Elem::Ms => "MS",
            Elem::List(kind) => kind.tag(),
            Elem::Dct => "DCT",
            Elem::En => "En",
            Elem::Prim(p) => p.name(),
            Elem::Other => "?",
        }
    }

    fn from_name(name: &[u8]) -> Self {
        match name {
            b"Objs" => Elem::Objs,
            b"Obj" => Elem::Obj,
            b"Ref" => Elem::Ref,
            b"Nil" => Elem::Nil,
            b"TN" => Elem::Tn,
            b"TNRef" => Elem::TnRef,
            b"T" => Elem::T,
            b"ToString" => Elem::ToString,
            b"Props" => Elem::Props,
            b"MS" => Elem::Ms,
            b"LST" => Elem::List(ListKind::List),
            b"IE" => Elem::List(ListKind::Enumerable),
            b"QUE" => Elem::List(ListKind::Queue),
            b"STK" => Elem::List(ListKind::Stack),
            b"DCT" => Elem::Dct,
            b"En" => Elem::En,
            b"S" => Elem::Prim(Prim::S),
            b"C" => Elem::Prim(Prim::C),
            b"B" => Elem::Prim(Prim::B),
            b"DT" => Elem::Prim(Prim::Dt),
            b"TS" => Elem::Prim(Prim::Ts),
            b"By" => Elem::Prim(Prim::By),
            b"SB" => Elem::Prim(Prim::Sb),
            b"U16" => Elem::Prim(Prim::U16),
            b"I16" => Elem::Prim(Prim::I16),
            b"U32" => Elem::Prim(Prim::U32),
            b"I32" => Elem::Prim(Prim::I32),
            b"U64" => Elem::Prim(Prim::U64),
            b"I64" => Elem::Prim(Prim::I64),
            b"Sg" => Elem::Prim(Prim::Sg),
            b"Db" => Elem::Prim(Prim::Db),
            b"D" => Elem::Prim(Prim::D),
            b"BA" => Elem::Prim(Prim::Ba),
            b"G" => Elem::Prim(Prim::G),
            b"URI" => Elem::Prim(Prim::Uri),
            b"Version" => Elem::Prim(Prim::Version),
            b"XD" => Elem::Prim(Prim::Xd),
            b"SBK" => Elem::Prim(Prim::Sbk),
            b"SS" => Elem::Prim(Prim::Ss),
            _ => Elem::Other,
        }
    }
}

/// The start tag of an element, reduced to what CLIXML uses.
struct Tag {
    elem: Elem,
    /// The element name as written, kept only for unknown elements (messages).
    other: Option<Box<str>>,
    name: Option<String>,
    ref_id: Option<u32>,
    empty: bool,
}

impl Tag {
    fn raw(&self) -> &str {
        self.other.as_deref().unwrap_or_else(|| self.elem.name())
    }

    fn segment(&self) -> String {
        match &self.name {
            Some(n) => format!("{}[N={n}]", self.raw()),
            None => self.raw().to_owned(),
        }
    }
}

struct Reader<'x> {
    xml: quick_xml::Reader<&'x [u8]>,
    limits: ClixmlLimits,
    depth: usize,
    values: usize,
    objects: HashMap<u32, Arc<Object>>,
    type_names: HashMap<u32, Arc<[String]>>,
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

    fn xml_fail(&self, e: impl std::fmt::Display) -> Fail {
        self.fail(ClixmlErrorKind::Xml(e.to_string()))
    }

    fn document(&mut self) -> Res<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            match self.next_in_elements(true)? {
                None => return Ok(out),
                Some(Next::End) => {
                    return Err(self.fail(ClixmlErrorKind::UnexpectedElement("/".to_owned())))
                }
                Some(Next::Child(tag)) if tag.elem == Elem::Objs => {
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
            let event = self.xml.read_event().map_err(|e| self.xml_fail(e))?;
            match event {
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

    /// Reads a start tag. CLIXML never uses namespace prefixes, so an element with a prefix
    /// is refused outright (whatever it is bound to), and a default namespace may only be
    /// the CLIXML one: this is the (namespace, local name) match without a resolver.
    fn tag(&self, e: &BytesStart<'_>, empty: bool) -> Res<Tag> {
        let qname = e.name();
        let raw_name = qname.as_ref();
        let elem = Elem::from_name(raw_name);
        let other: Option<Box<str>> =
            (elem == Elem::Other).then(|| String::from_utf8_lossy(raw_name).into());
        if elem == Elem::Other && raw_name.contains(&b':') {
            let name = String::from_utf8_lossy(raw_name).into_owned();
            return Err(self.fail(ClixmlErrorKind::UnknownNamespace(name)));
        }
        let mut tag = Tag {
            elem,
            other,
            name: None,
            ref_id: None,
            empty,
        };
        // quick-xml's duplicate check is quadratic bookkeeping we do not need: only the
        // attributes CLIXML reads are checked for duplicates, below.
        let mut seen_xmlns = false;
        for (count, attr) in e.attributes().with_checks(false).enumerate() {
            if count >= self.limits.max_attributes {
                return Err(self.fail(ClixmlErrorKind::TooManyAttributes(
                    self.limits.max_attributes,
                )));
            }
            let attr =
                attr.map_err(|err| self.fail(ClixmlErrorKind::BadAttribute(err.to_string())))?;
            let key = attr.key.as_ref();
            let duplicate = match key {
                b"N" => tag.name.is_some(),
                b"RefId" => tag.ref_id.is_some(),
                b"xmlns" => std::mem::replace(&mut seen_xmlns, true),
                _ => continue,
            };
            if duplicate {
                let key = String::from_utf8_lossy(key);
                return Err(self.fail(ClixmlErrorKind::BadAttribute(format!(
                    "duplicate attribute {key}"
                ))));
            }
            let value = attr
                .unescape_value()
                .map_err(|err| self.fail(ClixmlErrorKind::BadAttribute(err.to_string())))?;
            match key {
                b"N" => tag.name = Some(escape::decode(&value).into_owned()),
                b"RefId" => {
                    let id = value.trim().parse().map_err(|_| {
                        self.fail(ClixmlErrorKind::BadAttribute(format!(
                            "RefId {value:?} is not a number"
                        )))
                    })?;
                    tag.ref_id = Some(id);
                }
                _ if value.as_bytes() == CLIXML_NAMESPACE => {}
                _ => return Err(self.fail(ClixmlErrorKind::UnknownNamespace(tag.raw().to_owned()))),
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
        match tag.elem {
            Elem::Obj => self.object(tag).map(ValueKind::Object),
            Elem::Ref => {
                let id = tag
                    .ref_id
                    .ok_or_else(|| self.fail(ClixmlErrorKind::MissingAttribute("RefId")))?;
                let obj = self
                    .objects
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.fail(ClixmlErrorKind::UnknownRefId(id.to_string())))?;
                self.expect_no_text(tag)?;
                Ok(ValueKind::Object(obj))
            }
            Elem::Nil => {
                self.expect_no_text(tag)?;
                Ok(ValueKind::Nil)
            }
            Elem::Prim(prim) => {
                let text = self.text(tag)?;
                primitive(prim, text).map_err(|kind| self.fail(kind))
            }
            _ => Err(self.fail(ClixmlErrorKind::UnexpectedElement(tag.raw().to_owned()))),
        }
    }

    /// Reads the text content of a primitive element (entities resolved, line ends
    /// normalised as XML requires).
    fn text(&mut self, tag: &Tag) -> Res<String> {
        let mut out = String::new();
        if tag.empty {
            return Ok(out);
        }
        loop {
            let event = self.xml.read_event().map_err(|e| self.xml_fail(e))?;
            match event {
                Event::Text(t) => {
                    let s = t.xml_content().map_err(|e| self.xml_fail(e))?;
                    if out.is_empty() {
                        out = s.into_owned();
                    } else {
                        out.push_str(&s);
                    }
                }
                Event::CData(t) => {
                    let s = t.xml_content().map_err(|e| self.xml_fail(e))?;
                    out.push_str(&s);
                }
                Event::GeneralRef(r) => match r.resolve_char_ref().map_err(|e| self.xml_fail(e))? {
                    Some(c) => out.push(c),
                    None => {
                        let name = r.decode().map_err(|e| self.xml_fail(e))?;
                        let text = quick_xml::escape::resolve_predefined_entity(&name).ok_or_else(
                            || self.fail(ClixmlErrorKind::UnknownEntity(name.to_string())),
                        )?;
                        out.push_str(text);
                    }
                },
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
                self.object_part(&mut obj, child, &mut have_props, &mut have_ms)?;
            }
        }
        let obj = Arc::new(obj);
        if let Some(id) = tag.ref_id {
            if self.objects.insert(id, Arc::clone(&obj)).is_some() {
                return Err(self.fail(ClixmlErrorKind::DuplicateRefId(id.to_string())));
            }
        }
        Ok(obj)
    }

    /// One child of `<Obj>`; errors carry the child's path segment.
    fn object_part(
        &mut self,
        obj: &mut Object,
        child: Tag,
        have_props: &mut bool,
        have_ms: &mut bool,
    ) -> Res<()> {
        let is_section = matches!(
            child.elem,
            Elem::Tn
                | Elem::TnRef
                | Elem::ToString
                | Elem::Props
                | Elem::Ms
                | Elem::List(_)
                | Elem::Dct
        );
        if is_section {
            return self
                .object_section(obj, &child, have_props, have_ms)
                .map_err(|f| within(f, child.segment()));
        }
        if !matches!(obj.content, ObjectContent::None) {
            let f = self.fail(ClixmlErrorKind::DuplicateSection("content"));
            return Err(within(f, child.segment()));
        }
        // A primitive, Obj, Ref or Nil: the wrapped value (value() adds the segment).
        let value = self.value(child)?;
        obj.content = ObjectContent::Primitive(Box::new(value));
        Ok(())
    }

    /// TN, TNRef, ToString, Props, MS, a list or a dictionary inside `<Obj>`.
    fn object_section(
        &mut self,
        obj: &mut Object,
        child: &Tag,
        have_props: &mut bool,
        have_ms: &mut bool,
    ) -> Res<()> {
        let dup = |this: &Self, what| Err(this.fail(ClixmlErrorKind::DuplicateSection(what)));
        match child.elem {
            Elem::Tn | Elem::TnRef if obj.type_names.is_some() => dup(self, "TN"),
            Elem::Tn => {
                self.enter()?;
                let r = self.type_name_list(child);
                self.depth -= 1;
                let names: Arc<[String]> = r?.into();
                if let Some(id) = child.ref_id {
                    self.type_names.insert(id, Arc::clone(&names));
                }
                obj.type_names = Some(names);
                Ok(())
            }
            Elem::TnRef => {
                let id = child
                    .ref_id
                    .ok_or_else(|| self.fail(ClixmlErrorKind::MissingAttribute("RefId")))?;
                let names = self.type_names.get(&id).cloned().ok_or_else(|| {
                    self.fail(ClixmlErrorKind::UnknownTypeNameRef(id.to_string()))
                })?;
                self.expect_no_text(child)?;
                obj.type_names = Some(names);
                Ok(())
            }
            Elem::ToString if obj.to_string.is_some() => dup(self, "ToString"),
            Elem::ToString => {
                let text = self.text(child)?;
                obj.to_string = Some(decode_owned(text));
                Ok(())
            }
            Elem::Props | Elem::Ms => {
                let is_ms = child.elem == Elem::Ms;
                let flag = if is_ms { have_ms } else { have_props };
                if *flag {
                    return dup(self, if is_ms { "MS" } else { "Props" });
                }
                *flag = true;
                self.enter()?;
                let r = self.value_list(child);
                self.depth -= 1;
                let props = r?;
                if is_ms {
                    obj.extended = props;
                } else {
                    obj.adapted = props;
                }
                Ok(())
            }
            _ if !matches!(obj.content, ObjectContent::None) => dup(self, "content"),
            Elem::List(kind) => {
                self.enter()?;
                let r = self.value_list(child);
                self.depth -= 1;
                obj.content = ObjectContent::List(kind, r?);
                Ok(())
            }
            Elem::Dct => {
                self.enter()?;
                let r = self.dict(child);
                self.depth -= 1;
                obj.content = ObjectContent::Dict(r?);
                Ok(())
            }
            _ => Err(self.fail(ClixmlErrorKind::UnexpectedElement(child.raw().to_owned()))),
        }
    }

    fn type_name_list(&mut self, tag: &Tag) -> Res<Vec<String>> {
        let mut names = Vec::new();
        if tag.empty {
            return Ok(names);
        }
        while let Some(Next::Child(child)) = self.next_in_elements(false)? {
            if child.elem != Elem::T {
                return Err(self.fail(ClixmlErrorKind::UnexpectedElement(child.raw().to_owned())));
            }
            let text = self.text(&child)?;
            names.push(decode_owned(text));
        }
        Ok(names)
    }

    fn dict(&mut self, tag: &Tag) -> Res<Vec<(Value, Value)>> {
        let mut entries = Vec::new();
        if tag.empty {
            return Ok(entries);
        }
        while let Some(Next::Child(entry)) = self.next_in_elements(false)? {
            if entry.elem != Elem::En {
                return Err(self.fail(ClixmlErrorKind::UnexpectedElement(entry.raw().to_owned())));
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

/// `_xHHHH_`-decodes an owned string, reusing it when there is nothing to decode.
fn decode_owned(text: String) -> String {
    if text.contains("_x") {
        escape::decode(&text).into_owned()
    } else {
        text
    }
}

fn within(mut fail: Fail, segment: String) -> Fail {
    fail.path.push(segment);
    fail
}

/// Decodes a primitive element's text (MS-PSRP 2.2.5.1).
fn primitive(prim: Prim, text: String) -> Result<ValueKind, ClixmlErrorKind> {
    fn num<T: std::str::FromStr>(element: &'static str, text: &str) -> Result<T, ClixmlErrorKind> {
        text.trim().parse().map_err(|_| invalid(element, text))
    }
    Ok(match prim {
        Prim::S => ValueKind::String(decode_owned(text)),
        Prim::C => ValueKind::Char(num("C", &text)?),
        Prim::B => ValueKind::Bool(match text.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(invalid("B", &text)),
        }),
        Prim::Dt => ValueKind::DateTime(text),
        Prim::Ts => ValueKind::Duration(text),
        Prim::By => ValueKind::U8(num("By", &text)?),
        Prim::Sb => ValueKind::I8(num("SB", &text)?),
        Prim::U16 => ValueKind::U16(num("U16", &text)?),
        Prim::I16 => ValueKind::I16(num("I16", &text)?),
        Prim::U32 => ValueKind::U32(num("U32", &text)?),
        Prim::I32 => ValueKind::I32(num("I32", &text)?),
        Prim::U64 => ValueKind::U64(num("U64", &text)?),
        Prim::I64 => ValueKind::I64(num("I64", &text)?),
        Prim::Sg => ValueKind::Single(float("Sg", &text)?),
        Prim::Db => ValueKind::Double(float("Db", &text)?),
        Prim::D => ValueKind::Decimal(text.trim().to_owned()),
        Prim::Ba => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            ValueKind::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| invalid("BA", &text))?,
            )
        }
        Prim::G => {
            ValueKind::Guid(uuid::Uuid::parse_str(text.trim()).map_err(|_| invalid("G", &text))?)
        }
        Prim::Uri => ValueKind::Uri(decode_owned(text)),
        Prim::Version => ValueKind::Version(text.trim().to_owned()),
        Prim::Xd => ValueKind::XmlDocument(decode_owned(text)),
        Prim::Sbk => ValueKind::ScriptBlock(decode_owned(text)),
        Prim::Ss => ValueKind::SecureString(text.trim().to_owned()),
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
