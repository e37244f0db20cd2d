#!/usr/bin/env bash
# Self-test of the stand-in Windows host WITHOUT the gateway: real third-party clients
# (pywinrm, pypsrp, Go masterzen/winrm) talk straight to tests/standin/host.py.
#
#   bash tests/standin/selftest.sh            (needs tests/requirements.txt installed, and
#                                              golang-go golang-github-masterzen-winrm-dev)
#
# Host A: http + NTLM/Negotiate with WinRM message encryption. Host B: https + Basic with a
# self-signed certificate made here with openssl. Prints "N passed, M failed" and exits
# non-zero when anything failed. Only loopback is used.
set -u

HERE="$(cd "$(dirname "$0")" && pwd)"
CLIENTS="$HERE/../clients"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/standin-selftest.XXXXXX")"
PASS=0
FAIL=0
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    if [ "${KEEP_WORK:-0}" = "1" ]; then
        echo "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '     %s\n' "$2" | head -c 2000 && echo; }

# check NAME PYTHON_EXPR -- command...
# Runs the command, parses its stdout as JSON into `r` (rc in `rc`) and evaluates the expression.
check() {
    local name="$1" expr="$2"
    shift 3
    local out rc
    out="$("$@" 2>"$WORK/last.err")"
    rc=$?
    if python3 - "$expr" "$rc" "$out" <<'EOF'
import json, sys
expr, rc, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    r = json.loads(out)
except ValueError:
    print("not JSON:", out[:500]); sys.exit(1)
try:
    good = eval(expr, {"r": r, "rc": rc})
except Exception as exc:
    print("check raised", repr(exc), out[:1000]); sys.exit(1)
if not good:
    print("rc=%d out=%s" % (rc, out[:1500])); sys.exit(1)
EOF
    then ok "$name"; else bad "$name" "$(tail -5 "$WORK/last.err")"; fi
}

# start_host NAME args... : starts host.py, waits for "ready port=N", sets PORT
start_host() {
    local name="$1"
    shift
    python3 "$HERE/host.py" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "${name}_PID=$pid"
    for _ in $(seq 1 100); do
        if grep -q '^ready port=' "$WORK/$name.out" 2>/dev/null; then
            PORT="$(sed -n 's/^ready port=\([0-9]*\)$/\1/p' "$WORK/$name.out")"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "host $name did not start:"; cat "$WORK/$name.err"
    exit 1
}

# --- setup ------------------------------------------------------------------------------
cat >"$WORK/users.txt" <<'EOF'
STANDIN:alice:Passw0rd!
:alice:Passw0rd!
VM:alice:Passw0rd!
STANDIN:bob:B0bPassw0rd!
EOF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/host.key" -out "$WORK/host.crt" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 \
    || { echo "openssl failed"; exit 1; }

# A CA for client certificates and alice's certificate (UPN in the SAN, as Windows maps it).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.crt" -days 2 \
    -subj "/CN=Stand-in client CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1 || { echo "openssl ca failed"; exit 1; }
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/alice.key" -out "$WORK/alice.csr" -subj "/CN=alice" \
    >/dev/null 2>&1 || { echo "openssl csr failed"; exit 1; }
printf 'subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@standin.test\nextendedKeyUsage=clientAuth\n' \
    >"$WORK/alice.ext"
openssl x509 -req -in "$WORK/alice.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
    -out "$WORK/alice.crt" -days 2 -extfile "$WORK/alice.ext" >/dev/null 2>&1 || { echo "openssl sign failed"; exit 1; }

start_host A --port 0 --scheme http --auth ntlm --users "$WORK/users.txt" --log "$WORK/a.jsonl" --hostname WIN-A
PORT_A=$PORT
start_host B --port 0 --scheme https --cert "$WORK/host.crt" --key "$WORK/host.key" --auth basic \
    --users "$WORK/users.txt" --log "$WORK/b.jsonl" --hostname WIN-B
PORT_B=$PORT
start_host C --port 0 --scheme http --auth credssp --users "$WORK/users.txt" --log "$WORK/c.jsonl" --hostname WIN-C
PORT_C=$PORT
start_host D --port 0 --scheme https --cert "$WORK/host.crt" --key "$WORK/host.key" --auth certificate \
    --client-ca "$WORK/ca.crt" --users "$WORK/users.txt" --log "$WORK/d.jsonl" --hostname WIN-D
