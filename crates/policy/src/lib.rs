//! Policy: roles (TOML files in `policies/`, JEA `.psrc` imports), and the decision for
//! one operation of one principal on one host.
//!
//! Pure: no I/O, no clock, no tokio (the gateway's `policy` module reads directories and
//! hands this crate [`PolicySource`]s). The gateway converts its codecs' output into the input types
//! below; this module never imports `wsman` or `psrp`. Deny wins over allow, no matching
//! role means deny, and anything that cannot be analysed is denied with a reason that
//! names it.
// The pure tier: no `std`, so the file system, the network, the environment, processes
// and the clock do not exist here (tests link `std` for their fixtures).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

/// What `std`'s prelude would bring, from `alloc`.
#[allow(unused_imports, reason = "a prelude: each module uses part of it")]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

use crate::prelude::*;

mod analyse;
mod ansible;
mod bind;
#[cfg(test)]
mod bind_tests;
mod builtin;
mod check;
mod cmdline;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod decoded_tests;
mod deny;
mod engine;
#[cfg(test)]
mod expr_tests;
mod file;
mod lint;
pub mod metadata;
#[cfg(test)]
mod metadata_tests;
mod pattern;
mod program;
#[cfg(test)]
mod program_tests;
mod psrc;
#[cfg(test)]
mod redteam;
mod remote;
mod role;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod test_ops;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
pub mod trust;
#[cfg(test)]
mod trust_tests;

pub use ansible::{payload_len as ansible_payload_len, result_of as ansible_result, ModuleResult};
pub use engine::{stdin_complete_len, Engine, PolicySource, StdinKind};
pub use file::Language;
pub use lint::{lint_sources, LintFinding, Severity};
pub use trust::{trusted_dirs, TrustedDir, TrustedFile};

/// The authenticated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// User name (UPN, e-mail or account name), compared case-insensitively.
    pub user: String,
    /// Group names, compared case-insensitively.
    pub groups: Vec<String>,
}

/// The target host as the inventory describes it.
#[derive(Debug, Clone, Copy)]
pub struct HostRef<'a> {
    /// Inventory name.
    pub name: &'a str,
    /// Inventory labels.
    pub labels: &'a [String],
}

/// The kind of shell being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind<'a> {
    /// A WinRS cmd shell.
    Cmd,
    /// A PSRP runspace pool on the named session configuration
    /// (`Microsoft.PowerShell`, a JEA endpoint name, ...).
    Psrp {
        /// The configuration name from the resource URI.
        configuration: &'a str,
    },
}

/// One operation to decide on.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// Creating a shell.
    OpenShell {
        /// What kind.
        kind: ShellKind<'a>,
    },
    /// A WinRS `rsp:Command`: `command` and `arguments` are `rsp:Command` and the
    /// `rsp:Arguments` elements; `skip_cmd_shell` is the `WINRS_SKIP_CMD_SHELL` option.
    CmdLine {
        /// `rsp:Command`.
        command: &'a str,
        /// `rsp:Arguments`, in order.
        arguments: &'a [String],
        /// `WINRS_SKIP_CMD_SHELL`: when false, cmd.exe interprets the line.
        skip_cmd_shell: bool,
    },
    /// Data sent to the stdin of a running command. `program` is the command line that
    /// started it (Command and Arguments joined by spaces). `data` must hold complete
    /// lines: see [`stdin_complete_len`] (the caller buffers a partial line until its
    /// line break or the stream's end).
    CmdStdin {
        /// The command line that started the program.
        program: &'a str,
        /// Decoded stdin text.
        data: &'a str,
    },
    /// A PSRP CREATE_PIPELINE.
    Pipeline(&'a Invocation),
    /// A PSRP CREATE_PIPELINE whose input the decision depends on
    /// ([`Engine::pipeline_reads_code`]), with its input so far: the string objects
    /// joined by line breaks.
    PipelineWithInput {
        /// The pipeline.
        pipeline: &'a Invocation,
        /// Its input as text.
        input: &'a str,
    },
    /// A PSRP GET_COMMAND_METADATA with its `Name` values.
    CommandMetadata {
        /// Requested command names or wildcards.
        names: &'a [String],
    },
}

