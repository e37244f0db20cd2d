#!/usr/bin/env bash
# Runs hopgate's whole test suite: installs the real peers the tests drive (Python clients
# and stand-in host, the Go winrm client, rsyslog, Heimdal; scripts/install-test-deps.sh)
# and then `cargo test`. Safe to run repeatedly: it installs only what is missing. Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-test-deps.sh

# The tests cover the optional `delegate` backend method too (Kerberos constrained
# delegation; tests/e2e/delegate.rs), and every crate of the workspace (the pure crates
# under crates/ have their own unit tests).
exec cargo test --workspace --features hopgate/delegate "$@"
