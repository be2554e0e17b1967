#!/usr/bin/env bash
# Elasticsearch for tests and benchmarks (search backend `elasticsearch`): the 8.x integ-test distribution from
# Maven Central (core server only: no analysis-common, no Painless, no reindex module), single node on
# 127.0.0.1, security off (loopback only), a 512 MiB heap. Elasticsearch refuses to run as root, so when run as
# root it runs as the user `steward-es` (created when missing). The zip and its unpacked copy live in the cache
# outside the clone; data, logs and the pid file under .services/elasticsearch/.
# Usage: elasticsearch.sh start|stop|status|env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${STEWARD_ES_VERSION:-8.19.8}"
PORT="${STEWARD_ES_PORT:-59200}"
# A range: the node-to-node port is unused by a single node, and a fixed one inside the ephemeral range can be
# taken by another server's outgoing connection (kube-apiserver to etcd took 59300 once), which aborts the start.
TRANSPORT_PORT="${STEWARD_ES_TRANSPORT_PORT:-59300-59399}"
HEAP="${STEWARD_ES_HEAP:-512m}"
TIMEOUT="${STEWARD_ES_TIMEOUT:-180}"
RUN_USER="${STEWARD_ES_USER:-steward-es}"
DIR="$SERVICES_DIR/elasticsearch"
PIDFILE="$DIR/es.pid"
LOGFILE="$DIR/console.log"
URL="http://127.0.0.1:$PORT"
ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip"
DIST="$CACHE_DIR/elasticsearch-$VERSION"

# java_home : a Java 17 or 21 runtime (ES 8.x runs on 17+); STEWARD_ES_JAVA_HOME wins.
java_home() {
  if [[ -n "${STEWARD_ES_JAVA_HOME:-}" ]]; then echo "$STEWARD_ES_JAVA_HOME"; return 0; fi
  local d
  for d in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-*; do
    [[ -x "$d/bin/java" ]] && { echo "$d"; return 0; }
  done
  die "no Java 17/21 under /usr/lib/jvm (Elasticsearch 8.x needs one); set STEWARD_ES_JAVA_HOME"
}

# fetch : download the zip from Maven Central once and unpack it into the cache (atomic publish).
fetch() {
  [[ -x "$DIST/bin/elasticsearch" ]] && return 0
  local dl="$CACHE_DIR/downloads" tmp
  mkdir -p "$dl"
  if [[ ! -f "$dl/elasticsearch-$VERSION.zip" ]]; then
    log "downloading $ARTIFACT (Maven Central, ~95 MB)"
    mvn -B -ntp -q dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$dl" >&2 \
      || die "could not fetch $ARTIFACT"
  fi
  command -v unzip >/dev/null || apt_install unzip
  tmp="$(mktemp -d "$CACHE_DIR/.es-$VERSION.XXXXXX")"
  unzip -q "$dl/elasticsearch-$VERSION.zip" -d "$tmp"
  chmod +x "$tmp/elasticsearch-$VERSION/bin/"*
  mv -T "$tmp/elasticsearch-$VERSION" "$DIST" 2>/dev/null || true
  rm -rf "$tmp"
}

# as_user CMD... : run as the non-root user when we are root (Elasticsearch refuses root).
as_user() {
  if [[ $(id -u) -eq 0 ]]; then
    id -u "$RUN_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
    runuser -u "$RUN_USER" -- "$@"
  else
    "$@"
  fi
}

ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "org.elasticsearch"; }
running() { pid_alive "$PIDFILE" && ours "$(head -n1 "$PIDFILE" | tr -dc '0-9')"; }
healthy() { curl -fsS "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; }

start() {
  if running; then log "elasticsearch already running on $URL"; return 0; fi
  if port_open 127.0.0.1 "$PORT"; then
    die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT"); set STEWARD_ES_PORT or stop it"
  fi
  fetch
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/config"
  # A config directory of our own (the cached distribution stays read-only and shared between clones).
  cp -r "$DIST/config/." "$DIR/config/"
  rm -f "$PIDFILE"
  local home="$DIST"
  if [[ $(id -u) -eq 0 ]]; then
    # The cache is under root's home, which the service user cannot read: run from a copy in .services/.
    home="$DIR/home-$VERSION"
    [[ -x "$home/bin/elasticsearch" ]] || { rm -rf "$home"; cp -r "$DIST" "$home"; }
    as_user true
    chown -R "$RUN_USER" "$DIR"
    # The user must be able to reach the clone's .services/.
    chmod o+x "$SERVICES_DIR" "$(dirname "$SERVICES_DIR")" 2>/dev/null || true
  fi
  log "starting elasticsearch $VERSION on $URL (heap $HEAP)"
  as_user env ES_JAVA_HOME="$(java_home)" ES_PATH_CONF="$DIR/config" ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP" \
    "$home/bin/elasticsearch" -d -p "$PIDFILE" \
    -E discovery.type=single-node -E network.host=127.0.0.1 -E http.port="$PORT" \
    -E transport.port="$TRANSPORT_PORT" -E xpack.security.enabled=false \
    -E path.data="$DIR/data" -E path.logs="$DIR/logs" -E cluster.name=steward-test \
    -E cluster.routing.allocation.disk.threshold_enabled=false -E action.destructive_requires_name=false \
    >"$LOGFILE" 2>&1 </dev/null || { tail -n 30 "$LOGFILE" >&2; die "elasticsearch did not start"; }
  wait_for healthy "$TIMEOUT" "elasticsearch" "$DIR/logs/steward-test.log"
  log "elasticsearch ready: $URL"
}

case "${1:-}" in
  start) start ;;
  stop)
    if running; then log "stopping elasticsearch"; stop_pid "$PIDFILE" 60; else log "elasticsearch not running"; rm -f "$PIDFILE"; fi ;;
  status) if running && healthy; then echo "elasticsearch running on $URL"; else echo "elasticsearch stopped"; exit 1; fi ;;
  env) echo "STEWARD_ELASTICSEARCH_URL=$URL" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
