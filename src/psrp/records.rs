//! What a host's PSRP messages say, as text: pipeline output objects, error, warning,
//! verbose, debug and information records, and pipeline state changes (MS-PSRP 2.2.2.20–
//! 2.2.2.24, 2.2.2.26, 2.2.3.4). The audit trail records this text; it is what a person
//! reading a transcript needs, not a re-serialization of the objects.
//!
//! Text is what PowerShell's own `ToString()` gave (the `<ToString>` every serialized object
//! carries), falling back to the record's message member or a primitive's value. Rendering
//! walks values with a node and byte budget: objects may be shared through references, so a
//! small hostile message could otherwise expand into a huge text.
//!
//! Pure: no I/O; callers feed messages that a [`super::Defragmenter`] reassembled from the
//! host→client direction.

use uuid::Uuid;

use super::clixml::{parse_clixml, ObjectContent, Value, ValueKind};
use super::error::PsrpError;
use super::message::{Message, MessageType};

/// Most values one rendering visits (shared objects count every time they are reached).
const MAX_NODES: usize = 10_000;

/// The stream a host record belongs to, named as PowerShell names its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordStream {
    /// PIPELINE_OUTPUT: an output object.
    Output,
    /// ERROR_RECORD.
    Error,
    /// WARNING_RECORD.
    Warning,
    /// VERBOSE_RECORD.
    Verbose,
    /// DEBUG_RECORD.
    Debug,
    /// INFORMATION_RECORD (Write-Host and Write-Information).
    Information,
}

impl RecordStream {
    /// Lower-case name as written in audit events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Output => "output",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Verbose => "verbose",
            Self::Debug => "debug",
            Self::Information => "information",
        }
    }
}

/// A pipeline's state as the host reports it (MS-PSRP 2.2.3.4 PSInvocationState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationState {
    NotStarted,
    Running,
    Stopping,
    Stopped,
    Completed,
    Failed,
    Disconnected,
    /// A value outside the enumeration.
    Other(i32),
}

impl InvocationState {
    fn from_i32(v: i32) -> Self {
        match v {
            0 => Self::NotStarted,
            1 => Self::Running,
            2 => Self::Stopping,
            3 => Self::Stopped,
            4 => Self::Completed,
            5 => Self::Failed,
            6 => Self::Disconnected,
            other => Self::Other(other),
        }
    }

    /// True for the states after which the pipeline produces nothing more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Completed | Self::Failed)
    }

    /// PowerShell's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "NotStarted",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Stopped => "Stopped",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Disconnected => "Disconnected",
            Self::Other(_) => "Unknown",
        }
    }
}

/// One thing a host message says about a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum HostEvent {
    /// An object or record, as text.
    Record {
        /// The pipeline it belongs to (absent for pool-level messages).
        pipeline: Option<Uuid>,
        stream: RecordStream,
        text: String,
        /// True when the text was cut to the caller's cap.
        truncated: bool,
    },
    /// The pipeline changed state; a failure carries its error's text.
    State {
        pipeline: Option<Uuid>,
        state: InvocationState,
        error: Option<String>,
    },
}

/// Reads one host→client message; `Ok(None)` for messages that are not pipeline output
/// (pool state, host calls, progress, key exchange). `max_text` caps each text in bytes.
pub fn read_host_message(msg: &Message, max_text: usize) -> Result<Option<HostEvent>, PsrpError> {
    let stream = match msg.message_type {
        MessageType::PipelineOutput => RecordStream::Output,
        MessageType::ErrorRecord => RecordStream::Error,
        MessageType::WarningRecord => RecordStream::Warning,
        MessageType::VerboseRecord => RecordStream::Verbose,
        MessageType::DebugRecord => RecordStream::Debug,
        MessageType::InformationRecord => RecordStream::Information,
        MessageType::PipelineState => return read_state(msg, max_text).map(Some),
        _ => return Ok(None),
    };
    let values = parse_clixml(msg.data_xml()?)?;
    let mut out = Text::new(max_text);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push("\n");
        }
        match stream {
            RecordStream::Output => out.value(v),
            RecordStream::Error => error_text(v, &mut out),
            RecordStream::Information => information_text(v, &mut out),
            _ => informational_text(v, &mut out),
        }
    }
    let (text, truncated) = out.finish();
    Ok(Some(HostEvent::Record {
        pipeline: msg.pipeline_id(),
        stream,
        text,
        truncated,
    }))
}

/// The objects of a client's PIPELINE_INPUT message as text (as output objects are
/// rendered), cut to `max_text` bytes; the flag says whether it was cut.
pub fn read_input_text(msg: &Message, max_text: usize) -> Result<(String, bool), PsrpError> {
    let values = parse_clixml(msg.data_xml()?)?;
    let mut out = Text::new(max_text);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push("\n");
        }
        out.value(v);
    }
    Ok(out.finish())
}

