#!/usr/bin/env bash
# Run Steward in its embedded default: SQLite, Celery worker + beat on the filesystem broker,
# the database search backend, a generated demo data set. Nothing to install but the venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
HOST="${STEWARD_HOST:-127.0.0.1}"
PORT="${STEWARD_PORT:-8000}"
STATE="${STEWARD_STATE_DIR:-$ROOT/.state}"
export STEWARD_STATE_DIR="$STATE"
mkdir -p "$STATE/broker/queue" "$STATE/broker/processed" "$STATE/broker/control" "$STATE/run"
# gunicorn's workers and the Celery worker count into one place, summed at each /metrics scrape.
export PROMETHEUS_MULTIPROC_DIR="$STATE/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

server_pid=""
stop_all() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  for pidfile in "$STATE/run/worker.pid" "$STATE/run/beat.pid"; do
    if [[ -f "$pidfile" ]]; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidfile"
    fi
  done
}
trap stop_all EXIT
trap 'exit 143' TERM INT

# A previous run that died may have left pid files behind: stop those processes first.
stop_all

echo "[run] migrating the database ($STATE)"
"$PY" manage.py migrate --noinput -v0
echo "[run] loading the demo data set"
"$PY" manage.py demo_load

echo "[run] starting the Celery worker and beat (filesystem broker in $STATE/broker)"
"$PY" -m celery -A steward worker --pool=threads --concurrency=2 --loglevel=WARNING \
  --pidfile="$STATE/run/worker.pid" --logfile="$STATE/run/worker.log" >/dev/null 2>&1 &
"$PY" -m celery -A steward beat --loglevel=WARNING --schedule="$STATE/celerybeat-schedule" \
  --pidfile="$STATE/run/beat.pid" --logfile="$STATE/run/beat.log" >/dev/null 2>&1 &

cat <<BANNER

  Steward is starting at  http://$HOST:$PORT/
  API docs:               http://$HOST:$PORT/api/docs/
  Demo logins (password: steward-demo):
    ada (admin)  stella (data steward)  priya (privacy officer)  carl (compliance officer)
    olive, hugo (data owners)  dana, sam (data scientists)  svc-airflow (lineage producer)
  Stop with Ctrl-C.

BANNER
# A production WSGI server in the embedded mode too (it serves /static/ itself here, through Django). In the
# background and waited for, so a TERM to this script (not only Ctrl-C) stops everything.
# granian by default (HTTP parsed in Rust: about 1.5x gunicorn's requests/s on two cores, docs/benchmarks.md);
# STEWARD_WEB_SERVER=gunicorn serves the same application with gunicorn (gthread), --preload.
# STEWARD_WEB_WORKERS processes of STEWARD_WEB_THREADS threads each (2 x 4: long ingestion calls do not hold up
# short ones; a process that serves decisions alone does better with 1 thread, docs/benchmarks.md).
WORKERS="${STEWARD_WEB_WORKERS:-2}"
THREADS="${STEWARD_WEB_THREADS:-4}"
if [[ "${STEWARD_WEB_SERVER:-granian}" == "gunicorn" ]]; then
  STEWARD_SERVE_STATIC=1 "$ROOT/.venv/bin/gunicorn" steward.wsgi:application --preload --bind "$HOST:$PORT" \
    --worker-class gthread --workers "$WORKERS" --threads "$THREADS" --graceful-timeout 10 \
    --access-logfile "$STATE/run/access.log" --error-logfile - --log-level warning &
else
  # Errors to the terminal, the access log to a file, as with gunicorn.
  cat >"$STATE/run/granian-logging.json" <<JSON
{"handlers": {
  "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
  "access": {"formatter": "access", "class": "logging.FileHandler", "filename": "$STATE/run/access.log"}}}
JSON
  STEWARD_SERVE_STATIC=1 "$ROOT/.venv/bin/granian" --interface wsgi --host "$HOST" --port "$PORT" \
    --workers "$WORKERS" --blocking-threads "$THREADS" --respawn-failed-workers --workers-kill-timeout 10 \
    --log-level warning --log-config "$STATE/run/granian-logging.json" --access-log \
    steward.wsgi:application &
fi
server_pid=$!
wait "$server_pid"
