//! PSRP messages (MS-PSRP 2.2.1): the 40-byte little-endian header (destination, message
//! type, runspace-pool id, pipeline id) and the CLIXML data after it.
//!
//! Owns the header layout, the message-type table (MS-PSRP 2.2.1, PROTOCOL.md §5) and the
//! .NET GUID byte order. It does not parse the CLIXML (`clixml/`) or fragments.

use std::fmt;

use uuid::Uuid;

use super::error::PsrpError;

/// Length of the message header.
pub const MESSAGE_HEADER_LEN: usize = 40;

const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Who a message is for (MS-PSRP 2.2.1 Destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// 0x00000001: the message goes to the client.
    Client,
    /// 0x00000002: the message goes to the server.
    Server,
    /// Any other value.
    Unknown(u32),
}

impl Destination {
    /// Decodes the wire value.
    pub fn from_u32(value: u32) -> Self {
        match value {
            1 => Destination::Client,
            2 => Destination::Server,
            other => Destination::Unknown(other),
        }
    }

    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            Destination::Client => 1,
            Destination::Server => 2,
            Destination::Unknown(v) => v,
        }
    }

    /// Lowercase name for logs and the decode tool.
    pub fn name(self) -> &'static str {
        match self {
            Destination::Client => "client",
            Destination::Server => "server",
            Destination::Unknown(_) => "unknown",
        }
    }
}

macro_rules! message_types {
    ($($(#[$doc:meta])* $variant:ident = $value:literal, $name:literal;)*) => {
        /// PSRP message type (MS-PSRP 2.2.1; values as in PROTOCOL.md §5).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MessageType {
            $($(#[$doc])* #[doc = concat!("`", $name, "` (", stringify!($value), ")")] $variant,)*
            /// A value not in MS-PSRP 2.2.1.
            Unknown(u32),
        }

        impl MessageType {
            /// Every known message type, in wire-value order.
            pub const ALL: &'static [MessageType] = &[$(MessageType::$variant,)*];

            /// Decodes the wire value.
            pub fn from_u32(value: u32) -> Self {
                match value {
                    $($value => MessageType::$variant,)*
                    other => MessageType::Unknown(other),
                }
            }

            /// The wire value.
            pub fn to_u32(self) -> u32 {
                match self {
                    $(MessageType::$variant => $value,)*
                    MessageType::Unknown(v) => v,
                }
            }

            /// The MS-PSRP name, e.g. `"CREATE_PIPELINE"`; `"UNKNOWN"` for unknown values.
            pub fn name(self) -> &'static str {
                match self {
                    $(MessageType::$variant => $name,)*
                    MessageType::Unknown(_) => "UNKNOWN",
                }
            }
        }
    };
}

message_types! {
    SessionCapability = 0x0001_0002, "SESSION_CAPABILITY";
    InitRunspacePool = 0x0001_0004, "INIT_RUNSPACEPOOL";
    PublicKey = 0x0001_0005, "PUBLIC_KEY";
    EncryptedSessionKey = 0x0001_0006, "ENCRYPTED_SESSION_KEY";
    PublicKeyRequest = 0x0001_0007, "PUBLIC_KEY_REQUEST";
    ConnectRunspacePool = 0x0001_0008, "CONNECT_RUNSPACEPOOL";
    SetMaxRunspaces = 0x0002_1002, "SET_MAX_RUNSPACES";
    SetMinRunspaces = 0x0002_1003, "SET_MIN_RUNSPACES";
    RunspaceAvailability = 0x0002_1004, "RUNSPACE_AVAILABILITY";
    RunspacePoolState = 0x0002_1005, "RUNSPACEPOOL_STATE";
    /// Opens a pipeline: the main policy control point.
    CreatePipeline = 0x0002_1006, "CREATE_PIPELINE";
    GetAvailableRunspaces = 0x0002_1007, "GET_AVAILABLE_RUNSPACES";
    UserEvent = 0x0002_1008, "USER_EVENT";
    ApplicationPrivateData = 0x0002_1009, "APPLICATION_PRIVATE_DATA";
    /// Also opens a pipeline (lists commands, runs none).
    GetCommandMetadata = 0x0002_100A, "GET_COMMAND_METADATA";
    RunspacePoolInitData = 0x0002_100B, "RUNSPACEPOOL_INIT_DATA";
    ResetRunspaceState = 0x0002_100C, "RESET_RUNSPACE_STATE";
    RunspacePoolHostCall = 0x0002_1100, "RUNSPACEPOOL_HOST_CALL";
    RunspacePoolHostResponse = 0x0002_1101, "RUNSPACEPOOL_HOST_RESPONSE";
    PipelineInput = 0x0004_1002, "PIPELINE_INPUT";
    EndOfPipelineInput = 0x0004_1003, "END_OF_PIPELINE_INPUT";
    PipelineOutput = 0x0004_1004, "PIPELINE_OUTPUT";
    ErrorRecord = 0x0004_1005, "ERROR_RECORD";
    PipelineState = 0x0004_1006, "PIPELINE_STATE";
    DebugRecord = 0x0004_1007, "DEBUG_RECORD";
    VerboseRecord = 0x0004_1008, "VERBOSE_RECORD";
    WarningRecord = 0x0004_1009, "WARNING_RECORD";
    ProgressRecord = 0x0004_1010, "PROGRESS_RECORD";
    InformationRecord = 0x0004_1011, "INFORMATION_RECORD";
    PipelineHostCall = 0x0004_1100, "PIPELINE_HOST_CALL";
    PipelineHostResponse = 0x0004_1101, "PIPELINE_HOST_RESPONSE";
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageType::Unknown(v) => write!(f, "UNKNOWN(0x{v:08X})"),
            known => f.write_str(known.name()),
        }
    }
}

