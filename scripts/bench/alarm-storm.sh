#!/usr/bin/env bash
# Benchmark: an alarm storm. Every numeric parameter of every spacecraft goes out of limits in
# the same frame (a safe-mode entry, say): how long until the anomaly processor has raised every
# alarm and the alarms read model shows them. Own nats-server (pinned, temporary store, free
# loopback port), fresh database, release binary; stops by itself.
#
# Usage: scripts/bench/alarm-storm.sh [spacecraft=20] [parameters=100]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
eval "$(scripts/dev.sh env)"
command -v jq >/dev/null || { echo "bench: installing jq" >&2; apt-get install -y -qq jq >/dev/null; }
cargo build --release --bin mission-control >&2
work=$(mktemp -d); port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'); hp=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
db=mc_storm_$$; admin=$MC_TEST_DATABASE_URL; dburl=${admin%/*}/$db; api=http://127.0.0.1:$hp
cleanup() { kill $sp $np 2>/dev/null; wait $sp $np 2>/dev/null; psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -rf $work; }
trap cleanup EXIT
"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p $port -js -sd $work/js >/dev/null 2>&1 & np=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db"
# An admin API token, sent on every request below (never printed).
MC_TOKEN=$(MC_NATS_URL=nats://127.0.0.1:$port MC_LOG=warn target/release/mission-control tokens create --name bench-alarm-storm --role admin --quiet)
auth=(-H "Authorization: Bearer $MC_TOKEN")
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_NATS_URL=nats://127.0.0.1:$port MC_DATABASE_URL=$dburl MC_HTTP_ADDR=127.0.0.1:$hp MC_LOG=warn MC_WRITE_RATE=0 target/release/mission-control serve 2>$work/serve.log & sp=$!
for _ in $(seq 100); do curl -sf $api/health/ready >/dev/null && break; sleep 0.2; done
SC=${1:-20}; P=${2:-100}
# A warnHigh no value stays under, on every numeric parameter (the generator makes every 10th a
# string or boolean).
cfg=$(python3 -c "import json;print(json.dumps({'effectiveAt':0,'parameters':{f'p{i:03}':{'warnHigh':-1e9} for i in range($P) if i%10!=9}}))")
for i in $(seq 1 $SC); do id=$(printf 'SC-%03d' $i)
  curl -sf "${auth[@]}" -X POST $api/api/v1/spacecraft -H 'content-type: application/json' -d "{\"id\":\"$id\",\"name\":\"$id\"}" >/dev/null
  curl -sf "${auth[@]}" -X PUT $api/api/v1/spacecraft/$id/config -H 'content-type: application/json' -d "$cfg" >/dev/null
done
# Let the limits reach the spacecraft read model the anomaly processor reads.
for _ in $(seq 100); do
  [[ $(curl -s "${auth[@]}" $api/api/v1/projections | jq '[.projections[].lagEvents // 0] | max // 0') == 0 ]] && break
  sleep 0.1
done
t0=$(date +%s.%N)
MC_LOG=warn target/release/mission-control telemetry publish --nats-url nats://127.0.0.1:$port --spacecraft $SC --parameters $P --count 1 --rate 1 >/dev/null 2>&1
until curl -s "${auth[@]}" $api/api/v1/projections | jq -e '.telemetryHead as $h | all(.telemetry[]; .position == $h)' >/dev/null; do sleep 0.05; done
t1=$(date +%s.%N)
head=$(curl -s "${auth[@]}" $api/api/v1/projections | jq '.streamHead')
until [[ $(curl -s "${auth[@]}" $api/api/v1/projections | jq --argjson h "$head" '[.projections[] | select(.name=="alarms") | .position >= $h] | all') == true ]]; do sleep 0.05; done
t2=$(date +%s.%N)
echo "$SC spacecraft x $P parameters: alarms raised: $(psql $dburl -tAc 'SELECT count(*) FROM alarms'); anomaly consumer done after $(awk -v a=$t0 -v b=$t1 'BEGIN{print b-a}') s; alarms read model after $(awk -v a=$t0 -v b=$t2 'BEGIN{print b-a}') s"
