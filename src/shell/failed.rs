//! A denied PSRP pipeline, answered by the gateway as a pipeline that failed.
//!
//! A WS-Man fault on a Command ends a PowerShell client's whole session ("Failed to send
//! CreatePipeline"); a JEA endpoint instead lets the pipeline fail inside PSRP and the
//! runspace pool stays open. The gateway does the same: it answers the Command itself, and
//! the client's Receive for that CommandId with what Windows sends for a failed pipeline
//! (shape copied from the corpus, `test_psrp_with_jea_configuration.yml`): one
//! PIPELINE_STATE message (MS-PSRP 2.2.2.21) with `PipelineState` 5 (Failed) and an
//! `ExceptionAsErrorRecord` (MS-PSRP 2.2.3.15), then `CommandState Done`. Nothing of the
//! pipeline ever reaches the host. Pure: the caller passes every id in.

use std::sync::Arc;

use uuid::Uuid;

use crate::psrp::clixml::{write_clixml, Object, ObjectContent, Value, ValueKind};
use crate::psrp::{fragment_message, Destination, Message, MessageType};
use crate::wsman::{self, Action, Body, CommandState, CommandStateKind, Envelope, Stream};

/// `FullyQualifiedErrorId` of the gateway's error record: names hopgate, so scripts can
/// tell a gateway denial from the host's own errors.
pub const DENIED_ERROR_ID: &str = "HopgateDenied";
/// PSInvocationState Failed (MS-PSRP 2.2.3.4).
const FAILED: i32 = 5;
/// ErrorCategory PermissionDenied (System.Management.Automation.ErrorCategory).
const PERMISSION_DENIED: i32 = 18;
/// E_ACCESSDENIED, the HResult of System.UnauthorizedAccessException.
const E_ACCESSDENIED: i32 = -2_147_024_891;
/// Longest message or target text put into the record; a policy reason can quote a long
/// script, and the client does not need all of it to know what was refused.
const MAX_TEXT: usize = 4096;
/// Windows starts server→client message data with a UTF-8 BOM (PROTOCOL.md §5).
const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];
/// Largest fragment built here; the message is far smaller (texts are capped).
const MAX_FRAGMENT: usize = 32 * 1024;

/// A pipeline the gateway refused and answers for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeniedPipeline {
    /// The CommandId the client knows the pipeline by (its own choice, echoed).
    pub(crate) command_id: String,
    /// Runspace pool and pipeline ids from the client's CREATE_PIPELINE header.
    pub(crate) rpid: Uuid,
    pub(crate) pid: Uuid,
    /// What the client is told (already scrubbed of secrets).
    pub(crate) message: String,
    /// The refused command, as the error record's target (already redacted).
    pub(crate) target: String,
    /// Whether the failed state has been sent; later Receives only repeat `Done`.
    pub(crate) answered: bool,
}

