//! Fragments, the defragmenter and the message header: byte-level facts from MS-PSRP 2.2.1
//! and 2.2.4 and from the corpus, and every error path.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use uuid::Uuid;

use super::corpus::{corpus_files, load, psrp_payloads};
use crate::psrp::{
    fragment_message, guid_from_dotnet_bytes, guid_to_dotnet_bytes, parse_fragments, DefragLimits,
    Defragmenter, Destination, Fragment, Message, MessageType, PsrpError, FRAGMENT_HEADER_LEN,
};

fn frag(object_id: u64, fragment_id: u64, start: bool, end: bool, blob: &[u8]) -> Fragment {
    Fragment {
        object_id,
        fragment_id,
        start,
        end,
        blob: blob.to_vec(),
    }
}

/// SESSION_CAPABILITY as pypsrp sent it in test_psrp_open_runspace.yml (first bytes of the
/// creationXml), decoded by hand: object 1, fragment 0, flags 3 (S|E).
#[test]
fn fragment_header_layout_from_corpus() {
    let exchanges = load(&super::corpus::corpus_dir().join("test_psrp_open_runspace.yml"));
    let payloads = psrp_payloads(&exchanges);
    let (_, _, first) = &payloads[0];
    // ObjectId 1, FragmentId 0 (big-endian u64), flags 0x03, then the blob length.
    assert_eq!(
        &first[..17],
        &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3]
    );
    let frags = parse_fragments(first).unwrap();
    assert_eq!(
        frags.len(),
        2,
        "SESSION_CAPABILITY and INIT_RUNSPACEPOOL share creationXml"
    );
    assert_eq!((frags[0].object_id, frags[1].object_id), (1, 2));
    assert!(frags.iter().all(|f| f.start && f.end && f.fragment_id == 0));
    let declared = u32::from_be_bytes(first[17..21].try_into().unwrap()) as usize;
    assert_eq!(frags[0].blob.len(), declared);
    // Message header of SESSION_CAPABILITY: destination 2 (server), type 0x00010002 LE.
    assert_eq!(&frags[0].blob[..8], &[2, 0, 0, 0, 2, 0, 1, 0]);
    let msg = Message::parse(&frags[0].blob).unwrap();
    assert_eq!(msg.destination, Destination::Server);
    assert_eq!(msg.message_type, MessageType::SessionCapability);
    assert!(msg.pipeline_id().is_none());
}

/// Every corpus payload re-encodes byte for byte from its parsed fragments.
#[test]
fn corpus_fragments_reencode_byte_exact() {
    let mut count = 0;
    for path in corpus_files() {
        let exchanges = load(&path);
        for (_, _, payload) in psrp_payloads(&exchanges) {
            let mut out = Vec::new();
            for f in parse_fragments(&payload).unwrap() {
                f.write_to(&mut out).unwrap();
                count += 1;
            }
            assert_eq!(out, payload, "{}", path.display());
        }
    }
    assert!(count > 600, "{count} fragments");
}

#[test]
fn truncated_header_and_blob_report_offsets() {
    let mut data = Vec::new();
    frag(1, 0, true, true, b"hello")
        .write_to(&mut data)
        .unwrap();
    let whole = data.len();
    frag(2, 0, true, true, b"world")
        .write_to(&mut data)
        .unwrap();

    // Cut inside the second header.
    let cut = &data[..whole + 10];
    assert_eq!(
        parse_fragments(cut),
        Err(PsrpError::TruncatedFragmentHeader {
            offset: whole,
            available: 10
        })
    );
    // Cut inside the second blob.
    let cut = &data[..data.len() - 2];
    assert_eq!(
        parse_fragments(cut),
        Err(PsrpError::TruncatedFragmentBlob {
            offset: whole,
            declared: 5,
            available: 3
        })
    );
    assert_eq!(parse_fragments(&[]).unwrap(), vec![]);
}

