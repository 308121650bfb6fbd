#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the test suite, started without systemd.
#
#   scripts/test-postgres.sh start    # init (first time) + start; last stdout line is
#                                     #   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:PORT/rr_webhooks_test
#   scripts/test-postgres.sh stop     # fast shutdown; the data folder is kept for the next start
#   scripts/test-postgres.sh status   # exit 0 if running
#
#   eval "$(scripts/test-postgres.sh start | tail -n 1)" && export TEST_DATABASE_URL
#
# Settings (environment): PG_TEST_DIR (default /tmp/rr-webhooks-pg), PG_TEST_PORT (default
# 54329). Uses the newest Debian server under /usr/lib/postgresql/*/bin (apt-get install
# postgresql). The cluster listens on 127.0.0.1 only, trusts every local connection and runs
# with fsync off: it is for tests, never for data you want to keep.
#
# initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` OS user
# (created by Debian's package; created here as a system user if missing).
set -euo pipefail

PG_TEST_DIR="${PG_TEST_DIR:-/tmp/rr-webhooks-pg}"
PG_TEST_PORT="${PG_TEST_PORT:-54329}"
DB_NAME="rr_webhooks_test"
DATA_DIR="$PG_TEST_DIR/data"
LOG_FILE="$PG_TEST_DIR/postgres.log"

log() { echo "[test-postgres] $*" >&2; }
die() { log "error: $*"; exit 1; }

find_bin_dir() {
  local dirs=(/usr/lib/postgresql/*/bin) dir
  dir="$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" ]] \
    || die "no PostgreSQL server under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
  echo "$dir"
}

BIN="$(find_bin_dir)"
PG_MAJOR="$(basename "$(dirname "$BIN")")"

# Run a server-side command (initdb, pg_ctl) as the cluster's owner.
if [[ $EUID -eq 0 ]]; then
  PG_OS_USER=postgres
  as_owner() { runuser -u "$PG_OS_USER" -- "$@"; }
else
  PG_OS_USER="$(id -un)"
  as_owner() { "$@"; }
fi

ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "creating system user $PG_OS_USER"
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$PG_OS_USER"
  fi
}

prepare_dir() {
  mkdir -p "$PG_TEST_DIR"
  if [[ $EUID -eq 0 ]]; then
    chown -R "$PG_OS_USER:" "$PG_TEST_DIR"
    # The owner must be able to reach the folder (e.g. not under root's 0700 home).
    as_owner test -w "$PG_TEST_DIR" \
      || die "$PG_TEST_DIR is not reachable by user $PG_OS_USER; choose another PG_TEST_DIR"
  fi
  chmod 0700 "$PG_TEST_DIR"
}

is_running() {
  [[ -f "$DATA_DIR/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

# Port the running server actually listens on (4th line of postmaster.pid).
running_port() { sed -n 4p "$DATA_DIR/postmaster.pid" 2>/dev/null || true; }

init_cluster() {
  if [[ -f "$DATA_DIR/PG_VERSION" ]]; then
    local have
    have="$(cat "$DATA_DIR/PG_VERSION")"
    if [[ "$have" == "$PG_MAJOR" ]]; then
      return 0
    fi
    log "existing cluster is PostgreSQL $have, server is $PG_MAJOR: re-creating it (throwaway data)"
    rm -rf "$DATA_DIR"
  fi
  log "initdb (PostgreSQL $PG_MAJOR) into $DATA_DIR"
  as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >/dev/null
}

start() {
  ensure_os_user
  prepare_dir
  local port="$PG_TEST_PORT"
  if is_running; then
    port="$(running_port)"
    [[ -n "$port" ]] || port="$PG_TEST_PORT"
    if [[ "$port" != "$PG_TEST_PORT" ]]; then
      log "warning: already running on port $port (not $PG_TEST_PORT); reusing it"
    else
      log "already running on 127.0.0.1:$port; reusing it"
    fi
  else
    init_cluster
    log "starting on 127.0.0.1:$port (log: $LOG_FILE)"
    # Settings go on the command line so PG_TEST_PORT can change between starts.
    # fsync/synchronous_commit/full_page_writes off: test speed, crash safety not needed.
    if ! as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 start -o "\
-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$PG_TEST_DIR' \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
-c max_connections=200" >&2; then
      log "pg_ctl start failed; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      exit 1
    fi
  fi

  local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
  if [[ "$("${psql[@]}" -d postgres -tAc "select 1 from pg_database where datname = '$DB_NAME'")" != 1 ]]; then
    log "creating database $DB_NAME"
    "${psql[@]}" -d postgres -c "create database $DB_NAME" >/dev/null
  fi
  echo "TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/$DB_NAME"
}

stop() {
  if is_running; then
    log "stopping ($DATA_DIR)"
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t 60 stop >&2
  else
    log "not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if is_running; then log "running on 127.0.0.1:$(running_port)"; else log "not running"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status   (env: PG_TEST_DIR, PG_TEST_PORT)" >&2
    exit 2
    ;;
esac
