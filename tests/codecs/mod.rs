//! Codec tests that need the public API only: `hopgate decode` over the corpus and the
//! xpress codec against independent implementations.

mod decode;
mod xpress_oracles;
