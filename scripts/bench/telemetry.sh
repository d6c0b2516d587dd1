#!/usr/bin/env bash
# Benchmark: telemetry ingest over NATS, end to end (MessagePack snapshots published to
# mc.telemetry.<id> on JetStream, the store consumer writing frames and rollups into Postgres,
# the anomaly consumer judging limits and raising alarms). Starts its own nats-server (pinned,
# temporary store, free loopback port) and a fresh database, runs the release binary, sets limits
# on p000 for every spacecraft, publishes with `mission-control telemetry publish` for a bounded
# time, samples consumer lag and server memory every 5 s, then reports how long the consumers
# needed to drain the stream. Everything stops by itself.
#
# Usage: [BENCH_BATCH=10] [BENCH_FORMAT=msgpack|json] scripts/bench/telemetry.sh [seconds=60] [spacecraft=20] [parameters=100] [rate=100]
#   rate = frames per second per spacecraft; samples/s offered = spacecraft * parameters * rate.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECS="${1:-60}"
SPACECRAFT="${2:-20}"
PARAMS="${3:-100}"
RATE="${4:-100}"
BATCH="${BENCH_BATCH:-10}"     # snapshots per message
FORMAT="${BENCH_FORMAT:-msgpack}" # or json
DRAIN_MAX=600
eval "$(scripts/dev.sh env)"
command -v jq >/dev/null || { echo "bench: installing jq" >&2; apt-get install -y -qq jq >/dev/null; }
cargo build --release --bin mission-control >&2
bin=target/release/mission-control

work=$(mktemp -d)
nats_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
http_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
db="mc_bench_telemetry_$$"
admin="$MC_TEST_DATABASE_URL"
dburl="${admin%/*}/$db"
api="http://127.0.0.1:$http_port"
nats_url="nats://127.0.0.1:$nats_port"
cleanup() {
  [[ -n ${pub_pid:-} ]] && kill "$pub_pid" 2>/dev/null && wait "$pub_pid" 2>/dev/null
  [[ -n ${server_pid:-} ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ -n ${nats_pid:-} ]] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a-b}'; }
# A field of the server's /proc status in KiB (VmRSS now, VmHWM peak).
status_kib() {
  local v
  v=$(awk -v f="$1:" '$1 == f {print $2; exit}' "/proc/$server_pid/status" 2>/dev/null || true)
  echo "${v:-0}"
}
server_alive() {
  kill -0 "$server_pid" 2>/dev/null && return 0
  echo "bench: the server died; its log:" >&2
  tail -n 50 "$work/serve.log" >&2
  exit 1
}
# The telemetry consumers' standing: the stream head and each consumer's position and lag.
standing() {
  local body
  body=$(curl -s --max-time 5 "${auth[@]}" "$api/api/v1/projections" || true)
  jq -c '{telemetryHead, telemetry: [.telemetry[] | {name, position, lagMessages, lagSeconds}]}'     <<<"$body" 2>/dev/null || echo '{"error":"GET /api/v1/projections failed"}'
}
# Every telemetry consumer has reached the stream head.
drained() {
  curl -s --max-time 5 "${auth[@]}" "$api/api/v1/projections" | jq -e '.telemetryHead as $h
    | $h != null and (.telemetry | length > 0) and all(.telemetry[]; .position == $h)'     >/dev/null 2>&1
}
sql() { psql "$dburl" -tAc "$1" 2>/dev/null || echo "n/a"; }
# CPU seconds (user + system) a process has used so far; 0 once it is gone.
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0
}
# CPU seconds of every postgres process on the machine (the server's backends among them).
cpu_postgres() {
  local total=0 pid
  for pid in $(pgrep -x postgres 2>/dev/null || true); do
    total=$(awk -v a="$total" -v b="$(cpu_of "$pid")" 'BEGIN{printf "%.2f", a+b}')
  done
  echo "$total"
}

"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
# An admin API token, sent on every API request (never printed).
MC_TOKEN=$(MC_NATS_URL="$nats_url" MC_LOG=warn "$bin" tokens create --name bench-telemetry --role admin --quiet)
auth=(-H "Authorization: Bearer $MC_TOKEN")
# MC_WRITE_RATE=0: a load test measures throughput, not the per-principal write limit.
MC_NATS_URL="$nats_url" MC_DATABASE_URL="$dburl" MC_HTTP_ADDR="127.0.0.1:$http_port" MC_LOG=warn MC_WRITE_RATE=0 \
  "$bin" serve 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do curl -sf "$api/health/ready" >/dev/null && break; sleep 0.2; done