PORT_D=$PORT
echo "hosts: A http+ntlm $PORT_A, B https+basic $PORT_B, C http+credssp $PORT_C, D https+certificate $PORT_D; work dir $WORK"

GO_CLIENT=""
if "$CLIENTS/go/build.sh" "$WORK/bin" >"$WORK/go-build.log" 2>&1; then
    GO_CLIENT="$WORK/bin/winrm_client"
    ok "go client builds"
else
    bad "go client builds" "$(tail -5 "$WORK/go-build.log")"
fi

PYWINRM=(python3 "$CLIENTS/pywinrm_client.py")
PYPSRP=(python3 "$CLIENTS/pypsrp_client.py")
A_NTLM=(--endpoint "http://127.0.0.1:$PORT_A/wsman/WIN-A" --transport ntlm --user alice --password 'Passw0rd!')
A_PSRP=(--server 127.0.0.1 --port "$PORT_A" --scheme http --path wsman/WIN-A --user alice --password 'Passw0rd!')

# --- pywinrm, NTLM with message encryption ----------------------------------------------
check "pywinrm ntlm hostname" 'rc == 0 and r["stdout"] == "WIN-A\r\n" and r["exit_code"] == 0 and r["stderr"] == ""' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd hostname
check "pywinrm ntlm ipconfig /all" \
    'rc == 0 and r["exit_code"] == 0 and "Windows IP Configuration" in r["stdout"] and "Host Name . . . . . . . . . . . . : WIN-A" in r["stdout"] and "Physical Address" in r["stdout"]' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd ipconfig --arg /all
check "pywinrm ntlm whoami" 'rc == 0 and r["stdout"] == "win-a\\alice\r\n"' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd whoami
check "pywinrm stderr + exit 1" \
    'rc == 0 and r["exit_code"] == 1 and r["stderr"] == "The system cannot find the file specified.\r\n"' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd type --arg nosuchfile
check "pywinrm unknown command" \
    'rc == 0 and r["exit_code"] == 1 and r["stderr"].startswith("'"'"'frobnicate'"'"' is not recognized as an internal or external command")' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd frobnicate
check "pywinrm exit 7" 'rc == 0 and r["exit_code"] == 7' -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd exit --arg 7
check "pywinrm run_ps (-encodedcommand)" \
    'rc == 0 and r["exit_code"] == 0 and "Running  Spooler            Print Spooler" in r["stdout"]' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --ps 'Get-Service -Name Spooler'
check "pywinrm ping -t stopped by ctrl_c" \
    'rc == 0 and r["stdout"].count("Reply from 127.0.0.1") >= 2 and "Control-C" in r["stdout"] and r["exit_code"] == -1073741510' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd ping --arg=-t --arg 127.0.0.1 --stop-after 2.5
check "pywinrm silent command across Receive timeouts" 'rc == 0 and r["exit_code"] == 0' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --operation-timeout 1 --read-timeout 10 \
    --cmd powershell --arg=-Command --arg 'Start-Sleep -Seconds 3'
check "pywinrm stdin (cmd reads commands)" 'rc == 0 and "from-stdin" in r["stdout"]' \
    -- "${PYWINRM[@]}" "${A_NTLM[@]}" --cmd cmd --stdin $'echo from-stdin\r\nexit 0\r\n'
check "pywinrm wrong password rejected" 'rc == 3' \
    -- "${PYWINRM[@]}" --endpoint "http://127.0.0.1:$PORT_A/wsman" --transport ntlm --user alice --password wrong --cmd hostname

# --- pypsrp, NTLM / Negotiate with message encryption -----------------------------------
check "pypsrp execute_cmd" 'rc == 0 and r["stdout"] == "WIN-A\r\n" and r["exit_code"] == 0' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmd hostname
check "pypsrp execute_ps" \
    'rc == 0 and r["had_errors"] is False and "Running  WinRM              Windows Remote Management (WS-Management)" in r["stdout"]' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --ps 'Get-Service -Name WinRM'
