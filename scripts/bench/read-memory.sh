#!/usr/bin/env bash
# Benchmark: server memory under concurrent reads. Seeds 200 agents and 1,000 telemetry
# snapshots of 100 parameters, then sends 10,000 GETs with 50 in flight (wrk, loopback): every
# 20th an analyze of up to 10,000 snapshots, the others a 500-snapshot telemetry page, a
# 200-agent page or the latest values. Prints VmRSS idle, after seeding, after the load, 10 s
# later, and the peak (VmHWM). Own nats-server (pinned, temporary store, free loopback port),
# fresh database, the DEBUG binary (as measured in BENCHMARKS.md); stops by itself.
#
# Usage: scripts/bench/read-memory.sh [binary=target/debug/mission-control]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(scripts/dev.sh env)"
command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
bin=${1:-target/debug/mission-control}
[ "$bin" = target/debug/mission-control ] && cargo build --bin mission-control >&2
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
work=$(mktemp -d); port=$(free_port); hp=$(free_port)
db=mc_mem_$$; admin=$MC_TEST_DATABASE_URL; dburl=${admin%/*}/$db; api=http://127.0.0.1:$hp
cleanup() { kill $sp $np 2>/dev/null; wait $sp $np 2>/dev/null; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -rf $work; }
trap cleanup EXIT
"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p $port -js -sd $work/js >/dev/null 2>&1 & np=$!
psql "$admin" -qc "CREATE DATABASE $db"
MC_NATS_URL=nats://127.0.0.1:$port MC_DATABASE_URL=$dburl MC_HTTP_ADDR=127.0.0.1:$hp MC_LOG=warn "$bin" serve 2>$work/serve.log & sp=$!
for _ in $(seq 100); do curl -sf $api/health/ready >/dev/null && break; sleep 0.2; done
kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$sp/status; }
echo "idle: VmRSS $(kb VmRSS) kB"
python3 - "$api/api/v1" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req))
for i in range(200):
    post("/agents", {"name": f"agent-{i}", "description": "x" * 600})
now = int(time.time() * 1000) - 3_600_000
for batch in range(10):
    post("/telemetry", [{"spacecraftId": "SC-MEM", "timestamp": now + (batch * 100 + i) * 100,
                         "parameters": {f"p{j:03}": j * 1.5 + i for j in range(100)}} for i in range(100)])
time.sleep(2)
PY
echo "seeded: VmRSS $(kb VmRSS) kB"
cat > $work/mix.lua <<'LUA'
local paths = {
  "/api/v1/telemetry?spacecraftId=SC-MEM&limit=500",
  "/api/v1/agents?limit=200",
  "/api/v1/telemetry/latest?spacecraftId=SC-MEM",
}
local n, done = 0, 0
function request()
  n = n + 1
  local path = (n % 20 == 0) and "/api/v1/telemetry/analyze?spacecraftId=SC-MEM&limit=10000"
    or paths[n % #paths + 1]
  return wrk.format("GET", path)
end
function response(status, headers, body)
  done = done + 1
  if done >= 5000 then wrk.thread:stop() end  -- 2 threads: 10,000 in all
end
LUA
wrk --timeout 30s -t2 -c50 -d900s -s $work/mix.lua $api | grep -E "requests in|Non-2xx|Latency|errors"
echo "after 10,000 GETs: VmRSS $(kb VmRSS) kB"
sleep 10
echo "10 s later: VmRSS $(kb VmRSS) kB, peak VmHWM $(kb VmHWM) kB"
