//! What a pipeline will run: the commands of CREATE_PIPELINE (MS-PSRP 2.2.2.10, 2.2.3.11–13)
//! and the name patterns of GET_COMMAND_METADATA (MS-PSRP 2.2.2.14), in a compact form that
//! policy reads and `hopgate decode` prints as JSON.
//!
//! Owns the object shapes of those two messages. It decides nothing (that is `policy`) and
//! never shows a SecureString's content.
//!
//! Statements: a pipeline's `PowerShell` object holds `Cmds` (the first statement) and, for
//! several statements, `ExtraCmds`: a list of objects each with its own `Cmds`. Real clients
//! repeat the first statement in both places (fixtures test_psrp_multiple_commands.yml,
//! test_psrp_with_jea_configuration.yml), and PowerShell's server and psrpcore run the
//! `ExtraCmds` statements when the list is present, else `Cmds`. So `statements` is the
//! `ExtraCmds` entries when there are any, else `Cmds`; and if `Cmds` is not exactly the
//! first `ExtraCmds` statement, it is put in front as a statement of its own, so that a
//! command can never hide from policy in whichever list the reader would skip. Empty
//! statements are dropped; a pipeline without any command is an error.

use serde::{Serialize, Serializer};

use super::clixml::{parse_clixml, Object, ObjectContent, Value, ValueKind};
use super::error::{PipelineErrorKind, PsrpError};
use super::message::{Message, MessageType};

/// Most nodes an argument read-out may visit in one message (objects may be shared, so
/// this bounds work, not input size).
const MAX_VALUE_NODES: usize = 100_000;
/// Most bytes of text an argument read-out may copy in one message.
const MAX_VALUE_BYTES: usize = 32 * 1024 * 1024;

/// The commands of one pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    /// Statements in order; each is a chain of piped commands.
    pub statements: Vec<Vec<Command>>,
    /// `NoInput` is false: the client will send PIPELINE_INPUT to the first command. A
    /// message without the member (or with a value that is not a boolean) counts as
    /// input, so that policy never assumes less than what can reach the host.
    pub client_input: bool,
}

/// One command of a statement (MS-PSRP 2.2.3.12).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// `Cmd`: a command name, or script text when `is_script`.
    pub name: String,
    /// `IsScript`: `name` is script text the server parses.
    pub is_script: bool,
    /// `Args`, in order.
    pub args: Vec<Arg>,
}

/// One argument (MS-PSRP 2.2.3.13).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arg {
    /// `N`: parameter name, `None` for a positional argument.
    pub name: Option<String>,
    /// `V`: the value.
    pub value: ArgValue,
}

/// An argument value in display form. Serialises to plain JSON for strings, numbers,
/// booleans, null and lists; to a one-key object otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    /// `<Nil/>` (also a switch parameter given without value).
    Null,
    /// `<B>`.
    Bool(bool),
    /// Any signed or small unsigned integer.
    Int(i64),
    /// A `<U64>` above `i64::MAX`.
    UInt(u64),
    /// `<Sg>`, `<Db>`.
    Float(f64),
    /// `<S>`.
    String(String),
    /// `<LST>`, `<IE>`, `<QUE>`, `<STK>`.
    List(Vec<ArgValue>),
    /// `<DCT>` (a hashtable), as `{"dict": [{"key": .., "value": ..}]}`.
    Dict {
        /// The entries in order.
        dict: Vec<DictEntry>,
    },
    /// `<SS>`: encrypted with the session key; shown as `{"secure_string": "<redacted>"}`.
    SecureString {
        /// Always [`Redacted`].
        secure_string: Redacted,
    },
    /// `<SBK>`: script text that may run later.
    ScriptBlock {
        /// The script text.
        script_block: String,
    },
    /// Anything else: its type and `ToString`; primitives without a JSON form (GUID,
    /// DateTime, TimeSpan, Uri, Version, Decimal, Char, XmlDocument, byte[]) use their .NET
    /// type name and text.
    Object {
        /// Most derived type name.
        type_name: Option<String>,
        /// `<ToString>` or the primitive's text.
        to_string: Option<String>,
    },
}

/// One hashtable entry of an [`ArgValue::Dict`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DictEntry {
    /// Key.
    pub key: ArgValue,
    /// Value.
    pub value: ArgValue,
}

