//! The CLIXML value model (MS-PSRP 2.2.5): primitives, objects with type names, adapted and
//! extended properties, lists and dictionaries.
//!
//! Owns only data and read-only accessors. References (`<Ref>`, `<TNRef>`) are already
//! resolved: a referenced object is shared through an [`Arc`], so a hostile document cannot
//! blow up memory through references. Code that walks values recursively must still bound
//! its work, because shared objects can be reached many times.

use std::sync::Arc;

use uuid::Uuid;

/// One CLIXML value and the `N` (name) attribute it had, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// The decoded `N` attribute: a property name inside `<Props>`/`<MS>`, `Key`/`Value`
    /// inside a dictionary entry.
    pub name: Option<String>,
    /// The value.
    pub kind: ValueKind,
}

/// A CLIXML value without its name. Variant docs give the element (MS-PSRP 2.2.5.1).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// `<Nil/>`: null.
    Nil,
    /// `<S>`: string, `_xHHHH_` escapes decoded.
    String(String),
    /// `<C>`: a UTF-16 code unit.
    Char(u16),
    /// `<B>`: boolean.
    Bool(bool),
    /// `<DT>`: date and time, kept as its XML text.
    DateTime(String),
    /// `<TS>`: duration, kept as its XML text (`PT9.0269026S`).
    Duration(String),
    /// `<By>`: unsigned byte.
    U8(u8),
    /// `<SB>`: signed byte.
    I8(i8),
    /// `<U16>`.
    U16(u16),
    /// `<I16>`.
    I16(i16),
    /// `<U32>`.
    U32(u32),
    /// `<I32>`.
    I32(i32),
    /// `<U64>`.
    U64(u64),
    /// `<I64>`.
    I64(i64),
    /// `<Sg>`: single-precision float.
    Single(f32),
    /// `<Db>`: double-precision float.
    Double(f64),
    /// `<D>`: decimal, kept as its XML text.
    Decimal(String),
    /// `<BA>`: byte array (base64 in XML).
    Bytes(Vec<u8>),
    /// `<G>`: GUID.
    Guid(Uuid),
    /// `<URI>`.
    Uri(String),
    /// `<Version>`, kept as its text (`2.3`, `10.0.17763.1`).
    Version(String),
    /// `<XD>`: XML document text.
    XmlDocument(String),
    /// `<SBK>`: script block text.
    ScriptBlock(String),
    /// `<SS>`: secure string, kept opaque as its base64 text (encrypted with the session
    /// key, MS-PSRP 2.2.5.1.24).
    SecureString(String),
    /// `<Obj>` (or a resolved `<Ref>` to one).
    Object(Arc<Object>),
}

/// A complex object (MS-PSRP 2.2.5.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    /// Type names from `<TN>` or a resolved `<TNRef>`, most derived first.
    pub type_names: Option<Arc<[String]>>,
    /// `<ToString>`.
    pub to_string: Option<String>,
    /// What the object wraps: a primitive (enums, extended primitives), a list or a
    /// dictionary.
    pub content: ObjectContent,
    /// `<Props>`: adapted properties.
    pub adapted: Vec<Value>,
    /// `<MS>`: extended properties (member set).
    pub extended: Vec<Value>,
}

// === impl Drop for Object ===

impl Drop for Object {
    /// Iterative. `<Ref>`s make chains cheap to write (each object referring to the one
    /// before); dropped recursively, the last link would free the whole chain one set of
    /// stack frames per link, and 30,000 links overflow a runtime thread's stack and abort
    /// the gateway (issue #14). Children are moved to a heap stack instead; an object only
    /// this value held is emptied there before it drops, so its own drop recurses no further.
    fn drop(&mut self) {
        let mut stack: Vec<Value> = Vec::new();
        take_children(self, &mut stack);
        while let Some(value) = stack.pop() {
            if let ValueKind::Object(shared) = value.kind {
                if let Some(mut object) = Arc::into_inner(shared) {
                    take_children(&mut object, &mut stack);
                }
            }
        }
    }
}

