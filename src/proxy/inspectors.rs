//! The inspectors of live shells, beside the session registry and keyed by the same
//! ShellId: in-process state of this replica (PSRP reassembly, held pipelines, counters).
//! They do not expire by themselves: whoever takes a shell out of the registry (its
//! Delete, an admin terminate, the idle reaper, shutdown) takes its inspector too, whose
//! counters and running commands the shell's end needs.
//!
//! Each inspector sits behind its own `std::sync::Mutex`, taken only for the synchronous
//! inspection of one request or answer and never across an `.await`; requests on
//! different shells never wait for each other.

use std::sync::{Arc, Mutex};

use crate::shell::Inspector;

/// One shell's inspector, shared by the requests on it.
pub type SharedInspector = Arc<Mutex<Inspector>>;

/// ShellId → inspector.
#[derive(Debug, Clone)]
pub struct Inspectors {
    shells: moka::sync::Cache<String, SharedInspector>,
}

// === impl Inspectors ===

impl Inspectors {
    /// `capacity`: a backstop only, above the registry's own (every inspector leaves with
    /// its registry entry).
    pub fn new(capacity: u64) -> Self {
        Self {
            shells: moka::sync::Cache::builder().max_capacity(capacity).build(),
        }
    }

    pub fn insert(&self, shell_id: &str, inspector: Inspector) {
        self.shells
            .insert(shell_id.to_string(), Arc::new(Mutex::new(inspector)));
    }

    pub fn get(&self, shell_id: &str) -> Option<SharedInspector> {
        self.shells.get(shell_id)
    }

    pub fn remove(&self, shell_id: &str) -> Option<SharedInspector> {
        self.shells.remove(shell_id)
    }
}
