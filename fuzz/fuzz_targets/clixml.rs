//! Fuzz the CLIXML reader, the writer (its output must read back) and the pipeline read-out.
//! Run with `cargo fuzz run clixml`.
#![no_main]

use hopgate::psrp::clixml::{parse_clixml, write_clixml_values};
use hopgate::psrp::{
    extract_create_pipeline, extract_get_command_metadata, Destination, Message, MessageType,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(values) = parse_clixml(text) {
        let written = write_clixml_values(&values);
        let again = parse_clixml(&written);
        assert!(again.is_ok(), "writer output must parse: {written}");
    }
    for message_type in [MessageType::CreatePipeline, MessageType::GetCommandMetadata] {
        let msg = Message {
            destination: Destination::Server,
            message_type,
            rpid: Default::default(),
            pid: Default::default(),
            data: data.to_vec(),
        };
        let _ = extract_create_pipeline(&msg);
        let _ = extract_get_command_metadata(&msg);
    }
});