curl -sf "$api/health/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

# Limits on p000 (nominal about 20) so the anomalies (p000 = 1000 every 1000th frame) raise
# alarms: warning above 50, critical above 100.
echo "bench: registering $SPACECRAFT spacecraft with limits on p000" >&2
for i in $(seq 1 "$SPACECRAFT"); do
  id=$(printf 'SC-%03d' "$i")
  curl -sf "${auth[@]}" -X POST "$api/api/v1/spacecraft" -H 'content-type: application/json' \
    -d "{\"id\":\"$id\",\"name\":\"$id\"}" >/dev/null || echo "bench: warning: cannot register $id" >&2
  curl -sf "${auth[@]}" -X PUT "$api/api/v1/spacecraft/$id/config" -H 'content-type: application/json' \
    -d '{"parameters":{"p000":{"warnHigh":50,"critHigh":100}}}' >/dev/null ||
    echo "bench: warning: cannot set the limits of $id" >&2
done
# Let the projections (the limits the anomaly consumer reads) catch up, briefly.
for _ in $(seq 100); do
  lag=$(curl -s "${auth[@]}" "$api/api/v1/projections" | jq '[.projections[].lagEvents // 0] | max // 0' 2>/dev/null || echo 1)
  [[ $lag == 0 ]] && break
  sleep 0.1
done

echo "bench: publishing $SECS s of $SPACECRAFT spacecraft x $PARAMS parameters at $RATE frames/s" \
  "($((SPACECRAFT * PARAMS * RATE)) samples/s offered), $FORMAT, $BATCH snapshots per message" >&2
pub_start=$(now)
cpu0_server=$(cpu_of "$server_pid"); cpu0_nats=$(cpu_of "$nats_pid"); cpu0_pg=$(cpu_postgres)
MC_LOG=warn "$bin" telemetry publish --nats-url "$nats_url" --format "$FORMAT" --spacecraft "$SPACECRAFT" \
  --parameters "$PARAMS" --rate "$RATE" --duration "$SECS" --batch "$BATCH" --anomaly-every 1000 \
  >"$work/publish.json" 2>"$work/publish.log" &
pub_pid=$!

sample() {
  server_alive
  echo "[$(minus "$(now)" "$pub_start") s] rss $(($(status_kib VmRSS) / 1024)) MiB; $1$(standing)"
}
next=$(( $(date +%s) + 5 ))
cpu_pub=0
while kill -0 "$pub_pid" 2>/dev/null; do
  sleep 0.2
  c=$(cpu_of "$pub_pid"); [[ $c == 0 ]] || cpu_pub=$c
  if (( $(date +%s) >= next )); then
    sample "publisher: $(tail -n 1 "$work/publish.log" 2>/dev/null); "
    next=$(( $(date +%s) + 5 ))
  fi
done
pub_rc=0
wait "$pub_pid" || pub_rc=$?
pub_pid=""
pub_end=$(now)
if [[ $pub_rc != 0 ]]; then
  echo "bench: the publisher failed (exit $pub_rc):" >&2
  tail -n 20 "$work/publish.log" >&2
fi

echo "bench: publishing done after $(minus "$pub_end" "$pub_start") s; waiting for the consumers to drain (at most ${DRAIN_MAX} s)" >&2
deadline=$(( $(date +%s) + DRAIN_MAX ))
next=$(( $(date +%s) + 5 ))
drain_ok=true
until drained; do
  server_alive
  if (( $(date +%s) >= deadline )); then
    drain_ok=false
    echo "bench: the consumers did not drain within ${DRAIN_MAX} s" >&2
    break
  fi
  if (( $(date +%s) >= next )); then
    sample "draining: "
    next=$(( $(date +%s) + 5 ))
  fi
  sleep 0.1
done
drain_end=$(now)
cpu_server=$(minus "$(cpu_of "$server_pid")" "$cpu0_server")
cpu_nats=$(minus "$(cpu_of "$nats_pid")" "$cpu0_nats")
cpu_pg=$(minus "$(cpu_postgres)" "$cpu0_pg")
sample "final: "