fn read_state(msg: &Message, max_text: usize) -> Result<HostEvent, PsrpError> {
    let values = parse_clixml(msg.data_xml()?)?;
    let obj = values.first().and_then(Value::as_object);
    let state = obj
        .and_then(|o| o.member("PipelineState"))
        .and_then(|v| match v.primitive() {
            ValueKind::I32(n) => Some(*n),
            _ => None,
        })
        .map_or(InvocationState::Other(-1), InvocationState::from_i32);
    let error = obj
        .and_then(|o| o.member("ExceptionAsErrorRecord"))
        .filter(|v| !v.is_nil())
        .map(|v| {
            let mut out = Text::new(max_text);
            error_text(v, &mut out);
            out.finish().0
        });
    Ok(HostEvent::State {
        pipeline: msg.pipeline_id(),
        state,
        error,
    })
}

/// ErrorRecord (MS-PSRP 2.2.3.15): its ToString is the message PowerShell prints.
fn error_text(v: &Value, out: &mut Text) {
    let Some(obj) = v.as_object() else {
        return out.value(v);
    };
    if let Some(s) = &obj.to_string {
        return out.push(s);
    }
    let message = obj
        .member("ErrorDetails_Message")
        .filter(|m| !m.is_nil())
        .or_else(|| {
            obj.member("Exception")
                .and_then(Value::as_object)
                .and_then(|e| e.member("Message"))
        });
    match message {
        Some(m) => out.value(m),
        None => out.value(v),
    }
}

/// Warning, verbose and debug records (InformationalRecord, MS-PSRP 2.2.3.16).
fn informational_text(v: &Value, out: &mut Text) {
    match v
        .as_object()
        .and_then(|o| o.member("InformationalRecord_Message"))
    {
        Some(m) => out.value(m),
        None => out.value(v),
    }
}

/// InformationRecord: the data written (Write-Host's text is its MessageData).
fn information_text(v: &Value, out: &mut Text) {
    match v.as_object().and_then(|o| o.member("MessageData")) {
        Some(m) => out.value(m),
        None => out.value(v),
    }
}

/// Text under construction, with the caller's byte cap and the node budget.
struct Text {
    buf: String,
    cap: usize,
    nodes: usize,
    truncated: bool,
}

impl Text {
    fn new(cap: usize) -> Self {
        Self {
            buf: String::new(),
            cap,
            nodes: 0,
            truncated: false,
        }
    }

    fn finish(self) -> (String, bool) {
        (self.buf, self.truncated)
    }