/// Reads a GUID stored in .NET byte order (Data1, Data2, Data3 little-endian, Data4 as is).
pub fn guid_from_dotnet_bytes(bytes: [u8; 16]) -> Uuid {
    Uuid::from_bytes_le(bytes)
}

/// Writes a GUID in .NET byte order; the inverse of [`guid_from_dotnet_bytes`].
pub fn guid_to_dotnet_bytes(guid: &Uuid) -> [u8; 16] {
    guid.to_bytes_le()
}

/// One PSRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who the message is for.
    pub destination: Destination,
    /// What it is.
    pub message_type: MessageType,
    /// RunspacePool id (RPID).
    pub rpid: Uuid,
    /// Pipeline id (PID); nil for pool-level messages.
    pub pid: Uuid,
    /// The data after the header: CLIXML, possibly behind a UTF-8 BOM.
    pub data: Vec<u8>,
}

// === impl Message ===

impl Message {
    /// Parses a reassembled message, copying its data.
    pub fn parse(bytes: &[u8]) -> Result<Self, PsrpError> {
        let (header, data) = split_header(bytes)?;
        Ok(Self::from_header(header, data.to_vec()))
    }

    /// Parses a reassembled message, reusing its buffer for the data.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<Self, PsrpError> {
        let (header, _) = split_header(&bytes)?;
        let header = *header;
        bytes.drain(..MESSAGE_HEADER_LEN);
        Ok(Self::from_header(&header, bytes))
    }

    fn from_header(header: &[u8; MESSAGE_HEADER_LEN], data: Vec<u8>) -> Self {
        let [d0, d1, d2, d3, t0, t1, t2, t3, ids @ ..] = *header;
        let mut rpid = [0u8; 16];
        let mut pid = [0u8; 16];
        let (r, p) = ids.split_at(16);
        rpid.copy_from_slice(r);
        pid.copy_from_slice(p);
        Self {
            destination: Destination::from_u32(u32::from_le_bytes([d0, d1, d2, d3])),
            message_type: MessageType::from_u32(u32::from_le_bytes([t0, t1, t2, t3])),
            rpid: guid_from_dotnet_bytes(rpid),
            pid: guid_from_dotnet_bytes(pid),
            data,
        }
    }

    /// The pipeline id, or `None` for pool-level messages (nil PID).
    pub fn pipeline_id(&self) -> Option<Uuid> {
        (!self.pid.is_nil()).then_some(self.pid)
    }

    /// Appends the encoded message (header + data) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(MESSAGE_HEADER_LEN + self.data.len());
        out.extend_from_slice(&self.destination.to_u32().to_le_bytes());
        out.extend_from_slice(&self.message_type.to_u32().to_le_bytes());
        out.extend_from_slice(&guid_to_dotnet_bytes(&self.rpid));
        out.extend_from_slice(&guid_to_dotnet_bytes(&self.pid));
        out.extend_from_slice(&self.data);
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + self.data.len());
        self.write_to(&mut out);
        out
    }

    /// The data as CLIXML text, without the UTF-8 BOM Windows puts before server→client data.
    pub fn data_xml(&self) -> Result<&str, PsrpError> {
        let (skip, data) = match self.data.strip_prefix(UTF8_BOM) {
            Some(rest) => (UTF8_BOM.len(), rest),
            None => (0, self.data.as_slice()),
        };
        std::str::from_utf8(data).map_err(|e| PsrpError::InvalidUtf8 {
            offset: MESSAGE_HEADER_LEN + skip + e.valid_up_to(),
        })
    }
}

fn split_header(bytes: &[u8]) -> Result<(&[u8; MESSAGE_HEADER_LEN], &[u8]), PsrpError> {
    bytes
        .split_first_chunk::<MESSAGE_HEADER_LEN>()
        .ok_or(PsrpError::TruncatedMessageHeader { len: bytes.len() })
}