check "pypsrp execute_ps (negotiate/SPNEGO)" 'rc == 0 and r["stdout"].strip() == "WIN-A" and r["had_errors"] is False' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth negotiate --ps 'hostname'
check "pypsrp RunspacePool Get-Service -Name Spooler" \
    'rc == 0 and r["had_errors"] is False and len(r["output"]) == 1 and r["output"][0]["properties"]["Name"] == "Spooler" and r["output"][0]["properties"]["Status"]["to_string"] == "Running" and r["output"][0]["properties"]["DisplayName"] == "Print Spooler" and r["output"][0]["type_names"][0] == "System.ServiceProcess.ServiceController"' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmdlet Get-Service --param Name=Spooler
check "pypsrp unknown cmdlet fails the pipeline" \
    'rc == 0 and r["had_errors"] is True and r["state"] == 5 and "is not recognized as the name of a cmdlet" in r["errors"][0]' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmdlet Invoke-Frobnication
check "pypsrp Stop-Computer runs silently" 'rc == 0 and r["had_errors"] is False and r["output"] == []' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmdlet Stop-Computer --param Force

check "pypsrp add_script with a non-terminating error" \
    'rc == 0 and r["output"] == ["WIN-A"] and r["errors"] == ["Cannot find any service with service name '"'"'nosuch'"'"'."] and r["state"] == 4' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --script 'Get-Service -Name nosuch; hostname'
check "pypsrp two statements" \
    'rc == 0 and r["output"][0]["properties"]["ProcessName"] == "svchost" and r["output"][1] == "WIN-A"' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --pipeline '[[{"name": "Get-Process", "params": {"Name": "svchost"}}], [{"name": "hostname"}]]'
check "pypsrp pipeline input" 'rc == 0 and r["output"][:2] == ["in-1", "in-2"]' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmdlet Out-String --param Stream --input in-1 --input in-2
check "pypsrp stop a running pipeline" 'rc == 0 and r["state"] == 3' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --cmdlet Start-Sleep --param Seconds=60 --stop-after 1
check "pypsrp GET_COMMAND_METADATA" 'rc == 0 and [c["name"] for c in r["commands"]] == ["Get-Service"]' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --metadata 'Get-Serv*'

check "pypsrp ntlm without encryption over http refused" 'rc == 3' \
    -- "${PYPSRP[@]}" "${A_PSRP[@]}" --auth ntlm --encryption never --cmd hostname

# --- Go masterzen/winrm, Basic over https -----------------------------------------------
if [ -n "$GO_CLIENT" ]; then
    check "go basic https hostname" 'rc == 0 and r["stdout"] == "WIN-B\r\n" and r["exit_code"] == 0' \
        -- "$GO_CLIENT" -host 127.0.0.1 -port "$PORT_B" -https -insecure -user alice -password 'Passw0rd!' -cmd hostname
    check "go basic https cmd /c with &" 'rc == 0 and r["stdout"] == "one\r\ntwo\r\n" and r["exit_code"] == 3' \
        -- "$GO_CLIENT" -host 127.0.0.1 -port "$PORT_B" -https -cacert "$WORK/host.crt" -user 'STANDIN\bob' \
        -password 'B0bPassw0rd!' -cmd 'cmd /c echo one& echo two& exit 3'
    check "go basic wrong password" 'rc == 3 and r["http_status"] == 401' \
        -- "$GO_CLIENT" -host 127.0.0.1 -port "$PORT_B" -https -insecure -user alice -password nope -cmd hostname
fi

# --- CredSSP with message encryption (16 KiB chunks for large bodies) -------------------
BIG='ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all & ipconfig /all'
check "pywinrm credssp large output" \
    'rc == 0 and r["exit_code"] == 0 and r["stdout"].count("Windows IP Configuration") == 14' \
    -- "${PYWINRM[@]}" --endpoint "http://127.0.0.1:$PORT_C/wsman" --transport credssp --user 'STANDIN\alice' \
    --password 'Passw0rd!' --cmd "$BIG"
check "pypsrp credssp execute_ps whoami" 'rc == 0 and r["stdout"].strip() == "standin\\alice"' \
    -- "${PYPSRP[@]}" --server 127.0.0.1 --port "$PORT_C" --scheme http --auth credssp --user 'STANDIN\alice' \
    --password 'Passw0rd!' --ps whoami

# --- TLS client certificate (secprofile/https/mutual header) -----------------------------
check "pywinrm certificate whoami" 'rc == 0 and r["stdout"] == "standin\\alice\r\n"' \
    -- "${PYWINRM[@]}" --endpoint "https://127.0.0.1:$PORT_D/wsman/WIN-D" --transport certificate \
    --cert "$WORK/alice.crt" --key "$WORK/alice.key" --ca "$WORK/host.crt" --cmd whoami