#[test]
fn fragment_message_respects_max_len_and_flags() {
    let message: Vec<u8> = (0..100u8).collect();
    let frags = fragment_message(7, &message, FRAGMENT_HEADER_LEN + 30);
    assert_eq!(frags.len(), 4);
    assert!(frags
        .iter()
        .all(|f| f.encoded_len() <= FRAGMENT_HEADER_LEN + 30));
    assert_eq!(
        frags
            .iter()
            .map(|f| (f.fragment_id, f.start, f.end))
            .collect::<Vec<_>>(),
        vec![
            (0, true, false),
            (1, false, false),
            (2, false, false),
            (3, false, true)
        ]
    );
    let joined: Vec<u8> = frags.iter().flat_map(|f| f.blob.clone()).collect();
    assert_eq!(joined, message);
    // Degenerate limits still make progress; empty messages are one S|E fragment.
    assert_eq!(fragment_message(1, b"ab", 0).len(), 2);
    let empty = fragment_message(1, b"", 100);
    assert_eq!(empty, vec![frag(1, 0, true, true, b"")]);
}

#[test]
fn defragmenter_reassembles_interleaved_objects_across_calls() {
    let mut d = Defragmenter::new();
    assert_eq!(d.push(frag(3, 0, true, false, b"ab")).unwrap(), None);
    assert_eq!(d.push(frag(4, 0, true, false, b"xy")).unwrap(), None);
    assert_eq!(
        d.push(frag(5, 0, true, true, b"whole")).unwrap(),
        Some(b"whole".to_vec())
    );
    assert_eq!(d.pending_objects(), 2);
    let mut ids: Vec<u64> = d.pending_object_ids().collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![3, 4]);
    assert_eq!(d.buffered_bytes(), 4);
    assert_eq!(
        d.push(frag(4, 1, false, true, b"z")).unwrap(),
        Some(b"xyz".to_vec())
    );
    assert_eq!(d.push(frag(3, 1, false, false, b"c")).unwrap(), None);
    let mut bytes = Vec::new();
    frag(3, 2, false, true, b"d").write_to(&mut bytes).unwrap();
    frag(6, 0, true, true, b"next")
        .write_to(&mut bytes)
        .unwrap();
    assert_eq!(
        d.push_bytes(&bytes).unwrap(),
        vec![b"abcd".to_vec(), b"next".to_vec()]
    );
    assert!(d.is_idle());
    assert_eq!(d.buffered_bytes(), 0);
}

#[test]
fn defragmenter_errors_and_state_after_them() {
    let mut d = Defragmenter::new();
    // Continuation without a start.
    assert_eq!(
        d.push(frag(1, 1, false, true, b"x")),
        Err(PsrpError::MissingStart {
            object_id: 1,
            fragment_id: 1
        })
    );
    // Start flag on a later fragment id.
    assert_eq!(
        d.push(frag(1, 2, true, false, b"x")),
        Err(PsrpError::StartFragmentNotFirst {
            object_id: 1,
            fragment_id: 2
        })
    );
    // Out of order: the partial object is dropped, later fragments of it fail too.
    d.push(frag(2, 0, true, false, b"a")).unwrap();
    d.push(frag(9, 0, true, false, b"keep")).unwrap();
    assert_eq!(
        d.push(frag(2, 2, false, true, b"c")),
        Err(PsrpError::OutOfOrderFragment {
            object_id: 2,
            expected: 1,
            got: 2
        })
    );
    assert_eq!(
        d.push(frag(2, 1, false, true, b"b")),
        Err(PsrpError::MissingStart {
            object_id: 2,
            fragment_id: 1
        })
    );
    // Duplicate start drops the object.
    d.push(frag(3, 0, true, false, b"a")).unwrap();
    assert_eq!(
        d.push(frag(3, 0, true, false, b"a")),
        Err(PsrpError::DuplicateStart { object_id: 3 })
    );
    // Other objects are untouched.
    assert_eq!(d.pending_objects(), 1);
    assert_eq!(d.buffered_bytes(), 4);
    assert_eq!(
        d.push(frag(9, 1, false, true, b"!")).unwrap(),
        Some(b"keep!".to_vec())
    );
    assert!(d.is_idle());
}

