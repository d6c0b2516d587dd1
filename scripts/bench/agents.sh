#!/usr/bin/env bash
# Benchmark: agent registrations over HTTP, end to end (name reservation in NATS KV, append to
# JetStream, projection into Postgres). Starts its own nats-server (pinned, temporary store, free
# port) and a fresh database, runs the release binary, drives it with wrk on loopback for a bounded
# time, then reports how long the projectors needed to catch up. Everything stops by itself.
#
# Usage: scripts/bench/agents.sh [seconds=20] [connections=32]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECS="${1:-20}"
CONNS="${2:-32}"
eval "$(scripts/dev.sh env)"
command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --bin mission-control >&2

work=$(mktemp -d)
nats_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
http_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
db="mc_bench_$$"
admin="$MC_TEST_DATABASE_URL"
dburl="${admin%/*}/$db"
cleanup() {
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -n ${nats_pid:-} ]] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
# An admin API token for every request below (wrk's register-agents.lua reads MC_TOKEN); never printed.
MC_TOKEN=$(MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_LOG=warn target/release/mission-control tokens create --name bench-agents --role admin --quiet)
export MC_TOKEN
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_DATABASE_URL="$dburl" MC_HTTP_ADDR="127.0.0.1:$http_port" MC_LOG=warn MC_WRITE_RATE=0 \
  target/release/mission-control serve 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http_port/health/ready" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$http_port/health/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

echo "bench: wrk -t2 -c$CONNS -d${SECS}s POST /api/v1/agents" >&2
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s scripts/bench/register-agents.lua "http://127.0.0.1:$http_port"

start=$(date +%s.%N)
while :; do
  lag=$(curl -s -H "Authorization: Bearer $MC_TOKEN" "http://127.0.0.1:$http_port/health/detailed" | python3 -c 'import sys,json;d=json.load(sys.stdin);print(max(p["lagEvents"] or 0 for p in d["projections"]))')
  [[ $lag == 0 ]] && break
  sleep 0.1
done
end=$(date +%s.%N)
rows=$(psql "$dburl" -tAc "SELECT count(*) FROM agents")
events=$(psql "$dburl" -tAc "SELECT count(*) FROM events")
echo "projections caught up $(python3 -c "print(round($end-$start,2))") s after the load stopped; agents rows: $rows, archived events: $events"
echo "server rss: $(( $(awk '{print $2}' /proc/$server_pid/statm) * 4 / 1024 )) MiB"
