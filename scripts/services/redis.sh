#!/usr/bin/env bash
# Redis for tests (Celery broker): in-memory, on 127.0.0.1. Usage: redis.sh start|stop|status|env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${STEWARD_REDIS_PORT:-56379}"
DIR="$SERVICES_DIR/redis"
PIDFILE="$DIR/redis.pid"
LOGFILE="$DIR/redis.log"

start() {
  apt_install redis-server
  if pid_alive "$PIDFILE"; then log "redis already running on 127.0.0.1:$PORT"; return 0; fi
  if port_open 127.0.0.1 "$PORT"; then
    die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT"); set STEWARD_REDIS_PORT or stop it"
  fi
  mkdir -p "$DIR"
  rm -f "$PIDFILE"
  log "starting redis on 127.0.0.1:$PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --dir "$DIR" \
    --logfile "$LOGFILE" --pidfile "$PIDFILE" --protected-mode yes </dev/null
  wait_for "[[ \"\$(redis-cli -h 127.0.0.1 -p $PORT ping)\" == PONG ]]" 20 "redis" "$LOGFILE"
  log "redis ready: redis://127.0.0.1:$PORT/0"
}

case "${1:-}" in
  start) start ;;
  stop) if pid_alive "$PIDFILE"; then log "stopping redis"; else log "redis not running"; fi; stop_pid "$PIDFILE" ;;
  status) if pid_alive "$PIDFILE"; then echo "redis running on 127.0.0.1:$PORT"; else echo "redis stopped"; exit 1; fi ;;
  env) echo "REDIS_URL=redis://127.0.0.1:$PORT/0" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