/// Stands where a secret was; serialises as the string `"<redacted>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redacted;

impl Serialize for Redacted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

// === impl Pipeline ===

impl Pipeline {
    /// Every command of every statement, in order.
    pub fn commands(&self) -> impl Iterator<Item = &Command> {
        self.statements.iter().flatten()
    }
}

/// Reads the commands of a CREATE_PIPELINE message. See the module doc for how `Cmds` and
/// `ExtraCmds` become statements.
pub fn extract_create_pipeline(msg: &Message) -> Result<Pipeline, PsrpError> {
    let top = top_object(msg, MessageType::CreatePipeline)?;
    let mut budget = Budget::default();
    let ps = object(
        unique_member(&top, "PowerShell", "")?,
        "PowerShell",
        "PowerShell object",
    )?;
    let cmds = statement(
        unique_member(ps, "Cmds", "PowerShell")?,
        "PowerShell.Cmds",
        &mut budget,
    )?;
    let mut statements = Vec::new();
    if let Some(extra) = optional_unique_member(ps, "ExtraCmds", "PowerShell")? {
        if !extra.is_nil() {
            let items = list(extra, "PowerShell.ExtraCmds")?;
            for (i, item) in items.iter().enumerate() {
                let path = format!("PowerShell.ExtraCmds[{i}]");
                let item = object(item, &path, "statement object")?;
                let stmt = statement(
                    unique_member(item, "Cmds", &path)?,
                    &format!("{path}.Cmds"),
                    &mut budget,
                )?;
                statements.push(stmt);
            }
        }
    }
    statements.retain(|s| !s.is_empty());
    if statements.first() != Some(&cmds) && !cmds.is_empty() {
        statements.insert(0, cmds);
    }
    if statements.is_empty() {
        return Err(pipeline_error("PowerShell", PipelineErrorKind::Empty));
    }
    let no_input = optional_unique_member(&top, "NoInput", "")?.and_then(Value::as_bool);
    Ok(Pipeline {
        statements,
        client_input: no_input != Some(true),
    })
}

/// Reads the command-name patterns of a GET_COMMAND_METADATA message (`Name`, a string
/// array of wildcards). An empty result means no name filter (`Name` was null).
pub fn extract_get_command_metadata(msg: &Message) -> Result<Vec<String>, PsrpError> {
    let top = top_object(msg, MessageType::GetCommandMetadata)?;
    let names = unique_member(&top, "Name", "")?;
    if names.is_nil() {
        return Ok(Vec::new());
    }
    if let Some(single) = names.as_str() {
        return Ok(vec![single.to_owned()]);
    }
    list(names, "Name")?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_owned).ok_or_else(|| {
                pipeline_error(
                    &format!("Name[{i}]"),
                    PipelineErrorKind::WrongType("string"),
                )
            })
        })
        .collect()
}

fn top_object(msg: &Message, expected: MessageType) -> Result<std::sync::Arc<Object>, PsrpError> {
    if msg.message_type != expected {
        return Err(PsrpError::UnexpectedMessageType {
            expected,
            found: msg.message_type,
        });
    }
    let mut values = parse_clixml(msg.data_xml()?)?.into_iter();
    let first = values.next();
    if values.next().is_some() {
        // Data after the object might be read by the server in ways we did not check.
        return Err(pipeline_error("", PipelineErrorKind::ExtraValues));
    }
    match first.map(|v| v.kind) {
        Some(ValueKind::Object(obj)) => Ok(obj),
        _ => Err(pipeline_error("", PipelineErrorKind::NoObject)),
    }
}

fn pipeline_error(path: &str, kind: PipelineErrorKind) -> PsrpError {
    PsrpError::Pipeline {
        path: if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
        kind,
    }
}

fn join(parent: &str, member: &str) -> String {
    if parent.is_empty() {
        member.to_owned()
    } else {
        format!("{parent}.{member}")
    }
}

/// The one property named `name`, compared as PowerShell compares member names
/// (case-insensitively); two of them is an error because PowerShell and we might read
/// different copies.
fn optional_unique_member<'a>(
    obj: &'a Object,
    name: &'static str,
    parent: &str,
) -> Result<Option<&'a Value>, PsrpError> {
    let mut found = obj.members_ignore_case(name);
    let first = found.next();
    if found.next().is_some() {
        return Err(pipeline_error(
            parent,
            PipelineErrorKind::DuplicateMember(name.to_owned()),
        ));
    }
    Ok(first)
}

