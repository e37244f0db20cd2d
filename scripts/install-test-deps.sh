#!/usr/bin/env bash
# Installs what hopgate's tests and its optional `delegate` feature need: the real peers the
# tests drive (Python clients and stand-in host, the Go winrm client, rsyslog, a private
# Heimdal KDC, a Samba AD DC) and the build dependencies of `--features delegate` (libkrb5-dev,
# libclang-dev). Safe to run repeatedly: it installs only what is missing. scripts/test.sh
# runs it; .ci/run runs it first so clippy can build every feature too.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_pkgs=()
command -v go >/dev/null 2>&1 || apt_pkgs+=(golang-go)
[ -d /usr/share/gocode/src/github.com/masterzen/winrm ] || apt_pkgs+=(golang-github-masterzen-winrm-dev)
command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)
# Kerberos tests: python-gssapi builds against MIT's libkrb5-dev; the private Heimdal KDC
# (tests/support/heimdal.sh) runs on the Heimdal libraries (its kdc package conflicts with
# krb5-user, so heimdal.sh unpacks it privately instead of installing it).
# The `delegate` feature (MIT GSSAPI through the libgssapi crate) builds against
# libkrb5-dev with bindgen, which needs libclang-dev.
# Active Directory test (tests/support/samba.sh): a Samba AD DC (samba, samba-ad-dc, winbind).
# Audit export tests: a real rsyslogd (run unprivileged on a loopback port), gnutls for TLS.
for p in libkrb5-dev libclang-dev krb5-user libkdc2-heimdal libhdb9-heimdal libkadm5srv8-heimdal \
    libkadm5clnt7-heimdal libsl0-heimdal libotp0-heimdal libkafs0-heimdal libgssapi3-heimdal \
    libhx509-5-heimdal libcap-ng0 libedit2 rsyslog rsyslog-gnutls samba samba-ad-dc winbind; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || apt_pkgs+=("$p")
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "test.sh: installing Debian packages: ${apt_pkgs[*]}"
  as_root apt-get update -qq
  # Packages such as samba and rsyslog start their daemons on install, listening on every
  # interface (and samba on port 88, which the AD test needs). The tests start their own,
  # on loopback: deny service starts for the duration of the install (policy-rc.d, which
  # invoke-rc.d and deb-systemd-invoke consult), unless the machine already has a policy.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

echo "test.sh: checking Python test dependencies"
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt

python3 -c 'import gssapi' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check 'pyspnego[kerberos]==0.12.4'
# pywinrm's Kerberos transport (its vendored requests_kerberos) needs pykerberos, built
# against libkrb5-dev like gssapi (tests/e2e/kerberos_signin.rs).
python3 -c 'import kerberos' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check 'pykerberos==1.2.4'

echo "test.sh: checking the private Heimdal KDC"
if [ ! -x "${HOPGATE_HEIMDAL_ROOT:-/var/tmp/hopgate-heimdal}/usr/lib/heimdal-servers/kdc" ]; then
  # apt-get download needs package lists.
  as_root apt-get update -qq
fi
bash tests/support/heimdal.sh install >/dev/null
