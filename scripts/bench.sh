#!/usr/bin/env bash
# Gateway overhead, side by side (issue #16): the same emulated host (hopgate testhost,
# HTTPS + Basic, holding idle Receives like Windows) reached directly, through nginx as a
# plain TLS reverse proxy, and through hopgate (client certificate, policy and audit on).
# Targets are alternated in rounds so machine noise falls on all three; the report prints
# each figure's median over the rounds and hopgate's ratios. Loopback only.
#
#   scripts/bench.sh                      # 3 rounds x 10 s, 1 and 16 sessions, 100 KB output
#   ROUNDS=5 SECONDS_PER=20 scripts/bench.sh
#   LONGPOLL=1000 scripts/bench.sh        # also: 1000 sessions holding a 20 s Receive
#   SOAK_MINUTES=30 scripts/bench.sh soak  # hopgate only: valid load with hostile traffic
#                                          # beside it, then the audit chain is verified
#
# Installs nginx (Debian package) when missing. Builds hopgate in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECONDS_PER=${SECONDS_PER:-10}
LONGPOLL=${LONGPOLL:-0}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "bench.sh: installing nginx"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null ||
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# HOPGATE_BIN: an already built binary (e.g. to check this script with a debug build).
if [ -z "${HOPGATE_BIN:-}" ]; then
  cargo build --release --quiet
  target_dir=${CARGO_TARGET_DIR:-target}
  case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
  HOPGATE_BIN=$target_dir/release/hopgate
fi
HG=$HOPGATE_BIN

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOST_PORT=$(free_port); NGINX_PORT=$(free_port); GW_PORT=$(free_port)
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

"$HG" certs --dir "$work" --user alice@hopgate.test >/dev/null
printf 'bench:%s\n' "$PASSWORD" >"$work/users.txt"
chmod 600 "$work/users.txt"

# The emulated host.
"$HG" testhost --listen "127.0.0.1:$HOST_PORT" --https --cert "$work/server.pem" \
  --key "$work/server.key" --users "$work/users.txt" --hostname BENCH-HOST --hold-receives \
  >"$work/testhost.log" 2>&1 &
pids+=($!)

# nginx: TLS in, TLS out, keep-alive both ways.
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  upstream host { server 127.0.0.1:$HOST_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $work/server.pem;
    ssl_certificate_key $work/server.key;
    client_max_body_size 1m;
    location / {
      proxy_pass https://host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_trusted_certificate $work/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      proxy_read_timeout 120s;
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -c "$work/nginx.conf" -p "$work"

# hopgate: client certificate in, Basic with a vaulted password out, policy and audit on.
VAULT_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HOPGATE_VAULT_KEY=$VAULT_KEY
mkdir -p "$work/policies"
cat >"$work/policies/bench.toml" <<'EOF'
[[role]]
name = "bench"
principals = { users = ["alice@hopgate.test"] }
hosts = { names = ["bench"] }
[role.cmd]
commands = ["hostname", "cmd", { pattern = "bench-output [0-9]{1,9}" }]
EOF
cat >"$work/hopgate.toml" <<EOF
[listener]
address = "127.0.0.1:$GW_PORT"
cert = "server.pem"
key = "server.key"
client_ca = "ca.pem"
[vault]
path = "vault.bin"
key_env = "HOPGATE_VAULT_KEY"
[audit]
dir = "audit"
[policy]
dir = "policies"
[limits]
# Every session of the load is the same person through the same host account: the
# defaults (10 and 25 shells) would refuse most of them with w:QuotaLimit.
max_shells_per_user = 2048
max_shells_per_credential = 2048
# ...and from one address: the per-source caps (64 connections, 8 handshakes) would
# refuse the long-poll run's 1,000 sessions.
max_connections_per_source = 4096
max_handshakes_per_source = 1024
max_connections = 4096
[[hosts]]
name = "bench"
address = "127.0.0.1"
port = $HOST_PORT
scheme = "https"
auth = "basic"
credential = "bench"
ca_file = "ca.pem"
tls_server_name = "localhost"
EOF
printf '%s' "$PASSWORD" | "$HG" vault -c "$work/hopgate.toml" set bench --user bench >/dev/null
"$HG" serve -c "$work/hopgate.toml" >"$work/gateway.log" 2>&1 &
GW_PID=$!
pids+=($GW_PID)
sleep 1

run() { # target sessions command seconds [extra args...] -> JSON on stdout
  local target=$1 sessions=$2 command=$3 secs=$4; shift 4
  case $target in
    direct)  HOPGATE_LOAD_PASSWORD=$PASSWORD "$HG" load --target "127.0.0.1:$HOST_PORT" --ca "$work/ca.pem" --basic-user bench --path /wsman --sessions "$sessions" --command "$command" --seconds "$secs" "$@" ;;
    nginx)   HOPGATE_LOAD_PASSWORD=$PASSWORD "$HG" load --target "127.0.0.1:$NGINX_PORT" --ca "$work/ca.pem" --basic-user bench --path /wsman --sessions "$sessions" --command "$command" --seconds "$secs" "$@" ;;
    hopgate) "$HG" load --target "127.0.0.1:$GW_PORT" --ca "$work/ca.pem" --cert "$work/client.pem" --key "$work/client.key" --path /wsman/bench --sessions "$sessions" --command "$command" --seconds "$secs" --pid "$GW_PID" "$@" ;;
  esac
}

