#!/usr/bin/env bash
# The pure modules still inside the gateway crate (codecs, the shell inspector) must do no
# I/O, spawn nothing and read no clock (STYLE.md §2); the pure crates under crates/ are
# no_std and checked by the compiler (scripts/check-pure-crates.sh). This greps the
# modules' non-test sources for what would break that, until they move into crates/.
# Policy's directory loader is the one allowed file system reader and lives in load.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
pure=(src/wsman src/psrp src/shell src/xpress src/audit/event.rs src/audit/chain.rs src/audit/export/rfc5424.rs src/metrics.rs)
pattern='tokio::|hyper::|std::net|std::fs|std::process|std::thread|SystemTime|Instant::now|sspi::|crate::(backend|vault|session|listener|proxy|app|authn|audit::sink)'
bad=$(grep -rnE "$pattern" "${pure[@]}" 2>/dev/null \
      | grep -vE '/(tests?|[a-z_]*_tests|test_support)\.rs:|/tests/' || true)
if [ -n "$bad" ]; then
  echo "pure modules must not do I/O or import adapters:"
  echo "$bad"
  exit 1
fi
# wsman and psrp never import each other.
if grep -rn 'crate::psrp' src/wsman >/dev/null 2>&1 || grep -rn 'crate::wsman' src/psrp >/dev/null 2>&1; then
  echo "wsman and psrp must not import each other"
  exit 1
fi
echo "layers ok"
