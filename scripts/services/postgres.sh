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

# Run as the postgres user from / (it may not be allowed to enter the caller's cwd, e.g. under /root).
as_pg() { (cd / && runuser -u postgres -- "$@"); }

running() { pid_alive "$DATA/postmaster.pid" && as_pg "$(pg_bin)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

# Idempotent: role steward (superuser: tests create extensions and roles) and database steward.
ensure_db() {
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
}

start() {
  apt_install postgresql postgresql-contrib
  local bin; bin="$(pg_bin)"
  if running; then log "postgres already running on 127.0.0.1:$PORT"; return 0; fi
  if port_open 127.0.0.1 "$PORT"; then
    die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT"); set STEWARD_PG_PORT or stop it"
  fi
  mkdir -p "$DIR" "$RUN"
  # The server runs as the postgres user: it must reach its data dir (the clone may live under /tmp or /work).
  chmod o+x "$SERVICES_DIR" "$DIR"
  chown postgres: "$DIR" "$RUN"
  if ! as_pg test -x "$DIR"; then
    # Directories above the clone are not ours to loosen: name the one that blocks and stop.
    local d="$SERVICES_DIR" blocker=""
    while [[ "$d" != "/" ]]; do d="$(dirname "$d")"; as_pg test -x "$d" || blocker="$d"; done
    die "the postgres user cannot reach $DIR (blocked at ${blocker:-?}); run 'chmod o+x ${blocker:-<dir>}' or move the clone"
  fi
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
  else
    log "reusing $DATA"
  fi
  touch "$LOGFILE"; chown postgres: "$LOGFILE"
  if [[ -f "$DATA/postmaster.pid" ]]; then
    # A crashed postmaster stays a zombie until PID 1 reaps it (about a second here); postgres's own
    # lock-file check would take it for a live server, so wait for it to go.
    local old; old="$(head -n1 "$DATA/postmaster.pid" | tr -dc '0-9')"
    for _ in $(seq 1 50); do [[ -n "$old" ]] && kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
  log "starting postgres on 127.0.0.1:$PORT"
  # Address, port and socket dir on the command line too, so a changed STEWARD_PG_PORT or a moved clone wins.
  as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k '$RUN'" start >/dev/null \
    || { tail -n 30 "$LOGFILE" >&2; die "postgres did not start"; }
  ensure_db
  wait_for "PGPASSWORD=steward psql '$URL' -tAc 'select 1'" 30 "postgres" "$LOGFILE"
  log "postgres ready: $URL"
}

stop() {
  if running; then
    log "stopping postgres"
    as_pg "$(pg_bin)/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  else
    log "postgres not running"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "postgres running on 127.0.0.1:$PORT"; else echo "postgres stopped"; exit 1; fi ;;
  env) echo "DATABASE_URL=$URL" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
