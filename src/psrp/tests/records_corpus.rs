//! Host output read as text from the pypsrp corpus (real Windows responses).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::corpus::{corpus_files, Direction};
use super::corpus_tests::decode_file;
use crate::psrp::{read_host_message, HostEvent, RecordStream};

/// (file name, stream, text) of every record in the corpus.
fn corpus_records() -> Vec<(String, RecordStream, String)> {
    let mut out = Vec::new();
    for path in corpus_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let by_dir = decode_file(&path);
        for msg in by_dir.get(&Direction::ServerToClient).into_iter().flatten() {
            let ev = read_host_message(msg, 1 << 20)
                .unwrap_or_else(|e| panic!("{name}: {}: {e}", msg.message_type));
            if let Some(HostEvent::Record { stream, text, .. }) = ev {
                out.push((name.clone(), stream, text));
            }
        }
    }
    out
}

#[test]
fn every_host_record_in_the_corpus_reads_as_text() {
    let records = corpus_records();
    assert!(records.len() > 50, "{}", records.len());
    for (name, stream, text) in &records {
        if *stream != RecordStream::Output {
            assert!(!text.is_empty(), "{name}: empty {stream:?} record");
        }
    }
    let has = |file: &str, stream: RecordStream, text: &str| {
        records
            .iter()
            .any(|(n, s, t)| n == file && *s == stream && t == text)
    };
    // Write-Error/-Warning/-Verbose/-Debug/-Information from a real host, one per stream.
    for (stream, text) in [
        (RecordStream::Error, "error stream"),
        (RecordStream::Warning, "warning stream"),
        (RecordStream::Verbose, "verbose stream"),
        (RecordStream::Debug, "debug stream"),
        (RecordStream::Information, "information stream"),
    ] {
        assert!(
            has("test_psrp_stream_output_invocation.yml", stream, text),
            "{stream:?} {text}"
        );
    }
    // A JEA endpoint's refusal is an error record with the provider message.
    assert!(has(
        "test_psrp_with_jea_configuration.yml",
        RecordStream::Error,
        "Cannot find a provider with the name 'FileSystem'."
    ));
    // execute_ps's `Out-String -Stream` lines arrive as string output objects.
    assert!(has(
        "test_client_execute_ps.yml",
        RecordStream::Output,
        "Running  winrm              Windows Remote Management (WS-Manag..."
    ));
}