fn unique_member<'a>(
    obj: &'a Object,
    name: &'static str,
    parent: &str,
) -> Result<&'a Value, PsrpError> {
    optional_unique_member(obj, name, parent)?
        .ok_or_else(|| pipeline_error(parent, PipelineErrorKind::MissingMember(name)))
}

fn object<'a>(value: &'a Value, path: &str, what: &'static str) -> Result<&'a Object, PsrpError> {
    value
        .as_object()
        .ok_or_else(|| pipeline_error(path, PipelineErrorKind::WrongType(what)))
}

fn list<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], PsrpError> {
    value
        .as_list()
        .ok_or_else(|| pipeline_error(path, PipelineErrorKind::WrongType("list")))
}

fn statement(value: &Value, path: &str, budget: &mut Budget) -> Result<Vec<Command>, PsrpError> {
    if value.is_nil() {
        return Ok(Vec::new());
    }
    list(value, path)?
        .iter()
        .enumerate()
        .map(|(i, v)| command(v, &format!("{path}[{i}]"), budget))
        .collect()
}

fn command(value: &Value, path: &str, budget: &mut Budget) -> Result<Command, PsrpError> {
    let obj = object(value, path, "command object")?;
    let name = unique_member(obj, "Cmd", path)?.as_str().ok_or_else(|| {
        pipeline_error(&join(path, "Cmd"), PipelineErrorKind::WrongType("string"))
    })?;
    let is_script = unique_member(obj, "IsScript", path)?
        .as_bool()
        .ok_or_else(|| {
            pipeline_error(
                &join(path, "IsScript"),
                PipelineErrorKind::WrongType("boolean"),
            )
        })?;
    let args_value = unique_member(obj, "Args", path)?;
    let mut args = Vec::new();
    if !args_value.is_nil() {
        let args_path = join(path, "Args");
        for (i, a) in list(args_value, &args_path)?.iter().enumerate() {
            let arg_path = format!("{args_path}[{i}]");
            let a = object(a, &arg_path, "argument object")?;
            let n = unique_member(a, "N", &arg_path)?;
            let name = if n.is_nil() {
                None
            } else {
                Some(n.as_str().map(str::to_owned).ok_or_else(|| {
                    pipeline_error(
                        &join(&arg_path, "N"),
                        PipelineErrorKind::WrongType("string or null"),
                    )
                })?)
            };
            let v = unique_member(a, "V", &arg_path)?;
            let value =
                arg_value(v, budget).map_err(|kind| pipeline_error(&join(&arg_path, "V"), kind))?;
            args.push(Arg { name, value });
        }
    }
    Ok(Command {
        name: name.to_owned(),
        is_script,
        args,
    })
}

/// Bounds the read-out of argument values: shared objects can be reached many times.
#[derive(Debug)]
struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            nodes: MAX_VALUE_NODES,
            bytes: MAX_VALUE_BYTES,
        }
    }
}

impl Budget {
    fn take(&mut self, bytes: usize) -> Result<(), PipelineErrorKind> {
        if self.nodes == 0 || self.bytes < bytes {
            return Err(PipelineErrorKind::ValueTooComplex(MAX_VALUE_NODES));
        }
        self.nodes -= 1;
        self.bytes -= bytes;
        Ok(())
    }

    fn text(&mut self, s: &str) -> Result<String, PipelineErrorKind> {
        self.take(s.len())?;
        Ok(s.to_owned())
    }
}

fn typed(
    budget: &mut Budget,
    type_name: &str,
    text: String,
) -> Result<ArgValue, PipelineErrorKind> {
    budget.take(text.len())?;
    Ok(ArgValue::Object {
        type_name: Some(type_name.to_owned()),
        to_string: Some(text),
    })
}

