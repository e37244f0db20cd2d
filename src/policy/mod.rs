//! Policy as the gateway uses it: the pure engine of the `hopgate-policy` crate, plus the
//! file access it must not do itself (reading a policy directory) and `hopgate policy
//! check`.

mod cli;
mod load;
#[cfg(test)]
mod tests;

pub use cli::{check_cli, CheckInput};
pub use hopgate_policy::*;
pub use load::{lint, load_dir, load_dir_with_digest};
