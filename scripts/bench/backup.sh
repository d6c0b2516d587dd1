#!/usr/bin/env bash
# Benchmark: backup and restore rates of the event log. Starts two nats-servers (pinned,
# temporary stores, free loopback ports; the restore target syncs every write like the dev stack
# and compose), seeds N agent registrations into the source's MC_EVENTS (`mission-control bench
# seed`), then times `backup create`, `backup verify` and `backup restore` into the empty target
# (release build). Everything stops by itself and is removed.
#
# Usage: scripts/bench/backup.sh [events=1000000]
# MC_BENCH_TARGET_SYNC=default runs the target with JetStream's default sync (every 2 min)
# instead of `always`, to show what fsync per message costs a restore.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
EVENTS="${1:-1000000}"
eval "$(scripts/dev.sh env)"
cargo build --release --bin mission-control >&2
bin=target/release/mission-control

work=$(mktemp -d)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
source_port=$(free_port); target_port=$(free_port)
cleanup() {
  kill ${source_pid:-} ${target_pid:-} 2>/dev/null || true
  wait ${source_pid:-} ${target_pid:-} 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
wait_port() { for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; }

if [[ ${MC_BENCH_TARGET_SYNC:-always} == always ]]; then
  printf 'jetstream {\n  sync_interval: always\n}\n' >"$work/target.conf"
else
  printf 'jetstream {}\n' >"$work/target.conf"
fi
"$MC_NATS_SERVER_BIN" -a 127.0.0.1 -p "$source_port" -js -sd "$work/source" >"$work/source.log" 2>&1 &
source_pid=$!
"$MC_NATS_SERVER_BIN" -c "$work/target.conf" -a 127.0.0.1 -p "$target_port" -js -sd "$work/target" >"$work/target.log" 2>&1 &
target_pid=$!
wait_port "$source_port"; wait_port "$target_port"
export MC_LOG=warn MC_BACKUP_DIR="$work/backups"
unset MC_DATABASE_URL

echo "bench: seeding $EVENTS events" >&2
MC_NATS_URL="nats://127.0.0.1:$source_port" "$bin" bench seed --events "$EVENTS"
echo "bench: backup create" >&2
MC_NATS_URL="nats://127.0.0.1:$source_port" /usr/bin/time -f "backup create: %e s wall, %M KiB max RSS" \
  "$bin" backup create
id=$(ls "$MC_BACKUP_DIR" | head -1)
du -sh "$MC_BACKUP_DIR/$id" | sed 's/^/backup size on disk: /'
echo "bench: backup verify" >&2
/usr/bin/time -f "backup verify: %e s wall, %M KiB max RSS" "$bin" backup verify "$id"
echo "bench: backup restore" >&2
MC_NATS_URL="nats://127.0.0.1:$target_port" /usr/bin/time -f "backup restore: %e s wall, %M KiB max RSS" \
  "$bin" backup restore "$id"
