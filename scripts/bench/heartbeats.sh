#!/usr/bin/env bash
# Benchmark: heartbeats absorbed for a fleet of agents over NATS (mc.cmd.agent.heartbeat).
# Starts its own nats-server (pinned, temporary store, free port) and a fresh database, runs the
# release binary, registers the fleet straight to the log, waits for the server to know it, then
# sends heartbeats round-robin as fast as they are answered for a bounded time. Reports
# heartbeats/s, reply latency and the events the heartbeats appended (none are expected: only
# transitions are events). Everything stops by itself.
#
# Usage: scripts/bench/heartbeats.sh [agents=10000] [seconds=20] [in_flight=256]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
AGENTS="${1:-10000}"
SECS="${2:-20}"
IN_FLIGHT="${3:-256}"
eval "$(scripts/dev.sh env)"
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
export MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_API_URL="http://127.0.0.1:$http_port"
# An operator token for the heartbeats and the progress checks; never printed.
MC_TOKEN=$(MC_LOG=warn target/release/mission-control tokens create --name bench-heartbeats --role admin --quiet)
export MC_TOKEN
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_DATABASE_URL="$dburl" MC_HTTP_ADDR="127.0.0.1:$http_port" MC_LOG=warn MC_WRITE_RATE=0 \
  target/release/mission-control serve 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do curl -sf "$MC_API_URL/health/ready" >/dev/null && break; sleep 0.2; done
curl -sf "$MC_API_URL/health/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

cpu_before=$(awk '{print $14+$15}' "/proc/$server_pid/stat")
MC_LOG=warn target/release/mission-control bench heartbeats --agents "$AGENTS" --seconds "$SECS" --in-flight "$IN_FLIGHT"
cpu_after=$(awk '{print $14+$15}' "/proc/$server_pid/stat")
rows=$(psql "$dburl" -tAc "SELECT count(*) FROM agent_heartbeats")
echo "agent_heartbeats rows: $rows; server cpu during the run (incl. registration catch-up): $(( (cpu_after - cpu_before) / $(getconf CLK_TCK) )) s; rss $(( $(awk '{print $2}' /proc/$server_pid/statm) * 4 / 1024 )) MiB"
