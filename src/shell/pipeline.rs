//! PSRP client messages as policy sees them: which decoded messages are control points
//! (CREATE_PIPELINE, GET_COMMAND_METADATA), the codec's pipeline as the policy's
//! `Invocation`, and the one-line-per-statement rendering the audit records.
//!
//! The codec (`crate::psrp`) reassembles and decodes; this module only classifies.

use base64::Engine as _;

use crate::policy::{ArgValue, Invocation, InvokedArg, InvokedCommand};
use crate::psrp::{self, Defragmenter, Message, MessageType, Pipeline};

/// A client→host message the gateway has to judge.
#[derive(Debug)]
pub(crate) enum ClientMessage {
    /// CREATE_PIPELINE: runs commands. `rpid`/`pid` are the header's pool and pipeline ids,
    /// for a gateway-made answer to the same pipeline.
    CreatePipeline {
        pipeline: Pipeline,
        rpid: uuid::Uuid,
        pid: uuid::Uuid,
    },
    /// GET_COMMAND_METADATA: lists commands (opens a pipeline too).
    CommandMetadata {
        names: Vec<String>,
        rpid: uuid::Uuid,
        pid: uuid::Uuid,
    },
    /// PIPELINE_INPUT: objects for a pipeline. `text` is the object's string when it is
    /// one (what a pipeline that runs its input, Ansible's bootstrap wrapper, is judged
    /// on), None for any other object; `record` is the objects as text for the record,
    /// cut to the input cap (data, never judged as code: only a pipeline makes code of it).
    Input {
        pid: uuid::Uuid,
        text: Option<String>,
        record: String,
        truncated: bool,
        /// Bytes of the message's CLIXML data.
        bytes: u64,
    },
    /// END_OF_PIPELINE_INPUT.
    EndOfInput { pid: uuid::Uuid },
    /// Everything else (pool messages, host responses, key exchange): data that can only
    /// turn into code through a pipeline, which is judged itself.
    Other,
}

/// Most text of one PIPELINE_INPUT message kept in the record.
pub(crate) const INPUT_CAP: usize = 64 * 1024;

/// Why client PSRP bytes could not be inspected; always refused (fail closed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InspectError {
    #[error("PSRP payload is not base64")]
    Base64,
    #[error(transparent)]
    Psrp(#[from] psrp::PsrpError),
}

/// Decodes base64 payloads (Command `rsp:Arguments`, Send `rsp:Stream` text already
/// decoded by wsman is passed through `feed_bytes`).
pub(crate) fn feed_base64(
    defrag: &mut Defragmenter,
    payloads: &[String],
) -> Result<Vec<ClientMessage>, InspectError> {
    let mut out = Vec::new();
    for p in payloads {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.trim())
            .map_err(|_| InspectError::Base64)?;
        out.extend(feed_bytes(defrag, &bytes)?);
    }
    Ok(out)
}

/// Feeds fragment bytes and classifies every message they complete.
pub(crate) fn feed_bytes(
    defrag: &mut Defragmenter,
    bytes: &[u8],
) -> Result<Vec<ClientMessage>, InspectError> {
    let mut out = Vec::new();
    for raw in defrag.push_bytes(bytes)? {
        let msg = Message::from_vec(raw)?;
        out.push(match msg.message_type {
            MessageType::CreatePipeline => ClientMessage::CreatePipeline {
                pipeline: psrp::extract_create_pipeline(&msg)?,
                rpid: msg.rpid,
                pid: msg.pid,
            },
            MessageType::GetCommandMetadata => ClientMessage::CommandMetadata {
                names: psrp::extract_get_command_metadata(&msg)?,
                rpid: msg.rpid,
                pid: msg.pid,
            },
            MessageType::PipelineInput => {
                // Unreadable CLIXML is still input the host gets (and parses itself): it
                // is recorded by its size, with no text.
                let (record, truncated) =
                    psrp::read_input_text(&msg, INPUT_CAP).unwrap_or((String::new(), true));
                ClientMessage::Input {
                    pid: msg.pid,
                    text: input_text(&msg.data),
                    record,
                    truncated,
                    bytes: msg.data.len() as u64,
                }
            }
            MessageType::EndOfPipelineInput => ClientMessage::EndOfInput { pid: msg.pid },
            _ => ClientMessage::Other,
        });
    }
    Ok(out)
}

/// The policy's view of a pipeline.
pub(crate) fn invocation(p: &Pipeline) -> Invocation {
    Invocation {
        client_input: p.client_input,
        statements: p
            .statements
            .iter()
            .map(|st| {
                st.iter()
                    .map(|c| InvokedCommand {
                        name: c.name.clone(),
                        is_script: c.is_script,
                        args: c
                            .args
                            .iter()
                            .map(|a| InvokedArg {
                                name: a.name.clone(),
                                value: arg_value(&a.value),
                            })
                            .collect(),
                    })
                    .collect()
            })
            .collect(),
    }
}

fn arg_value(v: &psrp::ArgValue) -> ArgValue {
    use psrp::ArgValue as P;
    match v {
        P::Null => ArgValue::Null,
        P::Bool(b) => ArgValue::Bool(*b),
        P::Int(i) => ArgValue::Number(i.to_string()),
        P::UInt(u) => ArgValue::Number(u.to_string()),
        P::Float(f) => ArgValue::Number(f.to_string()),
        P::String(s) => ArgValue::String(s.clone()),
        P::List(items) => ArgValue::List(items.iter().map(arg_value).collect()),
        P::SecureString { .. } => ArgValue::Secure,
        P::ScriptBlock { script_block } => ArgValue::ScriptBlock(script_block.clone()),
        P::Dict { .. } => ArgValue::Other("hashtable".into()),
        P::Object {
            type_name,
            to_string,
        } => ArgValue::Other(
            to_string
                .clone()
                .or_else(|| type_name.clone())
                .unwrap_or_default(),
        ),
    }
}

/// One line per statement, PowerShell-like, for the audit record. Secure strings are
/// already redacted by the codec.
pub(crate) fn render(p: &Pipeline) -> Vec<String> {
    p.statements
        .iter()
        .map(|st| {
            st.iter()
                .map(|c| {
                    let mut s = if c.is_script {
                        format!("{{script}} {}", c.name)
                    } else {
                        c.name.clone()
                    };
                    for a in &c.args {
                        if let Some(n) = &a.name {
                            s.push_str(" -");
                            s.push_str(n.trim_start_matches('-'));
                        }
                        if a.value != psrp::ArgValue::Null || a.name.is_none() {
                            s.push(' ');
                            s.push_str(&serde_json::to_string(&a.value).unwrap_or_default());
                        }
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

/// The string a PIPELINE_INPUT message carries (`<S>` in CLIXML), None for other objects
/// or unreadable data.
fn input_text(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let values = psrp::clixml::parse_clixml(text).ok()?;
    match values.as_slice() {
        [v] => v.as_str().map(str::to_string),
        _ => None,
    }
}
