#!/usr/bin/env bash
# PostgreSQL for tests and benchmarks: a private cluster in .services/postgres on 127.0.0.1.
# Usage: postgres.sh start|stop|status|env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${STEWARD_PG_PORT:-54320}"
DIR="$SERVICES_DIR/postgres"
DATA="$DIR/data"
RUN="$DIR/run"
LOGFILE="$DIR/postgres.log"
URL="postgres://steward:steward@127.0.0.1:$PORT/steward"

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$bin" ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  echo "$bin"
}

as_pg() { runuser -u postgres -- "$@"; }

running() { [[ -f "$DATA/postmaster.pid" ]] && as_pg "$(pg_bin)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

start() {
  apt_install postgresql postgresql-contrib
  local bin; bin="$(pg_bin)"
  if running; then log "postgres already running on 127.0.0.1:$PORT"; return 0; fi
  mkdir -p "$DIR" "$RUN"
  # The server runs as the postgres user: it must reach its data dir (the clone may live under /tmp or /work).
  chmod o+x "$SERVICES_DIR" "$DIR"
  chown postgres: "$DIR" "$RUN"
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initdb $DATA"
    as_pg "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 \
      --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 256MB
CONF
  fi
  touch "$LOGFILE"; chown postgres: "$LOGFILE"
  log "starting postgres on 127.0.0.1:$PORT"
  as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 start >/dev/null || { tail -n 30 "$LOGFILE" >&2; die "postgres did not start"; }
  as_pg psql -h "$RUN" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -q -d postgres <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'steward') THEN
    CREATE ROLE steward LOGIN SUPERUSER PASSWORD 'steward';
  END IF;
END $$;
SQL
  if ! as_pg psql -h "$RUN" -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='steward'" -d postgres | grep -q 1; then
    as_pg psql -h "$RUN" -p "$PORT" -U postgres -q -d postgres -c "CREATE DATABASE steward OWNER steward" >/dev/null
  fi
  wait_for "PGPASSWORD=steward psql '$URL' -tAc 'select 1'" 30 "postgres" "$LOGFILE"
  log "postgres ready: $URL"
}

stop() {
  if running; then
    log "stopping postgres"
    as_pg "$(pg_bin)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "postgres running on 127.0.0.1:$PORT"; else echo "postgres stopped"; exit 1; fi ;;
  env) echo "DATABASE_URL=$URL" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
