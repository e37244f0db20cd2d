#!/usr/bin/env bash
# Runs hopgate's whole test suite: installs the real peers the tests drive (Python clients
# and stand-in host, the Go winrm client) and then `cargo test`. Safe to run repeatedly:
# it installs only what is missing. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_pkgs=()
command -v go >/dev/null 2>&1 || apt_pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/masterzen/winrm ] || apt_pkgs+=(golang-github-masterzen-winrm-dev)
command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing Debian packages: ${apt_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

echo "test.sh: checking Python test dependencies"
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt

exec cargo test "$@"