check "pypsrp certificate Get-Service" \
    'rc == 0 and [o["properties"]["Name"] for o in r["output"]] == ["Spooler", "WinRM"]' \
    -- "${PYPSRP[@]}" --server 127.0.0.1 --port "$PORT_D" --path wsman/WIN-D --auth certificate \
    --cert "$WORK/alice.crt" --key "$WORK/alice.key" --ca "$WORK/host.crt" --cmdlet Get-Service --param Name=Spooler,WinRM
if [ -n "$GO_CLIENT" ]; then
    check "go certificate hostname" 'rc == 0 and r["stdout"] == "WIN-D\r\n"' \
        -- "$GO_CLIENT" -host 127.0.0.1 -port "$PORT_D" -https -cacert "$WORK/host.crt" \
        -cert "$WORK/alice.crt" -key "$WORK/alice.key" -cmd hostname
    # With TLS 1.3 the client may see the refusal as "bad certificate" or as a broken pipe.
    check "go certificate from an unknown CA refused at TLS" 'rc == 1 and r["type"] == "run"' \
        -- "$GO_CLIENT" -host 127.0.0.1 -port "$PORT_D" -https -cacert "$WORK/host.crt" \
        -cert "$WORK/host.crt" -key "$WORK/host.key" -cmd hostname
fi

# --- plaintext request without credentials is refused and logged ------------------------
status="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/soap+xml;charset=UTF-8' \
    --data '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>' "http://127.0.0.1:$PORT_A/wsman")"
if [ "$status" = "401" ]; then ok "anonymous POST gets 401"; else bad "anonymous POST gets 401" "status $status"; fi

# --- request logs ------------------------------------------------------------------------
if python3 - "$WORK/a.jsonl" "$WORK/b.jsonl" "$WORK/d.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
d = [json.loads(l) for l in open(sys.argv[3])]
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)
keys = {"ts", "conn", "method", "path", "auth_scheme", "user", "status", "action", "resource_uri", "shell_id",
        "command_id", "command_line", "stdin", "psrp", "signal"}
need(all(keys <= set(e) for e in a + b), "every entry has the documented fields")
lines = [e["command_line"] for e in a if e["command_line"]]
need("hostname" in lines, "A logged command_line hostname")
need("ipconfig /all" in lines, "A logged command_line 'ipconfig /all'")
need(any(l.startswith("powershell -encodedcommand ") for l in lines), "A logged the run_ps command line")
need(any(e["stdin"] and "echo from-stdin" in e["stdin"] for e in a), "A logged decoded stdin")
ok_cmds = [e for e in a if e["status"] == 200 and e["command_line"]]
need(all(e["user"] == "alice" and e["encrypted"] for e in ok_cmds), "A commands ran as alice, encrypted")
need(any(e["status"] == 401 and e["user"] is None for e in a), "A logged 401 challenge legs without a user")
need(any(e["status"] == 401 and e["error"] and "rejected" in e["error"] for e in a), "A logged the bad password")
need(any(e["fault"] and e["fault"].startswith("w:TimedOut 2150858793") for e in a), "A logged a w:TimedOut Receive")
refused = [e for e in a if e["error"] == "unencrypted body refused"]
need(refused and all(e["status"] == 401 and e["user"] == "alice" and e["action"] is None for e in refused),
     "A refused the plaintext NTLM body before reading the envelope")
sig = [e["signal"] for e in a if e["signal"]]
need(any(s.endswith("/ctrl_c") for s in sig) and any(s.endswith("/terminate") for s in sig), "A logged ctrl_c and terminate")
pipes = [p for e in a for p in e["psrp"] if p["type"] == "CREATE_PIPELINE"]
gsv = [p for p in pipes if p["commands"][0][0]["name"] == "Get-Service"]
need(any(p["commands"][0][0]["args"] == [{"name": "Name", "value": "Spooler"}] for p in gsv),
     "A logged CREATE_PIPELINE Get-Service -Name Spooler")