/// The commands of a PSRP pipeline: `Cmds` followed by each `ExtraCmds` statement, with
/// the duplicate of the first statement removed by the caller or not (both are judged).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    /// Statements, each a pipeline of commands.
    pub statements: Vec<Vec<InvokedCommand>>,
    /// The client sends input to the pipeline (CREATE_PIPELINE's `NoInput` is false):
    /// its objects reach the first command's pipeline-bound parameters.
    pub client_input: bool,
}

/// One PSRP command object.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokedCommand {
    /// `Cmd`: a command name, or script text when `is_script`.
    pub name: String,
    /// `IsScript`.
    pub is_script: bool,
    /// `Args`, in order.
    pub args: Vec<InvokedArg>,
}

/// One PSRP argument.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokedArg {
    /// `N`: the parameter name, or `None` for a positional argument.
    pub name: Option<String>,
    /// `V`.
    pub value: ArgValue,
}

/// A PSRP argument value, reduced to what policy can judge.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// `S` (and other text-like primitives).
    String(String),
    /// Any numeric primitive, as decimal text.
    Number(String),
    /// `B`.
    Bool(bool),
    /// `Nil`.
    Null,
    /// `LST` / `IE` / arrays.
    List(Vec<ArgValue>),
    /// A ScriptBlock object, with its text.
    ScriptBlock(String),
    /// `SS`: a SecureString (never decrypted).
    Secure,
    /// Anything else, described by its type name.
    Other(String),
}

/// The outcome of [`Engine::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the named role.
    Allow {
        /// The role that allowed it.
        role: String,
    },
    /// Denied.
    Deny {
        /// Why, for the audit log and the operator (not for the client).
        reason: String,
        /// The deny rule that matched, when one did.
        rule: Option<String>,
    },
}

/// Code an operation carried in another form, as the engine unwrapped it to judge it:
/// the script of `-EncodedCommand`, the string of `Invoke-Expression`, the line of
/// `cmd /c`, the stdin of an interpreter. For the audit record, beside the raw form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCode {
    /// Where it came from: `EncodedCommand`, `powershell -Command`, `cmd /c`,
    /// `Invoke-Expression`, `Invoke-Command`, `Start-Process`, `PowerShell stdin`,
    /// `cmd stdin`.
    pub via: String,
    /// The decoded text, cut to [`DECODED_TEXT_CAP`] bytes (at a character boundary).
    pub text: String,
    /// True when `text` was cut.
    pub truncated: bool,
}

/// Longest decoded text kept per [`DecodedCode`], in bytes.
pub const DECODED_TEXT_CAP: usize = 16 * 1024;
/// Most decoded texts kept per operation (nested code is recorded outermost first).
pub const DECODED_MAX: usize = 16;

/// A [`Decision`] with the code the engine decoded to reach it
/// ([`Engine::decide_with_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The decision, as [`Engine::decide`] returns it.
    pub decision: Decision,
    /// Decoded code, outermost first, without duplicates; empty when the operation
    /// carried none.
    pub decoded: Vec<DecodedCode>,
    /// Ansible modules the operation runs (identified by their trusted code), for the
    /// record; empty for anything else.
    pub modules: Vec<ModuleRun>,
}

/// An Ansible module found in an operation, as the record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRun {
    /// Fully qualified name from the trusted file its code is (`ansible.windows.win_ping`).
    pub name: String,
    /// Its arguments as JSON, Ansible's own `_ansible_*` settings left out, values of
    /// `no_log` runs and of password-like arguments replaced by `********`.
    pub args: String,
    /// Ansible's check mode (`--check`): the module reports, changes nothing.
    pub check_mode: bool,
    /// The user Ansible's become wrapper runs it as, when it does.
    pub become_user: Option<String>,
}

// === impl Decision ===

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Errors loading or validating policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// A TOML file does not parse or has unknown fields.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A role is invalid.
    #[error("{path}: role '{role}': {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The role name.
        role: String,
        /// What is wrong.
        message: String,
    },
    /// A JEA role capability file could not be imported.
    #[error("{path}: {message}")]
    Psrc {
        /// The file.
        path: String,
        /// What is wrong (byte offset for syntax errors).
        message: String,
    },
    /// Two roles share a name.
    #[error("role '{role}' is defined in both {first} and {second}")]
    DuplicateRole {
        /// The name.
        role: String,
        /// First file.
        first: String,
        /// Second file.
        second: String,
    },
}
