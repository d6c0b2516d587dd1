#!/usr/bin/env bash
# Benchmark: server memory under concurrent reads. Seeds 200 agents and 1,000 telemetry
# snapshots of 100 parameters, then sends 10,000 GETs with 50 in flight (loopback): every
# 20th an analyze of up to 10,000 snapshots, the others a 500-snapshot telemetry page, a
# 200-agent page or the latest values (50 Python threads, loopback). Prints VmRSS idle, after seeding, after the load, 10 s
# later, and the peak (VmHWM). Own nats-server (pinned, temporary store, free loopback port),
# fresh database, the DEBUG binary (as measured in BENCHMARKS.md); stops by itself.
#
# Usage: scripts/bench/read-memory.sh [binary=target/debug/mission-control]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(scripts/dev.sh env)"
bin=${1:-target/debug/mission-control}
[ "$bin" = target/debug/mission-control ] && cargo build --bin mission-control >&2
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
work=$(mktemp -d); port=$(free_port); hp=$(free_port)
db=mc_mem_$$; admin=$MC_TEST_DATABASE_URL; dburl=${admin%/*}/$db; api=http://127.0.0.1:$hp
cleanup() { kill $sp $np 2>/dev/null; wait $sp $np 2>/dev/null; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -rf $work; }
trap cleanup EXIT
"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p $port -js -sd $work/js >/dev/null 2>&1 & np=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db"
# An admin API token; the Python clients below read MC_TOKEN and send it on every request (never printed).
MC_TOKEN=$(MC_NATS_URL=nats://127.0.0.1:$port MC_LOG=warn "$bin" tokens create --name bench-read-memory --role admin --quiet)
export MC_TOKEN
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_NATS_URL=nats://127.0.0.1:$port MC_DATABASE_URL=$dburl MC_HTTP_ADDR=127.0.0.1:$hp MC_LOG=warn MC_WRITE_RATE=0 "$bin" serve 2>$work/serve.log & sp=$!
for _ in $(seq 100); do curl -sf $api/health/ready >/dev/null && break; sleep 0.2; done
kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/$sp/status; }
echo "idle: VmRSS $(kb VmRSS) kB"
python3 - "$api/api/v1" <<'PY'
import json, os, sys, time, urllib.request
base = sys.argv[1]
auth = {"authorization": "Bearer " + os.environ["MC_TOKEN"]}
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json", **auth})
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
load() {
# 50 workers take the 10,000 requests from one counter: bounded in count, stops by itself.
python3 - "$api" <<'PY'
import os, sys, threading, time, urllib.request
api = sys.argv[1]
auth = {"authorization": "Bearer " + os.environ["MC_TOKEN"]}
paths = ["/api/v1/telemetry?spacecraftId=SC-MEM&limit=500", "/api/v1/agents?limit=200",
         "/api/v1/telemetry/latest?spacecraftId=SC-MEM"]
analyze = "/api/v1/telemetry/analyze?spacecraftId=SC-MEM&limit=10000"
lock, counter, statuses, latencies = threading.Lock(), [0], {}, []
def worker():
    while True:
        with lock:
            counter[0] += 1
            n = counter[0]
        if n > 10_000:
            return
        path = analyze if n % 20 == 0 else paths[n % len(paths)]
        started = time.monotonic()
        try:
            with urllib.request.urlopen(urllib.request.Request(api + path, headers=auth), timeout=60) as r:
                r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception:
            status = "error"
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(time.monotonic() - started)
started = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(50)]
for t in threads: t.start()
for t in threads: t.join()
latencies.sort()
print(f"10,000 GETs in {time.monotonic() - started:.0f} s, statuses {statuses}, "
      f"latency p50 {latencies[len(latencies)//2]*1000:.0f} ms, max {latencies[-1]*1000:.0f} ms")
PY
}
load
echo "after 10,000 GETs: VmRSS $(kb VmRSS) kB"
sleep 10
echo "10 s later: VmRSS $(kb VmRSS) kB, peak VmHWM $(kb VmHWM) kB"
load
echo "after another 10,000 GETs: VmRSS $(kb VmRSS) kB"
load
echo "after a third 10,000 GETs: VmRSS $(kb VmRSS) kB, peak VmHWM $(kb VmHWM) kB"