if [ "${1:-}" = soak ]; then
  minutes=${SOAK_MINUTES:-30}
  echo "bench.sh: soak, $minutes min: 16 sessions of commands, 8 hostile tasks"
  run hopgate 16 hostname $((minutes * 60)) --hostile 8 >"$work/soak.json"
  kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway died during the soak"; exit 1; }
  python3 - "$work/soak.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss = r.get("rss_kb") or {}
print(f"valid: {r['round_trips']} round trips ({r['round_trips_per_sec']:.0f}/s), errors {r['errors']}")
print(f"hostile: {r.get('hostile')}")
print(f"gateway RSS KiB: first {rss.get('first')} peak {rss.get('peak')} last {rss.get('last')} ({rss.get('samples')} samples)")
print(f"gateway CPU per round trip: {r.get('target_cpu_us_per_round_trip') or 0:.0f} us")
ok = not r["errors"] and (r.get("hostile") or {}).get("accepted", 0) == 0
sys.exit(0 if ok else 1)
PY
  "$HG" audit verify "$work/audit"
  exit 0
fi

results=$work/results.jsonl
for round in $(seq 1 "$ROUNDS"); do
  for scenario in "1 hostname" "16 hostname" "16 bench-output 102400"; do
    read -r sessions command <<<"$scenario"
    for target in direct nginx hopgate; do
      run "$target" "$sessions" "$command" "$SECONDS_PER" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(target=sys.argv[1], scenario=sys.argv[2], round=int(sys.argv[3])); print(json.dumps(r))' \
          "$target" "$sessions x $command" "$round" >>"$results"
    done
  done
done
if [ "$LONGPOLL" -gt 0 ]; then
  run hopgate "$LONGPOLL" hostname 30 --long-poll-active 1 --operation-timeout 20 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(target="hopgate", scenario="longpoll", round=1); print(json.dumps(r))' >>"$results"
fi

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(target, scenario, f):
    v = [f(r) for r in rows if r["target"] == target and r["scenario"] == scenario]
    return statistics.median(v) if v else float("nan")
p50 = lambda r: min(a["p50_us"] for k, a in r["actions"].items() if k in ("Command", "Receive"))
for scenario in sorted({r["scenario"] for r in rows if r["scenario"] != "longpoll"}):
    print(f"== {scenario}")
    d, n, h = (med(t, scenario, p50) for t in ("direct", "nginx", "hopgate"))
    print(f"  p50 per round trip (us): direct {d:.0f}  nginx {n:.0f} (+{n-d:.0f})  hopgate {h:.0f} (+{h-d:.0f}, {((h-d)/max(n-d,1)):.2f}x nginx's added)")
    d, n, h = (med(t, scenario, lambda r: r["round_trips_per_sec"]) for t in ("direct", "nginx", "hopgate"))
    print(f"  round trips/s: direct {d:.0f}  nginx {n:.0f}  hopgate {h:.0f} ({100*h/max(d,1):.0f}% of direct)")
    d, n, h = (med(t, scenario, lambda r: r["output_mb_per_sec"]) for t in ("direct", "nginx", "hopgate"))
    if d > 1:
        print(f"  output MB/s: direct {d:.1f}  nginx {n:.1f}  hopgate {h:.1f} ({100*h/max(d,1e-9):.0f}% of direct)")
    c = med("hopgate", scenario, lambda r: r["target_cpu_us_per_round_trip"] or 0)
    print(f"  hopgate CPU per round trip: {c:.0f} us")
    errs = {r['target']: r["errors"] for r in rows if r["scenario"] == scenario and r["errors"]}
    if errs:
        print(f"  errors: {errs}")
for r in rows:
    if r["scenario"] == "longpoll":
        a = r["actions"]
        short = [a[k] for k in ("Command", "Receive") if k in a]
        print(f"== longpoll: held {r['timed_out_polls']} polls, errors {r['errors']}, short p99 {max(s['p99_us'] for s in short)} us")
EOF
