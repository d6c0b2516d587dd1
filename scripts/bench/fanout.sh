#!/usr/bin/env bash
# Benchmark: WebSocket fan-out. Own nats-server (pinned, temporary store, free loopback port), a
# fresh database and the release binary; CLIENTS WebSocket clients subscribe to `missions`, then
# EVENTS missions are created at RATE/s over HTTP; `mission-control bench fanout` prints
# delivered frames/s, latency from commit to receipt (p50/p99/max) and the server's RSS. Loopback
# only, bounded in count and time, stops by itself.
#
# Usage: scripts/bench/fanout.sh [clients=1000] [events=1000] [rate=100]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CLIENTS=${1:-1000}; EVENTS=${2:-1000}; RATE=${3:-100}
eval "$(scripts/dev.sh env)"
bin=${MC_BENCH_BIN:-target/release/mission-control}
[ "$bin" = target/release/mission-control ] && cargo build --release --bin mission-control >&2
# Each client and its server side are a file descriptor.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
work=$(mktemp -d); port=$(free_port); hp=$(free_port)
db=mc_fanout_$$; admin=$MC_TEST_DATABASE_URL; dburl=${admin%/*}/$db; api=http://127.0.0.1:$hp
cleanup() { kill $sp $np 2>/dev/null; wait $sp $np 2>/dev/null; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -rf $work; }
trap cleanup EXIT
"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p $port -js -sd $work/js >/dev/null 2>&1 & np=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db"
MC_TOKEN=$(MC_NATS_URL=nats://127.0.0.1:$port MC_LOG=warn "$bin" tokens create --name bench-fanout --role admin --quiet)
export MC_TOKEN
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_NATS_URL=nats://127.0.0.1:$port MC_DATABASE_URL=$dburl MC_HTTP_ADDR=127.0.0.1:$hp MC_LOG=warn MC_WRITE_RATE=0 \
  "$bin" serve 2>$work/serve.log & sp=$!
for _ in $(seq 100); do curl -sf $api/health/ready >/dev/null && break; sleep 0.2; done
curl -sf $api/health/ready >/dev/null || { cat $work/serve.log >&2; exit 1; }
echo "bench: $CLIENTS websocket clients, $EVENTS events at $RATE/s (nproc $(nproc))" >&2
MC_API_URL=$api MC_LOG=warn "$bin" bench fanout --clients "$CLIENTS" --events "$EVENTS" --rate "$RATE"
