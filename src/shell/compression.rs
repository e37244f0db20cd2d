//! Shell compression (xpress, PROTOCOL.md §9) between a client, the gateway and a host.
//!
//! A PowerShell client that asks for `rsp:CompressionType` `xpress` frames the bytes of every
//! `rsp:Stream` of its Sends, and expects the streams of every ReceiveResponse framed the
//! same way. The gateway passes the header on; the host may agree (`XpressCompression`) or
//! not (`NoCompression`, which the gateway turns into `XpressCompression` for the client).
//! Policy and the audit always see plain streams:
//!
//! - [`decompress_streams`]: a Send or ReceiveResponse with its streams decoded. A client's
//!   Send is judged decoded and the host is sent that same decoded envelope (framed again
//!   when the host compresses), so the inspector and the host cannot disagree; anything
//!   that does not decode is refused, never forwarded;
//! - [`compress_streams`]: the same envelope framed, for a host that compresses, or for the
//!   client when the host did not (and for the gateway's own answers).
//!
//! Pure: no I/O. Memory is bounded per message: one envelope decodes to at most
//! [`MAX_DECOMPRESSED_BYTES`] across its streams, and nothing decoded is kept here.

use crate::wsman::{Body, Envelope, Stream};
use crate::xpress::{compress_stream, decompress_stream, XpressError};

/// The only compression type the gateway accepts (case-insensitive, as clients send it).
pub const XPRESS: &str = "xpress";

/// Most bytes one client Send may decode to, across its streams. A Send carries at most
/// the client's MaxEnvelopeSize (512 KiB at most) of base64, and PSRP's fragments are far
/// smaller; 16 MiB leaves room for any honest stream while a decompression bomb stops here.
pub const MAX_DECOMPRESSED_BYTES: usize = 16 << 20;

/// True when a Create's `rsp:CompressionType` asks for what the gateway can decode.
pub fn is_supported(compression_type: &str) -> bool {
    compression_type.trim().eq_ignore_ascii_case(XPRESS)
}

/// The envelope with its stream data decoded, when it carries streams (a Send or a
/// ReceiveResponse); `Ok(None)` for anything else (Command arguments, `creationXml` and
/// `connectXml` are never compressed).
pub fn decompress_streams(env: &Envelope) -> Result<Option<Envelope>, XpressError> {
    let Some(streams) = streams_of(&env.body) else {
        return Ok(None);
    };
    let mut budget = MAX_DECOMPRESSED_BYTES;
    let mut plain = Vec::with_capacity(streams.len());
    for stream in streams {
        let data = decompress_stream(&stream.data, budget)?;
        budget = budget.saturating_sub(data.len());
        let mut s = stream.clone();
        s.data = data;
        plain.push(s);
    }
    // Rebuilt, not spliced: no span into the original bytes applies.
    Ok(Some(Envelope::new(
        env.header.clone(),
        with_streams(&env.body, plain),
    )))
}

/// The envelope with its stream data framed (a Send or a ReceiveResponse); `None` when
/// there is nothing to compress.
pub fn compress_streams(env: &Envelope) -> Option<Envelope> {
    let streams = streams_of(&env.body)?
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.data = compress_stream(&s.data);
            s
        })
        .collect();
    Some(Envelope::new(
        env.header.clone(),
        with_streams(&env.body, streams),
    ))
}

fn streams_of(body: &Body) -> Option<&[Stream]> {
    match body {
        Body::Send(streams) | Body::ReceiveResponse { streams, .. } => Some(streams),
        _ => None,
    }
}

/// `body` (a Send or ReceiveResponse) with other stream data.
fn with_streams(body: &Body, streams: Vec<Stream>) -> Body {
    match body {
        Body::ReceiveResponse { command_state, .. } => Body::ReceiveResponse {
            streams,
            command_state: command_state.clone(),
        },
        _ => Body::Send(streams),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;
    use crate::wsman::{Action, Header};

    fn stream(data: Vec<u8>) -> Stream {
        Stream {
            name: "stdin".into(),
            command_id: Some("C1".into()),
            end: false,
            data,
        }
    }

    #[test]
    fn sends_decode_and_answers_encode_back() {
        let plain = b"<Obj RefId=\"0\"><MS><S N=\"x\">abc</S></MS></Obj>".repeat(40);
        let send = Envelope::new(
            Header::new(Action::Send),
            Body::Send(vec![stream(compress_stream(&plain))]),
        );
        let decoded = decompress_streams(&send).unwrap().unwrap();
        assert_eq!(decoded.body, Body::Send(vec![stream(plain.clone())]));
        assert_eq!(decoded.header, send.header);

        let answer = Envelope::new(
            Header::new(Action::ReceiveResponse),
            Body::ReceiveResponse {
                streams: vec![stream(plain.clone())],
                command_state: None,
            },
        );
        let framed = compress_streams(&answer).unwrap();
        let Body::ReceiveResponse { streams, .. } = &framed.body else {
            panic!("{framed:?}");
        };
        // Actually compressed (a chunk this redundant shrinks), and decodes back.
        assert!(streams[0].data.len() < plain.len());
        assert_eq!(
            decompress_stream(&streams[0].data, usize::MAX).unwrap(),
            plain
        );
    }

    #[test]
    fn what_does_not_decode_is_an_error_and_other_bodies_pass() {
        let lying = Envelope::new(
            Header::new(Action::Send),
            // Claims a 100-byte chunk of 50 compressed bytes, then ends.
            Body::Send(vec![stream(vec![99, 0, 49, 0, 1, 2, 3])]),
        );
        assert!(decompress_streams(&lying).is_err());
        let receive = Envelope::new(Header::new(Action::Receive), Body::Receive(Vec::new()));
        assert_eq!(decompress_streams(&receive).unwrap(), None);
        assert_eq!(compress_streams(&receive), None);
        // A host's framed answer decodes too, CommandState kept.
        let framed = Envelope::new(
            Header::new(Action::ReceiveResponse),
            Body::ReceiveResponse {
                streams: vec![stream(compress_stream(b"abc"))],
                command_state: None,
            },
        );
        let plain = decompress_streams(&framed).unwrap().unwrap();
        assert_eq!(
            plain.body,
            Body::ReceiveResponse {
                streams: vec![stream(b"abc".to_vec())],
                command_state: None
            }
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        // Chunks of 64 KiB of zeros: each compresses to a few hundred bytes.
        let chunk = compress_stream(&vec![0u8; 65536]);
        let bomb = chunk.repeat(MAX_DECOMPRESSED_BYTES / 65536 + 1);
        let send = Envelope::new(Header::new(Action::Send), Body::Send(vec![stream(bomb)]));
        assert!(matches!(
            decompress_streams(&send),
            Err(XpressError::TooLarge { .. })
        ));
        // Split over two streams, the cap still holds for the request as a whole.
        let half = chunk.repeat(MAX_DECOMPRESSED_BYTES / 65536 / 2 + 1);
        let send = Envelope::new(
            Header::new(Action::Send),
            Body::Send(vec![stream(half.clone()), stream(half)]),
        );
        assert!(matches!(
            decompress_streams(&send),
            Err(XpressError::TooLarge { .. })
        ));
    }

    #[test]
    fn only_xpress_is_supported() {
        assert!(is_supported("xpress"));
        assert!(is_supported(" XPRESS "));
        assert!(!is_supported("lznt1"));
        assert!(!is_supported(""));
    }
}
