#!/usr/bin/env bash
# Private Heimdal KDC for the Kerberos tests (recipe: ../shared/docs/KERBEROS.md).
#
#   heimdal.sh install
#       Unpacks heimdal-kdc and heimdal-clients (apt-get download + dpkg-deb -x, never
#       installed: they conflict with MIT's krb5-user) into $HOPGATE_HEIMDAL_ROOT
#       (default /var/tmp/hopgate-heimdal) unless already there. Needs the Heimdal libraries
#       (scripts/test.sh installs them). Prints the root.
#   heimdal.sh realm DIR REALM PORT
#       Writes DIR/krb5.conf for a KDC on 127.0.0.1:PORT and creates the realm database.
#       Principals come from the environment (space-separated lists):
#         KDC_USERS="name:password ..."   user principals with passwords
#         KDC_SERVICES="HTTP/host ..."     service principals with random keys, each exported
#                                          to DIR/<service with / replaced by _>.keytab
#         KDC_DELEGATE="HTTP/gw=HTTP/backend,HTTP/other ..."  trusted-for-delegation plus the
#                                          constrained-delegation list of a service
#         KDC_MAX_LIFE="alice=15s HTTP/gw=15s ..."  short maximum ticket lifetimes (expiry tests)
#       Then run: ROOT/usr/lib/heimdal-servers/kdc --config-file=DIR/krb5.conf
#                 --addresses=127.0.0.1 --ports=PORT
# Idempotent and quiet on success; everything goes to loopback only.
set -euo pipefail

ROOT="${HOPGATE_HEIMDAL_ROOT:-/var/tmp/hopgate-heimdal}"
KDC_BIN="$ROOT/usr/lib/heimdal-servers/kdc"

install_heimdal() {
    if [ -x "$KDC_BIN" ] && [ -x "$ROOT/usr/bin/kadmin.heimdal" ] && [ -x "$ROOT/usr/sbin/kstash" ]; then
        echo "$ROOT"
        return 0
    fi
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    (cd "$tmp" && apt-get download heimdal-kdc heimdal-clients >"$tmp/apt.log" 2>&1) || {
        cat "$tmp/apt.log" >&2
        echo "heimdal.sh: apt-get download heimdal-kdc heimdal-clients failed (apt-get update?)" >&2
        return 1
    }
    mkdir -p "$ROOT.partial"
    for deb in "$tmp"/heimdal-*.deb; do dpkg-deb -x "$deb" "$ROOT.partial"; done
    rm -rf "$ROOT"
    mv "$ROOT.partial" "$ROOT"
    echo "$ROOT"
}

make_realm() {
    local dir="$1" realm="$2" port="$3"
    install_heimdal >/dev/null
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local domain
    domain="$(echo "$realm" | tr '[:upper:]' '[:lower:]')"
    # Heimdal's parser wants each brace block over several lines.
    cat >"$dir/krb5.conf" <<EOF
[libdefaults]
	default_realm = $realm
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	forwardable = true
	udp_preference_limit = 1
[realms]
	$realm = {
		kdc = 127.0.0.1:$port
	}
[domain_realm]
	.$domain = $realm
[kdc]
	database = {
		dbname = $dir/heimdal
		realm = $realm
		mkey_file = $dir/m-key
		log_file = $dir/iprop.log
		acl_file = $dir/kadmind.acl
	}
	addresses = 127.0.0.1
	ports = $port
[logging]
	kdc = FILE:$dir/kdc.log
EOF
    : >"$dir/kadmind.acl"
    export KRB5_CONFIG="$dir/krb5.conf"
    local kadmin=("$ROOT/usr/bin/kadmin.heimdal" -l)
    "$ROOT/usr/sbin/kstash" --random-key -k "$dir/m-key" >/dev/null 2>&1
    "${kadmin[@]}" init --realm-max-ticket-life=1day --realm-max-renewable-life=1week "$realm"
    local u name pw svc file entry target
    for u in ${KDC_USERS:-}; do
        name="${u%%:*}"
        pw="${u#*:}"
        "${kadmin[@]}" add --password="$pw" --use-defaults "$name"
    done
    for svc in ${KDC_SERVICES:-}; do
        "${kadmin[@]}" add --random-key --use-defaults "$svc"
        file="$dir/$(echo "$svc" | tr '/' '_').keytab"
        "${kadmin[@]}" ext_keytab -k "$file" "$svc"
    done
    for entry in ${KDC_DELEGATE:-}; do
        svc="${entry%%=*}"
        "${kadmin[@]}" modify --attributes=+trusted-for-delegation "$svc"
        local args=()
        for target in $(echo "${entry#*=}" | tr ',' ' '); do
            args+=("--constrained-delegation=$target@$realm")
        done
        "${kadmin[@]}" modify "${args[@]}" "$svc"
    done
    for entry in ${KDC_MAX_LIFE:-}; do
        "${kadmin[@]}" modify --max-ticket-life="${entry#*=}" "${entry%%=*}"
    done
}

case "${1:-}" in
    install) install_heimdal ;;
    realm)
        [ $# -eq 4 ] || { echo "usage: heimdal.sh realm DIR REALM PORT" >&2; exit 64; }
        make_realm "$2" "$3" "$4"
        ;;
    *)
        echo "usage: heimdal.sh install | realm DIR REALM PORT" >&2
        exit 64
        ;;
esac
