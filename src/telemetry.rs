//! tracing setup. Logs go to stderr, never stdout: stdout is for command output, the demo's
//! instructions and, with `[audit] stdout = true`, the audit lines alone (a collector reading
//! stdout must see nothing else). `RUST_LOG` overrides the default filter,
//! `HOPGATE_LOG_FORMAT=json` selects JSON lines for log collectors.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(default_filter: &str) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // sspi's CredSSP code traces its arguments and results at debug/trace level, which
    // includes the plaintext TSCredentials (the delegated password): never let a RUST_LOG
    // setting turn that on.
    if let Ok(directive) = "sspi::credssp=off".parse() {
        filter = filter.add_directive(directive);
    }
    let json = std::env::var("HOPGATE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