/// The CLIXML of a PIPELINE_STATE Failed whose error record carries `message`.
pub(crate) fn failed_state_xml(message: &str, target: &str) -> String {
    let message = cut(message);
    let target = cut(target);
    let s = |name: &str, text: &str| Value::named(name, ValueKind::String(text.to_string()));
    let i32v = |name: &str, n: i32| Value::named(name, ValueKind::I32(n));
    let nil = |name: &str| Value::named(name, ValueKind::Nil);
    let types = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Arc<[_]>>());
    let exception = Object {
        type_names: types(&[
            "System.UnauthorizedAccessException",
            "System.SystemException",
            "System.Exception",
            "System.Object",
        ]),
        to_string: Some(format!("System.UnauthorizedAccessException: {message}")),
        adapted: vec![
            s("Message", message),
            nil("Data"),
            nil("InnerException"),
            nil("TargetSite"),
            nil("StackTrace"),
            nil("HelpLink"),
            s("Source", "hopgate"),
            i32v("HResult", E_ACCESSDENIED),
        ],
        // Every field named: Object's iterative Drop forbids `..Object::default()`.
        content: ObjectContent::None,
        extended: Vec::new(),
    };
    let record = Object {
        type_names: types(&["System.Management.Automation.ErrorRecord", "System.Object"]),
        to_string: Some(message.to_string()),
        extended: vec![
            Value::named("Exception", ValueKind::Object(Arc::new(exception))),
            s("TargetObject", target),
            s("FullyQualifiedErrorId", DENIED_ERROR_ID),
            nil("InvocationInfo"),
            i32v("ErrorCategory_Category", PERMISSION_DENIED),
            s("ErrorCategory_Activity", ""),
            s("ErrorCategory_Reason", "UnauthorizedAccessException"),
            s("ErrorCategory_TargetName", target),
            s("ErrorCategory_TargetType", "String"),
            s(
                "ErrorCategory_Message",
                &format!(
                    "PermissionDenied: ({}:String) [], UnauthorizedAccessException",
                    short(target)
                ),
            ),
            Value::named("SerializeExtendedInfo", ValueKind::Bool(false)),
        ],
        content: ObjectContent::None,
        adapted: Vec::new(),
    };
    let state = Object {
        extended: vec![
            i32v("PipelineState", FAILED),
            Value::named(
                "ExceptionAsErrorRecord",
                ValueKind::Object(Arc::new(record)),
            ),
        ],
        type_names: None,
        to_string: None,
        content: ObjectContent::None,
        adapted: Vec::new(),
    };
    write_clixml(&Value::new(ValueKind::Object(Arc::new(state))))
}

/// The fragment bytes (one `rsp:Stream`'s data) of the failed state of `denied`, as
/// object `object_id` of the host→client direction.
pub(crate) fn failed_state_fragments(denied: &DeniedPipeline, object_id: u64) -> Vec<u8> {
    let mut data = BOM.to_vec();
    data.extend_from_slice(failed_state_xml(&denied.message, &denied.target).as_bytes());
    let message = Message {
        destination: Destination::Client,
        message_type: MessageType::PipelineState,
        rpid: denied.rpid,
        pid: denied.pid,
        data,
    };
    let mut out = Vec::new();
    for f in fragment_message(object_id, &message.to_bytes(), MAX_FRAGMENT) {
        // Writing a fragment we just cut into a Vec cannot fail (blobs are far below
        // u32::MAX); should it, the client gets `Done` without the record.
        let _ = f.write_to(&mut out);
    }
    out
}

/// The ReceiveResponse for a denied pipeline: its failed state on `stream` (once), then
/// `CommandState Done` as Windows ends every pipeline.
pub(crate) fn receive_response(
    request: &Envelope,
    message_id: Uuid,
    command_id: &str,
    stream: &str,
    data: Option<Vec<u8>>,
) -> Envelope {
    let streams = data
        .map(|data| Stream {
            name: stream.to_string(),
            command_id: Some(command_id.to_string()),
            end: false,
            data,
        })
        .into_iter()
        .collect();
    reply(
        request,
        message_id,
        Action::ReceiveResponse,
        Body::ReceiveResponse {
            streams,
            command_state: Some(CommandState {
                command_id: Some(command_id.to_string()),
                state: CommandStateKind::Done,
                exit_code: Some(0),
            }),
        },
    )
}

/// A response of the gateway's own to `request`, shaped like the host's.
pub(crate) fn reply(request: &Envelope, message_id: Uuid, action: Action, body: Body) -> Envelope {
    let mut header = wsman::Header::new(action);
    header.to = Some(wsman::ns::ANONYMOUS.to_string());
    header.message_id = Some(format!("uuid:{}", message_id.to_string().to_uppercase()));
    header.relates_to = request.header.message_id.clone();
    Envelope::new(header, body)
}

/// `text` cut to [`MAX_TEXT`] bytes on a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

/// PowerShell shortens the target in a CategoryInfo line the same way (`Set-Item -Path ...d
/// -Value $false`): long targets keep their start and end.
fn short(target: &str) -> String {
    let chars: Vec<char> = target.chars().collect();
    if chars.len() <= 40 {
        return target.to_string();
    }
    let head: String = chars.iter().take(15).collect();
    let tail: String = chars.iter().skip(chars.len() - 15).collect();
    format!("{head}...{tail}")
}
