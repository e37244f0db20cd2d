//! The `hopgate` binary: everything is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    hopgate::cli::main()
}