#[test]
fn defragmenter_caps_bytes_and_pending_objects() {
    let limits = DefragLimits {
        max_buffered_bytes: 10,
        max_pending_objects: 2,
    };
    let mut d = Defragmenter::with_limits(limits);
    assert_eq!(
        d.push(frag(1, 0, true, true, &[0; 11])),
        Err(PsrpError::MessageTooLarge {
            object_id: 1,
            limit: 10
        })
    );
    d.push(frag(2, 0, true, false, &[0; 6])).unwrap();
    d.push(frag(3, 0, true, false, &[0; 3])).unwrap();
    assert_eq!(
        d.push(frag(4, 0, true, false, &[0; 1])),
        Err(PsrpError::TooManyPendingObjects { limit: 2 })
    );
    // 6 + 3 buffered; two more bytes for object 2 exceed 10: object 2 is dropped.
    assert_eq!(
        d.push(frag(2, 1, false, false, &[0; 2])),
        Err(PsrpError::MessageTooLarge {
            object_id: 2,
            limit: 10
        })
    );
    assert_eq!(d.buffered_bytes(), 3);
    assert_eq!(
        d.push(frag(3, 1, false, true, &[1; 7]))
            .unwrap()
            .map(|m| m.len()),
        Some(10)
    );
    assert!(d.is_idle());
    d.push(frag(5, 0, true, false, b"x")).unwrap();
    d.reset();
    assert!(d.is_idle());
    assert_eq!(d.buffered_bytes(), 0);
}

#[test]
fn guid_byte_order_is_dotnet() {
    // PROTOCOL.md §5: Data1..3 little-endian. psrpcore: uuid.UUID(bytes_le=...).
    let guid = Uuid::parse_str("11AC8B01-5D0D-4A44-98F4-64E68FDEFB1F").unwrap();
    let wire = guid_to_dotnet_bytes(&guid);
    assert_eq!(
        wire,
        [
            0x01, 0x8B, 0xAC, 0x11, 0x0D, 0x5D, 0x44, 0x4A, 0x98, 0xF4, 0x64, 0xE6, 0x8F, 0xDE,
            0xFB, 0x1F
        ]
    );
    assert_eq!(guid_from_dotnet_bytes(wire), guid);
}

/// Current pypsrp makes the ShellId equal to the RPID read in .NET order
/// (test_psrp_no_profile.yml); the older pypsrp of most corpus files wrote the RPID bytes
/// in RFC 4122 order, so there the .NET reading is the ShellId with Data1..3 byte-swapped
/// (test_psrp_multiple_commands.yml), and Windows accepted both. psrpcore reads the header
/// as we do (`uuid.UUID(bytes_le=...)`). Correlate by ShellId, not by header GUIDs.
#[test]
fn corpus_rpid_against_shell_id() {
    let first_rpid = |file: &str| {
        let exchanges = load(&super::corpus::corpus_dir().join(file));
        let (shell, _, payload) = psrp_payloads(&exchanges).into_iter().next().unwrap();
        let f = &parse_fragments(&payload).unwrap()[0];
        (
            Uuid::parse_str(&shell).unwrap(),
            Message::parse(&f.blob).unwrap().rpid,
        )
    };
    let (shell, rpid) = first_rpid("test_psrp_no_profile.yml");
    assert_eq!(rpid, shell);
    let (shell, rpid) = first_rpid("test_psrp_multiple_commands.yml");
    assert_eq!(
        shell,
        Uuid::parse_str("11AC8B01-5D0D-4A44-98F4-64E68FDEFB1F").unwrap()
    );
    assert_eq!(
        rpid,
        Uuid::parse_str("018BAC11-0D5D-444A-98F4-64E68FDEFB1F").unwrap()
    );
}

