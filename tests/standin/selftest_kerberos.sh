#!/usr/bin/env bash
# Kerberos self-test of the stand-in host, WITHOUT the gateway: a private Heimdal KDC on a free
# loopback port (recipe in ../shared/docs/KERBEROS.md), the stand-in accepting Kerberos through
# its Negotiate acceptor with a keytab, and pypsrp authenticating as alice@STANDIN.TEST with
# WinRM message encryption over http.
#
# Needs (Debian): libkrb5-dev krb5-user libkdc2-heimdal libhdb9-heimdal libkadm5srv8-heimdal
#   libkadm5clnt7-heimdal libsl0-heimdal libotp0-heimdal libkafs0-heimdal libgssapi3-heimdal
#   libhx509-5-heimdal libcap-ng0 libedit2, and `apt-get download heimdal-kdc heimdal-clients`
#   (done here into the temp dir; the packages are unpacked privately, never installed).
# Needs (pip): pyspnego[kerberos] (python-gssapi).
# Prints "N passed, M failed"; exit non-zero on failure.
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
CLIENTS="$HERE/../clients"
K="$(mktemp -d "${TMPDIR:-/tmp}/standin-krb.XXXXXX")"
PASS=0
FAIL=0
PIDS=()
REALM=STANDIN.TEST
SPN_HOST=win-k.standin.test

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ "${KEEP_WORK:-0}" = "1" ]; then echo "work dir kept: $K"; else rm -rf "$K"; fi
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '     %s\n' "$2"; }
die() { echo "setup failed: $1"; echo "0 passed, 1 failed"; exit 1; }

python3 -c 'import gssapi' 2>/dev/null || die "python-gssapi missing (pip install 'pyspnego[kerberos]')"
command -v kinit >/dev/null || die "kinit missing (apt-get install krb5-user)"

# --- private Heimdal KDC ---------------------------------------------------------------------
H="$K/heimdal-root"
mkdir -p "$H"
(cd "$K" && apt-get download heimdal-kdc heimdal-clients >"$K/apt.log" 2>&1) || die "apt-get download heimdal-kdc heimdal-clients"
for deb in "$K"/heimdal-*.deb; do dpkg-deb -x "$deb" "$H" || die "dpkg-deb -x $deb"; done
KPORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# Heimdal's parser wants each brace block over several lines (a one-line `R = { kdc = x }`
# silently hides the [kdc] database settings).
cat >"$K/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	forwardable = true
	udp_preference_limit = 1
[realms]
	$REALM = {
		kdc = 127.0.0.1:$KPORT
	}
[domain_realm]
	.standin.test = $REALM
[kdc]
	database = {
		dbname = $K/heimdal
		realm = $REALM
		mkey_file = $K/m-key
		log_file = $K/iprop.log
		acl_file = $K/kadmind.acl
	}
	addresses = 127.0.0.1
	ports = $KPORT
[logging]
	kdc = FILE:$K/kdc.log
EOF
export KRB5_CONFIG="$K/krb5.conf"
KADMIN=("$H/usr/bin/kadmin.heimdal" -l)
"$H/usr/sbin/kstash" --random-key -k "$K/m-key" >/dev/null 2>&1 || die "kstash"
"${KADMIN[@]}" init --realm-max-ticket-life=1day --realm-max-renewable-life=1week "$REALM" || die "kadmin init"
"${KADMIN[@]}" add --password='Passw0rd!' --use-defaults alice || die "add alice"
for svc in HTTP WSMAN host; do  # a Windows computer account has HOST/, HTTP/ and WSMAN/ SPNs
    "${KADMIN[@]}" add --random-key --use-defaults "$svc/$SPN_HOST" || die "add $svc/$SPN_HOST"
    "${KADMIN[@]}" ext_keytab -k "$K/host.keytab" "$svc/$SPN_HOST" || die "ext_keytab $svc"
done
"$H/usr/lib/heimdal-servers/kdc" --config-file="$K/krb5.conf" --addresses=127.0.0.1 --ports="$KPORT" \
    >"$K/kdc.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $KPORT), 0.2)" 2>/dev/null && break
    sleep 0.1
done
if echo 'Passw0rd!' | kinit -c "FILE:$K/cc" "alice@$REALM" >/dev/null 2>&1; then
    ok "KDC issues alice a TGT"
else
    bad "KDC issues alice a TGT" "$(tail -3 "$K/kdc.out")"
fi

# --- the stand-in with the host keytab ----------------------------------------------------------
printf ':alice:unused-for-kerberos\n' >"$K/users.txt"
python3 "$HERE/host.py" --port 0 --scheme http --auth negotiate --keytab "$K/host.keytab" \
    --users "$K/users.txt" --log "$K/host.jsonl" --hostname WIN-K >"$K/host.out" 2>"$K/host.err" &
HOST_PID=$!
PIDS+=($HOST_PID)
PORT=""
for _ in $(seq 1 100); do
    PORT="$(sed -n 's/^ready port=\([0-9]*\)$/\1/p' "$K/host.out" 2>/dev/null)"
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || die "stand-in did not start: $(cat "$K/host.err")"

run_check() {
    local name="$1" expr="$2"
    shift 2
    local out rc
    out="$("$@" 2>"$K/last.err")"
    rc=$?
    if python3 -c '
import json, sys
r = json.loads(sys.argv[3]); rc = int(sys.argv[2])
sys.exit(0 if eval(sys.argv[1]) else 1)' "$expr" "$rc" "$out" 2>/dev/null; then
        ok "$name"
    else
        bad "$name" "rc=$rc out=${out:0:600} $(tail -2 "$K/last.err")"
    fi
}

PYPSRP=(python3 "$CLIENTS/pypsrp_client.py" --server 127.0.0.1 --port "$PORT" --scheme http --path wsman/WIN-K
    --user "alice@$REALM" --password 'Passw0rd!' --spn-host "$SPN_HOST")
run_check "pypsrp kerberos execute_cmd whoami (encrypted)" 'rc == 0 and r["stdout"] == "standin\\alice\r\n"' \
    "${PYPSRP[@]}" --auth kerberos --cmd whoami
run_check "pypsrp negotiate (Kerberos in SPNEGO, HTTP SPN) execute_ps" \
    'rc == 0 and r["stdout"].strip() == "WIN-K" and r["had_errors"] is False' \
    "${PYPSRP[@]}" --auth negotiate --spn-service HTTP --ps hostname
run_check "pypsrp kerberos wrong password refused" 'rc != 0' \
    python3 "$CLIENTS/pypsrp_client.py" --server 127.0.0.1 --port "$PORT" --scheme http --auth kerberos \
    --user "alice@$REALM" --password wrong --spn-host "$SPN_HOST" --cmd whoami

if python3 - "$K/host.jsonl" "$REALM" <<'EOF'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
realm = sys.argv[2]
done = [e for e in entries if e["status"] == 200 and e["action"]]
ok = done and all(e["user"] == f"alice@{realm}" and e["encrypted"] for e in done)
ok = ok and any(e["command_line"] == "whoami" for e in done)
sys.exit(0 if ok else 1)
EOF
then ok "request log: Kerberos user alice@$REALM, encrypted"; else bad "request log: Kerberos user alice@$REALM, encrypted"; fi

kill -TERM "$HOST_PID"
wait "$HOST_PID" 2>/dev/null
if [ -s "$K/host.err" ]; then bad "stand-in wrote nothing to stderr" "$(head -5 "$K/host.err")"; else ok "stand-in wrote nothing to stderr"; fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = "0" ]
