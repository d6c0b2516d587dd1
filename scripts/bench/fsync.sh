#!/usr/bin/env bash
# Benchmark: what JetStream's `sync_interval: always` (fsync before every acknowledgement, as in
# nats/nats-server.conf) costs commands, against the server's default (fsync every 2 minutes).
# For each mode: a fresh nats-server (pinned, temporary store, free port) configured that way,
# then (1) `mission-control bench seed` appends synthetic commits straight to MC_EVENTS, 512 in
# flight, (2) `mission-control telemetry publish` offers 1,200 MessagePack messages/s to
# MC_TELEMETRY for 10 s (20 spacecraft x 60 messages/s of 10 snapshots x 100 parameters =
# 1,200,000 samples/s, as in telemetry.sh), and (3) `serve` on a fresh database is driven with wrk
# (POST /api/v1/agents) at 32 connections and at 1. Everything stops by itself.
#
# Usage: scripts/bench/fsync.sh [seconds=15] [seed events=20000]
# Builds and runs the debug binary (MC_BENCH_PROFILE=release for a release build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECS="${1:-15}"
EVENTS="${2:-20000}"
PROFILE="${MC_BENCH_PROFILE:-debug}"
eval "$(scripts/dev.sh env)"
command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
if [[ $PROFILE == release ]]; then cargo build --release --bin mission-control >&2; else cargo build --bin mission-control >&2; fi
BIN="target/$PROFILE/mission-control"

work=$(mktemp -d)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
admin="$MC_TEST_DATABASE_URL"
cleanup() {
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -n ${nats_pid:-} ]] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
  for db in "${dbs[@]}"; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
dbs=()
trap cleanup EXIT

start_nats() { # mode
  nats_port=$(free_port)
  mon_port=$(free_port)
  rm -rf "$work/js"
  mkdir -p "$work/js"
  if [[ $1 == always ]]; then
    printf 'jetstream {\n  sync_interval: always\n}\n' >"$work/nats.conf"
  else
    printf 'jetstream {}\n' >"$work/nats.conf"
  fi
  "$MC_NATS_SERVER_BIN" -c "$work/nats.conf" -a 127.0.0.1 -p "$nats_port" -m "$mon_port" -sd "$work/js" >"$work/nats-$1.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$mon_port/healthz" >/dev/null && break; sleep 0.1; done
}

sync_always() {
  curl -s "http://127.0.0.1:$mon_port/varz" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["jetstream"]["config"].get("sync_always", False))'
}

stop() { # pid variable name
  local pid="${!1}"
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  printf -v "$1" '%s' ''
}

wrk_summary() { # connections → "N req/s, p50 X, p99 Y, created C, not created R"
  wrk -t"$(( $1 < 2 ? 1 : 2 ))" -c"$1" -d"${SECS}s" --latency -s scripts/bench/register-agents.lua \
    "http://127.0.0.1:$http_port" >"$work/wrk.txt"
  python3 - "$work/wrk.txt" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
created, refused = re.search(r"created: (\d+), not created: (\d+)", t).groups()
print(f"{float(rps):.0f} req/s, p50 {lat.get('50')}, p99 {lat.get('99')}, created {created}, not created {refused}")
EOF
}

publish_summary() {
  python3 -c '
import json, sys
d = json.load(sys.stdin)
print("%d messages, %d acked, %d failed in %s s = %.0f samples/s, at most %s s behind"
      % (d["messages"], d["acked"], d["failed"], d["seconds"], d["samplesPerSecond"], d["maxBehindSeconds"]))'
}

# A fresh nats-server, database and serve per run: register-agents.lua's names repeat between
# wrk runs (its random sequence is not seeded), so a second run would only meet 409s.
http_run() { # mode connections
  start_nats "$1"
  local db="mc_bench_fsync_$1_$2_$$"
  dbs+=("$db")
  psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
  http_port=$(free_port)
  # An admin API token for wrk (register-agents.lua reads MC_TOKEN); never printed.
  MC_TOKEN=$(MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_LOG=warn "$BIN" tokens create --name bench-fsync --role admin --quiet)
  export MC_TOKEN
  # MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
  MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_DATABASE_URL="${admin%/*}/$db" MC_HTTP_ADDR="127.0.0.1:$http_port" MC_LOG=warn MC_WRITE_RATE=0 \
    "$BIN" serve 2>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$http_port/health/ready" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$http_port/health/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  wrk_summary "$2"
  stop server_pid
  stop nats_pid
}

for mode in default always; do
  start_nats "$mode"
  sync=$(sync_always)
  seed=$(MC_LOG=warn "$BIN" bench seed --events "$EVENTS" --nats-url "nats://127.0.0.1:$nats_port")
  telemetry=$(MC_LOG=warn "$BIN" telemetry publish --nats-url "nats://127.0.0.1:$nats_port" --format msgpack \
    --spacecraft 20 --parameters 100 --batch 10 --rate 600 --duration 10 2>/dev/null | publish_summary || true)
  stop nats_pid

  http_run "$mode" 32 >"$work/http32"  # not in $( ): its databases must reach the cleanup
  http_run "$mode" 1 >"$work/http1"
  http32=$(cat "$work/http32") http1=$(cat "$work/http1")

  echo "sync_interval $mode (server reports sync_always: $sync):"
  echo "  bench seed: $seed"
  echo "  telemetry publish, 1,200,000 samples/s offered for 10 s: $telemetry"
  echo "  POST /agents, 32 connections, ${SECS} s: $http32"
  echo "  POST /agents, 1 connection, ${SECS} s: $http1"
done
