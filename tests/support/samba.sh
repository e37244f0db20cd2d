#!/usr/bin/env bash
# Samba AD domain controller for the Active Directory test (recipe: ../shared/docs/KERBEROS.md,
# "Samba AD DC"). Needs the Debian packages samba, samba-ad-dc and winbind
# (scripts/install-test-deps.sh installs them) and root: the DC listens on 127.0.0.1:88.
#
#   samba.sh provision DIR
#       Provisions the domain SAMBA.TEST (NetBIOS SAMBA) into DIR/dc, bound to loopback only,
#       with these accounts (passwords below, test-only):
#         alice       the person; her password is never used by the delegation test
#         svcwinrm    a backend account whose password the gateway vaults (auth = kerberos)
#         gwsvc       the gateway, SPN HTTP/gateway.samba.test, trusted for delegation with
#                     protocol transition to HTTP/backend.samba.test only
#         backendsvc  the allowed host, SPN HTTP/backend.samba.test
#         othersvc    a host outside the delegation list, SPN HTTP/other.samba.test
#       and writes DIR/gwsvc.keytab, DIR/HTTP_backend.samba.test.keytab,
#       DIR/HTTP_other.samba.test.keytab and DIR/krb5.conf (KDC 127.0.0.1, TCP only).
#       Then run:
#         samba -s DIR/dc/etc/smb.conf -i --model=single --option='server services=kdc'
#       (the KDC alone is enough: it reads the directory itself; it listens on 88 and 464).
# Quiet on success (samba-tool's output goes to DIR/provision.log, printed on failure).
set -euo pipefail

REALM=SAMBA.TEST

provision() {
    local dir="$1"
    local log="$dir/provision.log"
    mkdir -p "$dir"
    trap 'echo "samba.sh: provisioning failed:" >&2; cat "$log" >&2' ERR
    # --use-rfc2307 is not needed (no unix accounts); DNS off: names here are only SPNs.
    samba-tool domain provision --targetdir="$dir/dc" --realm="$REALM" --domain=SAMBA \
        --server-role=dc --dns-backend=NONE --adminpass='Passw0rd!Adm' --host-name=dc1 \
        --option="interfaces=lo" --option="bind interfaces only=yes" >"$log" 2>&1
    local conf=(-s "$dir/dc/etc/smb.conf")
    {
        samba-tool user add alice 'Passw0rd!A-Nobody-Uses' "${conf[@]}"
        samba-tool user add svcwinrm 'Passw0rd!Svc-WinRM' "${conf[@]}"
        samba-tool user add gwsvc 'Passw0rd!G' "${conf[@]}"
        samba-tool spn add HTTP/gateway.samba.test gwsvc "${conf[@]}"
        samba-tool user add backendsvc 'Passw0rd!B' "${conf[@]}"
        samba-tool spn add HTTP/backend.samba.test backendsvc "${conf[@]}"
        samba-tool user add othersvc 'Passw0rd!O' "${conf[@]}"
        samba-tool spn add HTTP/other.samba.test othersvc "${conf[@]}"
        # Protocol transition (S4U2Self for anyone) + msDS-AllowedToDelegateTo.
        samba-tool delegation for-any-protocol gwsvc on "${conf[@]}"
        samba-tool delegation add-service gwsvc HTTP/backend.samba.test "${conf[@]}"
        samba-tool domain exportkeytab "$dir/gwsvc.keytab" --principal=gwsvc "${conf[@]}"
        samba-tool domain exportkeytab "$dir/HTTP_backend.samba.test.keytab" \
            --principal=HTTP/backend.samba.test "${conf[@]}"
        samba-tool domain exportkeytab "$dir/HTTP_other.samba.test.keytab" \
            --principal=HTTP/other.samba.test "${conf[@]}"
    } >>"$log" 2>&1
    # Tickets carrying a PAC exceed UDP sizes: TCP only.
    cat >"$dir/krb5.conf" <<EOF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 1

[realms]
    $REALM = {
        kdc = 127.0.0.1:88
    }
EOF
    trap - ERR
}

case "${1:-}" in
provision)
    [ $# -eq 2 ] || { echo "usage: samba.sh provision DIR" >&2; exit 2; }
    provision "$2"
    ;;
*)
    echo "usage: samba.sh provision DIR" >&2
    exit 2
    ;;
esac
