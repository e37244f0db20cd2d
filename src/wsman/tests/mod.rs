//! Tests of the wsman codec against the real corpus (`../shared/corpus`), malformed input,
//! round trips and random input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly on unexpected data"
)]

mod clients;
mod corpus;
mod hostile;
mod malformed;
mod perf;
mod pinned;
mod props;
mod roundtrip;
