//! Tests of the PSRP codec: corpus decoding checked against psrpcore, pinned pipelines,
//! framing edge cases and property tests.

mod clixml_tests;
mod corpus;
mod corpus_tests;
mod framing;
mod hostile;
mod other_corpora;
mod perf;
mod pinned;
mod pipeline_tests;
mod props;
mod records_corpus;