summary=$(cat "$work/publish.json" 2>/dev/null)
[[ -n $summary ]] || summary='{}'
samples=$(jq '.samples // 0' <<<"$summary")
e2e_secs=$(minus "$drain_end" "$pub_start")
drain_secs=$(minus "$drain_end" "$pub_end")
e2e_rate=$(awk -v s="$samples" -v t="$e2e_secs" 'BEGIN{printf "%.0f", (t > 0 ? s / t : 0)}')
peak_rss_mib=$(($(status_kib VmHWM) / 1024))
frames=$(sql "SELECT count(*) FROM telemetry_frames")
alarms=$(sql "SELECT count(*) FROM alarms")
frames_bytes=$(sql "SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'telemetry\_frames\_%'")
rollup_bytes=$(sql "SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'telemetry\_rollups\_%'")
rollups=$(psql "$dburl" -tAc "SELECT coalesce(json_agg(json_build_object('intervalSeconds', interval_seconds, 'rows', n, 'samples', s) ORDER BY interval_seconds), '[]') FROM (SELECT interval_seconds, count(*) AS n, sum(count) AS s FROM telemetry_rollups GROUP BY 1) r" 2>/dev/null || echo 'null')

echo
echo "publish summary: $summary"
echo "drain: $drain_secs s after publishing stopped$([[ $drain_ok == true ]] || echo ' (NOT drained)')"
echo "end to end: $samples samples in $e2e_secs s = $e2e_rate samples/s (publish start until drained)"
echo "telemetry_frames rows: $frames"
echo "telemetry_rollups (interval_seconds | rows | samples):"
psql "$dburl" -tAc "SELECT interval_seconds, count(*), sum(count) FROM telemetry_rollups GROUP BY 1 ORDER BY 1" 2>/dev/null | sed 's/^/  /' || echo "  n/a"
echo "alarms rows: $alarms"
echo "server peak rss: $peak_rss_mib MiB"
echo "postgres storage: raw frames $((frames_bytes / 1048576)) MiB ($(awk -v b="$frames_bytes" -v s="$samples" 'BEGIN{printf "%.1f", (s > 0 ? b / s : 0)}') bytes/sample)," \
  "rollups $((rollup_bytes / 1048576)) MiB"
echo "cpu seconds while publishing and draining (2 cores x $e2e_secs s available): server $cpu_server," \
  "nats-server $cpu_nats, postgres $cpu_pg, publisher $cpu_pub (sampled every 0.2 s)"
jq -cn --argjson publish "$summary" --argjson rollups "${rollups:-null}" \
  --arg frames "$frames" --arg alarms "$alarms" \
  --argjson drainSeconds "$drain_secs" --argjson e2eSeconds "$e2e_secs" \
  --argjson e2eSamplesPerSecond "$e2e_rate" --argjson drained "$drain_ok" \
  --argjson peakRssMiB "$peak_rss_mib" --argjson seconds "$SECS" \
  --argjson cpuServer "$cpu_server" --argjson cpuNats "$cpu_nats" --argjson cpuPostgres "$cpu_pg" \
  --argjson cpuPublisher "$cpu_pub" \
  --argjson framesBytes "${frames_bytes:-0}" --argjson rollupBytes "${rollup_bytes:-0}" \
  --argjson spacecraft "$SPACECRAFT" --argjson parameters "$PARAMS" --argjson rate "$RATE" '{
    bench: "telemetry", seconds: $seconds, spacecraft: $spacecraft, parameters: $parameters,
    rate: $rate, publish: $publish, drained: $drained, drainSeconds: $drainSeconds,
    e2eSeconds: $e2eSeconds, e2eSamplesPerSecond: $e2eSamplesPerSecond,
    telemetryFrames: ($frames | tonumber? // null), rollups: $rollups,
    alarms: ($alarms | tonumber? // null), peakRssMiB: $peakRssMiB,
    cpuSeconds: {server: $cpuServer, nats: $cpuNats, postgres: $cpuPostgres, publisher: $cpuPublisher},
    storageBytes: {frames: $framesBytes, rollups: $rollupBytes}
  }'
[[ $pub_rc == 0 && $drain_ok == true ]]
