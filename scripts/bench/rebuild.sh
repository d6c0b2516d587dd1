#!/usr/bin/env bash
# Benchmark: blue/green rebuild rate of a projection (agents by default) over a log of N events.
# Starts its own nats-server (pinned, temporary store, free loopback port) and a fresh database,
# seeds N agent registrations straight into MC_EVENTS (`mission-control bench seed`), then times
# `mission-control projections rebuild agents` (release build). Everything stops by itself.
#
# Usage: scripts/bench/rebuild.sh [events=1000000] [projection=agents]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
EVENTS="${1:-1000000}"
NAME="${2:-agents}"
eval "$(scripts/dev.sh env)"
cargo build --release --bin mission-control >&2
bin=target/release/mission-control

work=$(mktemp -d)
nats_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
db="mc_bench_rebuild_$$"
admin="$MC_TEST_DATABASE_URL"
dburl="${admin%/*}/$db"
cleanup() {
  [[ -n ${nats_pid:-} ]] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
  psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
export MC_NATS_URL="nats://127.0.0.1:$nats_port" MC_DATABASE_URL="$dburl" MC_LOG=warn
"$bin" migrate
echo "bench: seeding $EVENTS events" >&2
"$bin" bench seed --events "$EVENTS"
echo "bench: rebuilding $NAME" >&2
/usr/bin/time -f "rebuild process: %e s wall, %M KiB max RSS" "$bin" projections rebuild "$NAME"
case "$NAME" in
  agents) psql "$dburl" -tAc "SELECT 'agents rows: ' || count(*) FROM agents" ;;
  fleet) psql "$dburl" -tAc "SELECT 'fleet_agents rows: ' || count(*) || ', events counted: ' || (SELECT events FROM fleet_system) FROM fleet_agents" ;;
esac