iex = [p for p in pipes if p["commands"][0][0]["name"] == "Invoke-Expression"]
need(any(p["commands"][0][0]["args"] == [{"name": "Command", "value": "Get-Service -Name WinRM"}]
         and p["commands"][0][1]["name"] == "Out-String" for p in iex),
     "A logged execute_ps as Invoke-Expression | Out-String")
need(any(p["commands"][0][0]["name"] == "Invoke-Frobnication" for p in pipes), "A logged the unknown cmdlet")
need(any(p["type"] == "INIT_RUNSPACEPOOL" for e in a for p in e["psrp"]), "A logged INIT_RUNSPACEPOOL")
need(any(p["type"] == "PIPELINE_INPUT" and p.get("data") == "in-1" for e in a for p in e["psrp"]), "A logged PIPELINE_INPUT")
need(any(p["type"] == "GET_COMMAND_METADATA" and p["names"] == ["Get-Serv*"] for e in a for p in e["psrp"]),
     "A logged GET_COMMAND_METADATA")
need(any(p["commands"][0][0]["is_script"] and p["commands"][0][0]["name"] == "Get-Service -Name nosuch; hostname"
         for p in pipes), "A logged the script with is_script")
need(any(len(p["commands"]) == 2 for p in pipes), "A logged two statements")
need(any(s.endswith("powershell/signal/ctrl_c") for s in sig), "A logged the PSRP ctrl_c")
need(any(e["path"] == "/wsman/WIN-A" for e in a), "A logged the custom path")
need(any(e["auth_scheme"] == "Negotiate" and e["status"] == 401 for e in a), "A logged Negotiate legs")
need(all(e["status"] in (200, 401, 500) for e in a), "A statuses are 200/401/500")
need(not any("Passw0rd" in json.dumps(e) for e in a + b), "no password in any log line")
blines = [e for e in b if e["command_line"] == "hostname"]
need(any(e["user"] == "STANDIN\\alice" and e["auth_scheme"] == "Basic" for e in blines), "B logged hostname as STANDIN\\alice")
need(any(e["command_line"] == "cmd /c echo one& echo two& exit 3" and e["user"] == "STANDIN\\bob" for e in b),
     "B logged bob's whole command line")
need(any(e["status"] == 401 and e["auth_scheme"] == "Basic" for e in b), "B logged the rejected Basic")
need(all(e["user"] == "alice@standin.test" and e["auth_scheme"] == "Certificate" for e in d if e["status"] == 200),
     "D logged certificate requests as alice@standin.test")
need(any(e["method"] is None and e["error"] and e["error"].startswith("tls handshake failed") for e in d),
     "D logged the refused TLS handshake")
if problems:
    print("\n".join("log check failed: " + p for p in problems))
    sys.exit(1)
EOF
then ok "request logs"; else bad "request logs"; fi

# --- unit tests of the pieces -------------------------------------------------------------
if python3 -m unittest "$HERE/test_standin.py" >"$WORK/unit.log" 2>&1; then
    ok "unit tests: $(grep -E '^Ran [0-9]+ tests' "$WORK/unit.log")"
else
    bad "unit tests" "$(tail -20 "$WORK/unit.log")"
fi

# --- replay of real Windows traffic (pypsrp corpus) --------------------------------------
if python3 "$HERE/corpus_replay.py" >"$WORK/replay.log" 2>&1; then
    ok "corpus replay: $(tail -1 "$WORK/replay.log")"
else
    bad "corpus replay" "$(grep -A3 FAIL "$WORK/replay.log" | head -20; tail -1 "$WORK/replay.log")"
fi

# --- clean exit on SIGTERM ---------------------------------------------------------------
for name in A B C D; do
    pid_var="${name}_PID"
    pid="${!pid_var}"
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        bad "host $name exits on SIGTERM"
    else
        wait "$pid"
        code=$?
        if [ "$code" = "0" ]; then ok "host $name exits 0 on SIGTERM"; else bad "host $name exits 0 on SIGTERM" "exit $code"; fi
    fi
done
if [ -s "$WORK/A.err" ] || [ -s "$WORK/B.err" ] || [ -s "$WORK/C.err" ] || [ -s "$WORK/D.err" ]; then
    bad "hosts wrote nothing to stderr" "$(head -20 "$WORK/A.err" "$WORK/B.err" "$WORK/C.err" "$WORK/D.err")"
else
    ok "hosts wrote nothing to stderr"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = "0" ]