    fn push(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        let room = self.cap.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return;
        }
        let mut end = room;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf.push_str(s.get(..end).unwrap_or_default());
        self.truncated = true;
    }

    /// One value as PowerShell's ToString would show it.
    fn value(&mut self, v: &Value) {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.truncated = true;
            return;
        }
        match &v.kind {
            ValueKind::Object(obj) => {
                if let Some(s) = &obj.to_string {
                    return self.push(s);
                }
                match &obj.content {
                    ObjectContent::Primitive(inner) => self.value(inner),
                    ObjectContent::List(_, items) => {
                        for (i, item) in items.iter().enumerate() {
                            if i > 0 {
                                self.push("\n");
                            }
                            self.value(item);
                        }
                    }
                    ObjectContent::Dict(entries) => {
                        for (i, (k, val)) in entries.iter().enumerate() {
                            if i > 0 {
                                self.push("\n");
                            }
                            self.value(k);
                            self.push(" = ");
                            self.value(val);
                        }
                    }
                    ObjectContent::None => {
                        let name = obj
                            .type_name()
                            .unwrap_or("System.Management.Automation.PSObject");
                        self.push(name);
                    }
                }
            }
            kind => self.primitive(kind),
        }
    }

    fn primitive(&mut self, kind: &ValueKind) {
        let s = match kind {
            ValueKind::Nil => return,
            ValueKind::String(s)
            | ValueKind::DateTime(s)
            | ValueKind::Duration(s)
            | ValueKind::Decimal(s)
            | ValueKind::Uri(s)
            | ValueKind::Version(s)
            | ValueKind::XmlDocument(s)
            | ValueKind::ScriptBlock(s) => return self.push(s),
            // PowerShell shows a SecureString by its type, never its content.
            ValueKind::SecureString(_) => "System.Security.SecureString".to_string(),
            ValueKind::Char(c) => char::from_u32(u32::from(*c))
                .unwrap_or(char::REPLACEMENT_CHARACTER)
                .to_string(),
            ValueKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            ValueKind::U8(n) => n.to_string(),
            ValueKind::I8(n) => n.to_string(),
            ValueKind::U16(n) => n.to_string(),
            ValueKind::I16(n) => n.to_string(),
            ValueKind::U32(n) => n.to_string(),
            ValueKind::I32(n) => n.to_string(),
            ValueKind::U64(n) => n.to_string(),
            ValueKind::I64(n) => n.to_string(),
            ValueKind::Single(n) => n.to_string(),
            ValueKind::Double(n) => n.to_string(),
            ValueKind::Bytes(b) => format!("[{} bytes]", b.len()),
            ValueKind::Guid(g) => g.hyphenated().to_string(),
            ValueKind::Object(_) => return,
        };
        self.push(&s);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::psrp::Destination;

    fn msg(t: MessageType, xml: &str) -> Message {
        Message {
            destination: Destination::Client,
            message_type: t,
            rpid: Uuid::nil(),
            pid: Uuid::from_u128(7),
            data: xml.as_bytes().to_vec(),
        }
    }

    fn record(t: MessageType, xml: &str, cap: usize) -> (RecordStream, String, bool) {
        match read_host_message(&msg(t, xml), cap).unwrap() {
            Some(HostEvent::Record {
                stream,
                text,
                truncated,
                pipeline,
            }) => {
                assert_eq!(pipeline, Some(Uuid::from_u128(7)));
                (stream, text, truncated)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn output_primitives_and_objects_read_as_powershell_prints_them() {
        let (s, t, _) = record(MessageType::PipelineOutput, "<S>hello_x000A_</S>", 100);
        assert_eq!((s, t.as_str()), (RecordStream::Output, "hello\n"));
        let (_, t, _) = record(MessageType::PipelineOutput, "<I32>42</I32>", 100);
        assert_eq!(t, "42");
        let (_, t, _) = record(MessageType::PipelineOutput, "<B>true</B>", 100);
        assert_eq!(t, "True");
        let svc = r#"<Obj RefId="0"><TN RefId="0"><T>System.ServiceProcess.ServiceController</T><T>System.Object</T></TN><ToString>System.ServiceProcess.ServiceController</ToString><Props><S N="Name">Spooler</S></Props></Obj>"#;
        let (_, t, _) = record(MessageType::PipelineOutput, svc, 100);
        assert_eq!(t, "System.ServiceProcess.ServiceController");
        let list = r#"<Obj RefId="0"><LST><S>a</S><I32>1</I32></LST></Obj>"#;
        let (_, t, _) = record(MessageType::PipelineOutput, list, 100);
        assert_eq!(t, "a\n1");
    }

    #[test]
    fn records_use_their_message() {
        let warn = r#"<Obj RefId="0"><TN RefId="0"><T>System.Management.Automation.WarningRecord</T></TN><ToString>careful</ToString><MS><S N="InformationalRecord_Message">careful</S><B N="InformationalRecord_SerializeInvocationInfo">false</B></MS></Obj>"#;
        assert_eq!(
            record(MessageType::WarningRecord, warn, 100).0,
            RecordStream::Warning
        );
        assert_eq!(record(MessageType::WarningRecord, warn, 100).1, "careful");
        let info = r#"<Obj RefId="0"><MS><Obj N="MessageData" RefId="1"><TN RefId="1"><T>System.Management.Automation.HostInformationMessage</T></TN><ToString>from write-host</ToString><Props><S N="Message">from write-host</S></Props></Obj><S N="Source">Write-Host</S></MS></Obj>"#;
        assert_eq!(
            record(MessageType::InformationRecord, info, 100).1,
            "from write-host"
        );
        // An error record without ToString falls back to its exception's message.
        let err = r#"<Obj RefId="0"><MS><Obj N="Exception" RefId="1"><Props><S N="Message">no such thing</S></Props></Obj><Nil N="ErrorDetails_Message"/></MS></Obj>"#;
        assert_eq!(
            record(MessageType::ErrorRecord, err, 100).1,
            "no such thing"
        );
    }

    #[test]
    fn text_is_capped_on_a_character_boundary() {
        let (_, t, cut) = record(MessageType::PipelineOutput, "<S>ééééé</S>", 5);
        assert_eq!((t.as_str(), cut), ("éé", true));
    }

    #[test]
    fn a_huge_value_stops_at_the_node_budget() {
        // 200 lists of 100 strings: more values than one rendering may visit.
        let mut xml = String::from(r#"<Obj RefId="0"><LST>"#);
        for i in 0..200 {
            xml.push_str(&format!(r#"<Obj RefId="{}"><LST>"#, i + 1));
            for _ in 0..100 {
                xml.push_str("<S>x</S>");
            }
            xml.push_str("</LST></Obj>");
        }
        xml.push_str("</LST></Obj>");
        let (_, t, cut) = record(MessageType::PipelineOutput, &xml, usize::MAX);
        assert!(cut);
        assert!(t.len() <= 2 * MAX_NODES, "{}", t.len());
    }

    #[test]
    fn pipeline_state_reads_state_and_failure() {
        let xml = r#"<Obj RefId="0"><MS><I32 N="PipelineState">5</I32><Obj N="ExceptionAsErrorRecord" RefId="1"><ToString>The pipeline has been stopped.</ToString></Obj></MS></Obj>"#;
        let ev = read_host_message(&msg(MessageType::PipelineState, xml), 100).unwrap();
        assert_eq!(
            ev,
            Some(HostEvent::State {
                pipeline: Some(Uuid::from_u128(7)),
                state: InvocationState::Failed,
                error: Some("The pipeline has been stopped.".into()),
            })
        );
        assert!(InvocationState::Failed.is_final());
    }

    #[test]
    fn other_messages_are_not_records() {
        let m = msg(MessageType::RunspacePoolState, "<Obj RefId=\"0\"/>");
        assert_eq!(read_host_message(&m, 10).unwrap(), None);
    }
}
