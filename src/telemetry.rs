//! tracing setup. Logs go to stderr, never stdout: stdout is for command output, the demo's
//! instructions and, with `[audit] stdout = true`, the audit lines alone (a collector reading
//! stdout must see nothing else). `RUST_LOG` overrides the default filter,
//! `HOPGATE_LOG_FORMAT=json` selects JSON lines for log collectors.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(default_filter: &str) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default_filter);
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

/// The filter from `RUST_LOG` (when set and valid) or `default_filter`, with the targets
/// that would print secrets switched off whatever the setting.
fn log_filter(rust_log: Option<&str>, default_filter: &str) -> EnvFilter {
    let mut filter = rust_log
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    // sspi's CredSSP code traces its arguments and results at debug/trace level, which
    // includes the plaintext TSCredentials (the delegated password).
    if let Ok(directive) = "sspi::credssp=off".parse() {
        filter = filter.add_directive(directive);
    }
    filter
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sspi_credssp_traces_stay_off_even_when_everything_is_traced() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter(Some("trace"), "info"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "sspi::credssp::ts_request", "tscredentials-plaintext");
            tracing::debug!(target: "sspi::credssp", "encrypt-message-buffers");
            tracing::trace!(target: "sspi::ntlm", "ntlm-visible");
            tracing::trace!(target: "hopgate::backend", "hopgate-visible");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("tscredentials-plaintext"), "{text}");
        assert!(!text.contains("encrypt-message-buffers"), "{text}");
        assert!(text.contains("ntlm-visible"), "{text}");
        assert!(text.contains("hopgate-visible"), "{text}");
    }

    #[test]
    fn an_invalid_rust_log_falls_back_to_the_default() {
        let filter = log_filter(Some("=[bad"), "warn");
        assert!(filter.to_string().contains("warn"), "{filter}");
    }
}