/// Display form of one argument value.
fn arg_value(value: &Value, budget: &mut Budget) -> Result<ArgValue, PipelineErrorKind> {
    let int = |b: &mut Budget, n: i64| b.take(0).map(|()| ArgValue::Int(n));
    match &value.kind {
        ValueKind::Nil => budget.take(0).map(|()| ArgValue::Null),
        ValueKind::Bool(b) => budget.take(0).map(|()| ArgValue::Bool(*b)),
        ValueKind::String(s) => budget.text(s).map(ArgValue::String),
        ValueKind::U8(n) => int(budget, i64::from(*n)),
        ValueKind::I8(n) => int(budget, i64::from(*n)),
        ValueKind::U16(n) => int(budget, i64::from(*n)),
        ValueKind::I16(n) => int(budget, i64::from(*n)),
        ValueKind::U32(n) => int(budget, i64::from(*n)),
        ValueKind::I32(n) => int(budget, i64::from(*n)),
        ValueKind::I64(n) => int(budget, *n),
        ValueKind::U64(n) => budget
            .take(0)
            .map(|()| i64::try_from(*n).map_or(ArgValue::UInt(*n), ArgValue::Int)),
        ValueKind::Single(f) => budget.take(0).map(|()| ArgValue::Float(f64::from(*f))),
        ValueKind::Double(f) => budget.take(0).map(|()| ArgValue::Float(*f)),
        ValueKind::SecureString(_) => budget.take(0).map(|()| ArgValue::SecureString {
            secure_string: Redacted,
        }),
        ValueKind::ScriptBlock(s) => budget
            .text(s)
            .map(|script_block| ArgValue::ScriptBlock { script_block }),
        ValueKind::Char(c) => {
            let text = char::decode_utf16([*c])
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            typed(budget, "System.Char", text)
        }
        ValueKind::DateTime(s) => typed(budget, "System.DateTime", s.clone()),
        ValueKind::Duration(s) => typed(budget, "System.TimeSpan", s.clone()),
        ValueKind::Decimal(s) => typed(budget, "System.Decimal", s.clone()),
        ValueKind::Bytes(b) => {
            use base64::Engine as _;
            typed(
                budget,
                "System.Byte[]",
                base64::engine::general_purpose::STANDARD.encode(b),
            )
        }
        ValueKind::Guid(g) => typed(budget, "System.Guid", g.hyphenated().to_string()),
        ValueKind::Uri(s) => typed(budget, "System.Uri", s.clone()),
        ValueKind::Version(s) => typed(budget, "System.Version", s.clone()),
        ValueKind::XmlDocument(s) => typed(budget, "System.Xml.XmlDocument", s.clone()),
        ValueKind::Object(obj) => object_value(obj, budget),
    }
}

fn object_value(obj: &Object, budget: &mut Budget) -> Result<ArgValue, PipelineErrorKind> {
    match &obj.content {
        ObjectContent::List(_, items) => {
            budget.take(0)?;
            items
                .iter()
                .map(|v| arg_value(v, budget))
                .collect::<Result<_, _>>()
                .map(ArgValue::List)
        }
        ObjectContent::Dict(entries) => {
            budget.take(0)?;
            entries
                .iter()
                .map(|(k, v)| {
                    Ok(DictEntry {
                        key: arg_value(k, budget)?,
                        value: arg_value(v, budget)?,
                    })
                })
                .collect::<Result<_, _>>()
                .map(|dict| ArgValue::Dict { dict })
        }
        // An enum: its type and its name (ToString), not the number.
        ObjectContent::Primitive(_) if obj.to_string.is_some() && is_enum_like(obj) => {
            Ok(ArgValue::Object {
                type_name: obj.type_name().map(str::to_owned),
                to_string: obj
                    .to_string
                    .as_deref()
                    .map(|s| budget.text(s))
                    .transpose()?,
            })
        }
        // An extended primitive (a string with notes...): the primitive itself.
        ObjectContent::Primitive(inner) => arg_value(inner, budget),
        ObjectContent::None => {
            let type_name = obj.type_name().map(|s| budget.text(s)).transpose()?;
            let to_string = obj
                .to_string
                .as_deref()
                .map(|s| budget.text(s))
                .transpose()?;
            Ok(ArgValue::Object {
                type_name,
                to_string,
            })
        }
    }
}

/// Enums are an integer inside an object typed `System.Enum` (MS-PSRP 2.2.5.2.3).
fn is_enum_like(obj: &Object) -> bool {
    obj.type_names
        .as_ref()
        .is_some_and(|names| names.iter().any(|n| n == "System.Enum"))
}