#[test]
fn message_round_trip_bom_and_errors() {
    let msg = Message {
        destination: Destination::Client,
        message_type: MessageType::PipelineOutput,
        rpid: Uuid::from_u128(0x0102_0304_0506_0708_090A_0B0C_0D0E_0F10),
        pid: Uuid::from_u128(42),
        data: b"\xEF\xBB\xBF<S>hi</S>".to_vec(),
    };
    let bytes = msg.to_bytes();
    assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0x04, 0x10, 0x04, 0x00]);
    assert_eq!(Message::parse(&bytes).unwrap(), msg);
    assert_eq!(Message::from_vec(bytes).unwrap(), msg);
    assert_eq!(msg.data_xml().unwrap(), "<S>hi</S>");
    assert_eq!(msg.pipeline_id(), Some(Uuid::from_u128(42)));

    assert_eq!(
        Message::parse(&[0; 39]),
        Err(PsrpError::TruncatedMessageHeader { len: 39 })
    );
    let bad = Message {
        data: b"<S>\xFF</S>".to_vec(),
        ..msg.clone()
    };
    assert_eq!(bad.data_xml(), Err(PsrpError::InvalidUtf8 { offset: 43 }));
    // Unknown values survive a round trip.
    let mut raw = msg.to_bytes();
    raw[..4].copy_from_slice(&7u32.to_le_bytes());
    raw[4..8].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    let unk = Message::parse(&raw).unwrap();
    assert_eq!(unk.destination, Destination::Unknown(7));
    assert_eq!(unk.message_type, MessageType::Unknown(0xDEAD_BEEF));
    assert_eq!(unk.to_bytes(), raw);
}

#[test]
fn message_type_table_matches_protocol_md() {
    // PROTOCOL.md §5, byte-order check: CREATE_PIPELINE is `06 10 02 00` on the wire.
    assert_eq!(
        MessageType::CreatePipeline.to_u32().to_le_bytes(),
        [0x06, 0x10, 0x02, 0x00]
    );
    assert_eq!(MessageType::ALL.len(), 31);
    let names: Vec<(&str, u32)> = MessageType::ALL
        .iter()
        .map(|t| (t.name(), t.to_u32()))
        .collect();
    for (name, value) in [
        ("SESSION_CAPABILITY", 0x0001_0002),
        ("INIT_RUNSPACEPOOL", 0x0001_0004),
        ("CONNECT_RUNSPACEPOOL", 0x0001_0008),
        ("CREATE_PIPELINE", 0x0002_1006),
        ("GET_COMMAND_METADATA", 0x0002_100A),
        ("RESET_RUNSPACE_STATE", 0x0002_100C),
        ("RUNSPACEPOOL_HOST_RESPONSE", 0x0002_1101),
        ("PIPELINE_INPUT", 0x0004_1002),
        ("PROGRESS_RECORD", 0x0004_1010),
        ("INFORMATION_RECORD", 0x0004_1011),
        ("PIPELINE_HOST_RESPONSE", 0x0004_1101),
    ] {
        assert!(names.contains(&(name, value)), "{name}");
    }
    for t in MessageType::ALL {
        assert_eq!(MessageType::from_u32(t.to_u32()), *t);
    }
    assert_eq!(MessageType::Unknown(5).to_string(), "UNKNOWN(0x00000005)");
}

/// A base64 blob from the corpus holding several fragments defragments in one call.
#[test]
fn push_bytes_handles_many_messages_per_payload() {
    let path = super::corpus::corpus_dir().join("test_psrp_open_runspace.yml");
    let exchanges = load(&path);
    let (_, _, payload) = psrp_payloads(&exchanges).into_iter().next().unwrap();
    let messages = Defragmenter::new().push_bytes(&payload).unwrap();
    let types: Vec<MessageType> = messages
        .into_iter()
        .map(|m| Message::from_vec(m).unwrap().message_type)
        .collect();
    assert_eq!(
        types,
        vec![
            MessageType::SessionCapability,
            MessageType::InitRunspacePool
        ]
    );
}