/// Moves `object`'s property and content values to `out`, leaving it without children.
fn take_children(object: &mut Object, out: &mut Vec<Value>) {
    out.append(&mut object.adapted);
    out.append(&mut object.extended);
    match std::mem::take(&mut object.content) {
        ObjectContent::None => {}
        ObjectContent::Primitive(value) => out.push(*value),
        ObjectContent::List(_, items) => out.extend(items),
        ObjectContent::Dict(entries) => {
            for (key, value) in entries {
                out.push(key);
                out.push(value);
            }
        }
    }
}

/// The content of an object besides its properties.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ObjectContent {
    /// Only properties.
    #[default]
    None,
    /// A primitive value: the number of an enum (`<I32>` + `TN` of the enum type), or the
    /// value of an extended primitive.
    Primitive(Box<Value>),
    /// `<LST>`, `<IE>`, `<QUE>` or `<STK>`.
    List(ListKind, Vec<Value>),
    /// `<DCT>`: `<En>` entries of `Key` and `Value`.
    Dict(Vec<(Value, Value)>),
}

/// Which collection element held a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `<LST>`: list.
    List,
    /// `<IE>`: enumerable.
    Enumerable,
    /// `<QUE>`: queue.
    Queue,
    /// `<STK>`: stack.
    Stack,
}

impl ListKind {
    /// The element name.
    pub fn tag(self) -> &'static str {
        match self {
            ListKind::List => "LST",
            ListKind::Enumerable => "IE",
            ListKind::Queue => "QUE",
            ListKind::Stack => "STK",
        }
    }
}

// === impl Value ===

impl Value {
    /// An unnamed value.
    pub fn new(kind: ValueKind) -> Self {
        Self { name: None, kind }
    }

    /// A named value (a property or dictionary part).
    pub fn named(name: impl Into<String>, kind: ValueKind) -> Self {
        Self {
            name: Some(name.into()),
            kind,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object> {
        match &self.kind {
            ValueKind::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The primitive behind this value: itself, or an object's primitive content
    /// (an extended primitive or an enum), followed once.
    pub fn primitive(&self) -> &ValueKind {
        match &self.kind {
            ValueKind::Object(o) => match &o.content {
                ObjectContent::Primitive(inner) => match &inner.kind {
                    ValueKind::Object(_) => &self.kind,
                    kind => kind,
                },
                _ => &self.kind,
            },
            kind => kind,
        }
    }

    /// The string, for `<S>` or an object wrapping one.
    pub fn as_str(&self) -> Option<&str> {
        match self.primitive() {
            ValueKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, for `<B>` or an object wrapping one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.primitive() {
            ValueKind::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// True for `<Nil/>`.
    pub fn is_nil(&self) -> bool {
        matches!(self.kind, ValueKind::Nil)
    }

    /// The items, for an object holding a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match &self.as_object()?.content {
            ObjectContent::List(_, items) => Some(items),
            _ => None,
        }
    }
}

// === impl Object ===

impl Object {
    /// The most derived type name.
    pub fn type_name(&self) -> Option<&str> {
        self.type_names.as_ref()?.first().map(String::as_str)
    }

    /// Every property (extended then adapted) named `name`.
    pub fn members<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.extended
            .iter()
            .chain(self.adapted.iter())
            .filter(move |v| v.name.as_deref() == Some(name))
    }

    /// Every property whose name equals `name` the way PowerShell compares member names
    /// (.NET `OrdinalIgnoreCase`: per-character invariant upper case), extended then
    /// adapted. PowerShell finds `Cmds` under `N="cmds"` too, so policy-relevant lookups
    /// must use this.
    pub fn members_ignore_case<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.extended
            .iter()
            .chain(self.adapted.iter())
            .filter(move |v| v.name.as_deref().is_some_and(|n| eq_ignore_case(n, name)))
    }

    /// The first property named `name` (extended properties first).
    pub fn member<'a>(&'a self, name: &'a str) -> Option<&'a Value> {
        self.members(name).next()
    }
}

/// .NET `OrdinalIgnoreCase` equality: characters compared after a one-to-one invariant
/// upper-case mapping (a character whose upper case is several characters maps to itself).
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    fn upper(c: char) -> char {
        let mut up = c.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    }
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    let mut a = a.chars();
    let mut b = b.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y || upper(x) == upper(y) => {}
            _ => return false,
        }
    }
}
