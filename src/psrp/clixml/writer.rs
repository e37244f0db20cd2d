//! CLIXML writer (MS-PSRP 2.2.5): [`Value`]s → XML text in the form PowerShell and psrpcore
//! read back.
//!
//! Owns the element layout (`<Obj RefId>` with `<TN>`/`<TNRef>`, `<ToString>`, content,
//! `<Props>`, `<MS>`), fresh RefIds, `<Ref>` for an object shared through one `Arc` (so
//! output stays linear in the number of distinct objects) and string escaping. It writes
//! no `<Objs>` wrapper: PSRP message data is bare values.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;

use super::escape;
use super::value::{Object, ObjectContent, Value, ValueKind};

/// Writes one value as CLIXML (e.g. the data of a PSRP message).
pub fn write_clixml(value: &Value) -> String {
    write_clixml_values(std::slice::from_ref(value))
}

/// Writes values one after another; RefIds are shared across them as in one document.
pub fn write_clixml_values(values: &[Value]) -> String {
    let mut w = Writer::default();
    for value in values {
        w.value(value, value.name.as_deref());
    }
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
    objects: HashMap<usize, u32>,
    type_names: HashMap<Vec<String>, u32>,
}

impl Writer {
    fn open(&mut self, tag: &str, name: Option<&str>) {
        self.out.push('<');
        self.out.push_str(tag);
        if let Some(name) = name {
            self.out.push_str(" N=\"");
            self.out
                .push_str(&quick_xml::escape::escape(escape::encode(name).as_ref()));
            self.out.push('"');
        }
    }

    /// `<tag N="...">text</tag>` with the text XML-escaped (not `_x`-encoded).
    fn leaf(&mut self, tag: &str, name: Option<&str>, text: &str) {
        self.open(tag, name);
        if text.is_empty() {
            self.out.push_str(" />");
            return;
        }
        self.out.push('>');
        self.out.push_str(&quick_xml::escape::partial_escape(text));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    fn string_leaf(&mut self, tag: &str, name: Option<&str>, text: &str) {
        let encoded = escape::encode(text);
        self.leaf(tag, name, &encoded);
    }

    fn value(&mut self, value: &Value, name: Option<&str>) {
        match &value.kind {
            ValueKind::Nil => {
                self.open("Nil", name);
                self.out.push_str(" />");
            }
            ValueKind::String(s) => self.string_leaf("S", name, s),
            ValueKind::Char(c) => self.leaf("C", name, &c.to_string()),
            ValueKind::Bool(b) => self.leaf("B", name, if *b { "true" } else { "false" }),
            ValueKind::DateTime(s) => self.leaf("DT", name, s),
            ValueKind::Duration(s) => self.leaf("TS", name, s),
            ValueKind::U8(n) => self.leaf("By", name, &n.to_string()),
            ValueKind::I8(n) => self.leaf("SB", name, &n.to_string()),
            ValueKind::U16(n) => self.leaf("U16", name, &n.to_string()),
            ValueKind::I16(n) => self.leaf("I16", name, &n.to_string()),
            ValueKind::U32(n) => self.leaf("U32", name, &n.to_string()),
            ValueKind::I32(n) => self.leaf("I32", name, &n.to_string()),
            ValueKind::U64(n) => self.leaf("U64", name, &n.to_string()),
            ValueKind::I64(n) => self.leaf("I64", name, &n.to_string()),
            ValueKind::Single(f) => {
                self.leaf("Sg", name, &float_text(f64::from(*f), f.to_string()))
            }
            ValueKind::Double(f) => self.leaf("Db", name, &float_text(*f, f.to_string())),
            ValueKind::Decimal(s) => self.leaf("D", name, s),
            ValueKind::Bytes(b) => {
                let text = base64::engine::general_purpose::STANDARD.encode(b);
                self.leaf("BA", name, &text);
            }
            ValueKind::Guid(g) => self.leaf("G", name, &g.hyphenated().to_string()),
            ValueKind::Uri(s) => self.string_leaf("URI", name, s),
            ValueKind::Version(s) => self.leaf("Version", name, s),
            ValueKind::XmlDocument(s) => self.string_leaf("XD", name, s),
            ValueKind::ScriptBlock(s) => self.string_leaf("SBK", name, s),
            ValueKind::SecureString(s) => self.leaf("SS", name, s),
            ValueKind::Object(obj) => self.object(obj, name),
        }
    }

    fn object(&mut self, obj: &Arc<Object>, name: Option<&str>) {
        let key = Arc::as_ptr(obj) as usize;
        if let Some(id) = self.objects.get(&key).copied() {
            self.open("Ref", name);
            let _ = write!(self.out, " RefId=\"{id}\" />");
            return;
        }
        let id = u32::try_from(self.objects.len()).unwrap_or(u32::MAX);
        self.objects.insert(key, id);
        self.open("Obj", name);
        let _ = write!(self.out, " RefId=\"{id}\">");
        if let Some(names) = &obj.type_names {
            match self.type_names.get(names.as_ref()).copied() {
                Some(tn) => {
                    let _ = write!(self.out, "<TNRef RefId=\"{tn}\" />");
                }
                None => {
                    let tn = u32::try_from(self.type_names.len()).unwrap_or(u32::MAX);
                    self.type_names.insert(names.to_vec(), tn);
                    let _ = write!(self.out, "<TN RefId=\"{tn}\">");
                    for t in names.iter() {
                        self.string_leaf("T", None, t);
                    }
                    self.out.push_str("</TN>");
                }
            }
        }
        if let Some(s) = &obj.to_string {
            self.string_leaf("ToString", None, s);
        }
        match &obj.content {
            ObjectContent::None => {}
            ObjectContent::Primitive(inner) => self.value(inner, inner.name.as_deref()),
            ObjectContent::List(kind, items) => {
                let tag = kind.tag();
                let _ = write!(self.out, "<{tag}>");
                for item in items {
                    self.value(item, item.name.as_deref());
                }
                let _ = write!(self.out, "</{tag}>");
            }
            ObjectContent::Dict(entries) => {
                self.out.push_str("<DCT>");
                for (k, v) in entries {
                    self.out.push_str("<En>");
                    self.value(k, Some("Key"));
                    self.value(v, Some("Value"));
                    self.out.push_str("</En>");
                }
                self.out.push_str("</DCT>");
            }
        }
        for (tag, props) in [("Props", &obj.adapted), ("MS", &obj.extended)] {
            if props.is_empty() {
                continue;
            }
            let _ = write!(self.out, "<{tag}>");
            for p in props {
                self.value(p, p.name.as_deref());
            }
            let _ = write!(self.out, "</{tag}>");
        }
        self.out.push_str("</Obj>");
    }
}

/// .NET spells infinities and NaN `INF`, `-INF`, `NaN`; finite values use Rust's shortest
/// round-trip form, which .NET parses.
fn float_text(f: f64, finite: String) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "INF".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-INF".to_owned()
    } else {
        finite
    }
}
