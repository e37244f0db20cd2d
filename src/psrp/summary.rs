//! A one-message summary for the `hopgate decode` tool and for logs: type name, ids, and the
//! pipeline when the message opens one.
//!
//! Owns nothing but this read-out; it never includes message data other than the command
//! read-out (SecureStrings stay redacted).

use serde::Serialize;

use super::message::{Message, MessageType};
use super::pipeline::{extract_create_pipeline, extract_get_command_metadata, Pipeline};

/// What a message is, in printable form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageSummary {
    /// `client` or `server` (the destination), or `unknown`.
    pub destination: &'static str,
    /// MS-PSRP name, e.g. `CREATE_PIPELINE`.
    pub message_type: &'static str,
    /// The wire value of the type.
    pub message_type_value: u32,
    /// RunspacePool id.
    pub rpid: String,
    /// Pipeline id, absent for pool-level messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Length of the data after the header.
    pub data_len: usize,
    /// For CREATE_PIPELINE: the commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Pipeline>,
    /// For GET_COMMAND_METADATA: the name patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_names: Option<Vec<String>>,
    /// Why the pipeline or names could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Summarises one message; decoding problems go into `error`, never panic.
pub fn decode_message_summary(msg: &Message) -> MessageSummary {
    let mut summary = MessageSummary {
        destination: msg.destination.name(),
        message_type: msg.message_type.name(),
        message_type_value: msg.message_type.to_u32(),
        rpid: msg.rpid.hyphenated().to_string(),
        pid: msg.pipeline_id().map(|p| p.hyphenated().to_string()),
        data_len: msg.data.len(),
        pipeline: None,
        command_names: None,
        error: None,
    };
    match msg.message_type {
        MessageType::CreatePipeline => match extract_create_pipeline(msg) {
            Ok(p) => summary.pipeline = Some(p),
            Err(e) => summary.error = Some(e.to_string()),
        },
        MessageType::GetCommandMetadata => match extract_get_command_metadata(msg) {
            Ok(n) => summary.command_names = Some(n),
            Err(e) => summary.error = Some(e.to_string()),
        },
        _ => {}
    }
    summary
}
