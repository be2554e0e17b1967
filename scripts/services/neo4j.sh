#!/usr/bin/env bash
# Neo4j for tests (lineage graph backend): embedded Neo4j Community 5.26 with Bolt on 127.0.0.1, auth off.
# The launcher is the project's own tiny Maven module in scripts/services/neo4j/ (pom.xml + Main.java); its
# build and jars live in the cache outside the clone, keyed by a hash of that module.
# Usage: neo4j.sh start|stop|status|env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${STEWARD_NEO4J_PORT:-57687}"
TIMEOUT="${STEWARD_NEO4J_TIMEOUT:-180}"
DIR="$SERVICES_DIR/neo4j"
DATA="$DIR/data"
PIDFILE="$DIR/neo4j.pid"
LOGFILE="$DIR/neo4j.log"
BUILDLOG="$DIR/build.log"
URL="bolt://127.0.0.1:$PORT"
SRC="$_LIB_DIR/neo4j"
MAIN_CLASS="steward.services.neo4j.Main"
VERSION="$(sed -n 's:.*<neo4j\.version>\([^<]*\)</neo4j\.version>.*:\1:p' "$SRC/pom.xml" | head -n1)"
[[ -n "$VERSION" ]] || die "no <neo4j.version> in $SRC/pom.xml"
PY="$ROOT/.venv/bin/python"

# java_bin : a Java 17 or 21 runtime (Neo4j 5.26 supports exactly these); STEWARD_NEO4J_JAVA_HOME wins.
java_bin() {
  if [[ -n "${STEWARD_NEO4J_JAVA_HOME:-}" ]]; then
    [[ -x "$STEWARD_NEO4J_JAVA_HOME/bin/java" ]] || die "no bin/java in STEWARD_NEO4J_JAVA_HOME=$STEWARD_NEO4J_JAVA_HOME"
    echo "$STEWARD_NEO4J_JAVA_HOME/bin/java"; return 0
  fi
  local d
  for d in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-*; do
    [[ -x "$d/bin/java" && -x "$d/bin/javac" ]] && { echo "$d/bin/java"; return 0; }
  done
  die "no Java 17/21 JDK under /usr/lib/jvm (Neo4j 5.26 needs one); set STEWARD_NEO4J_JAVA_HOME"
}

# ours PID : PID is this launcher (guards against a stale pid file whose pid was reused).
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$MAIN_CLASS"; }
running() { pid_alive "$PIDFILE" && ours "$(head -n1 "$PIDFILE" | tr -dc '0-9')"; }

# build : compile Main and copy the jars into $CACHE_DIR/neo4j-<version>/<hash of pom.xml + src/>, once;
# sets BUILD. A fresh clone on the same machine reuses it; a changed pom or Main gets a new directory.
build() {
  local key parent tmp java_home
  key="$(cd "$SRC" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
  parent="$CACHE_DIR/neo4j-$VERSION"
  BUILD="$parent/$key"
  [[ -d "$BUILD/target/classes" && -d "$BUILD/target/lib" ]] && return 0
  java_home="$(dirname "$(dirname "$(readlink -f "$(java_bin)")")")"
  log "building the neo4j $VERSION launcher in $BUILD (Maven; the first time it downloads ~125 MB of jars into ~/.m2)"
  mkdir -p "$parent" "$DIR"
  tmp="$(mktemp -d "$parent/.build-$key.XXXXXX")"
  cp -r "$SRC/pom.xml" "$SRC/src" "$tmp/"
  if ! (cd "$tmp" && JAVA_HOME="$java_home" mvn -B -ntp -Dstyle.color=never compile dependency:copy-dependencies) \
    >"$BUILDLOG" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$BUILDLOG" >&2
    die "building the neo4j launcher failed; see $BUILDLOG"
  fi
  # Atomic publish; if another start got there first, keep theirs.
  mv -T "$tmp" "$BUILD" 2>/dev/null || rm -rf "$tmp"
}

have_driver() { [[ -x "$PY" ]] && "$PY" -c 'import neo4j' >/dev/null 2>&1; }

# bolt_query : a real Cypher round trip through the Python driver.
bolt_query() {
  "$PY" - "$URL" <<'PY'
import sys
from neo4j import GraphDatabase
with GraphDatabase.driver(sys.argv[1], auth=None, connection_timeout=5) as driver:
    with driver.session() as session:
        assert session.run("RETURN 1 AS ok").single()["ok"] == 1
PY
}

# wait_ready PID : until Bolt answers a query (or only the port, without the driver); fail early if PID dies.
wait_ready() {
  local pid="$1" deadline=$((SECONDS + TIMEOUT)) by_query=1
  if ! have_driver; then
    by_query=0
    log "WARNING: no neo4j driver in $ROOT/.venv (run 'make install'); readiness checked by the Bolt port only"
  fi
  while ((SECONDS < deadline)); do
    if ! proc_alive "$pid"; then
      tail -n 40 "$LOGFILE" >&2
      die "neo4j exited during startup; see $LOGFILE and $DATA/logs/debug.log"
    fi
    if port_open 127.0.0.1 "$PORT" && { ((by_query == 0)) || bolt_query >/dev/null 2>&1; }; then return 0; fi
    sleep 0.5
  done
  tail -n 40 "$LOGFILE" >&2
  die "neo4j did not become ready within ${TIMEOUT}s (STEWARD_NEO4J_TIMEOUT); see $LOGFILE and $DATA/logs/debug.log"
}

start() {
  apt_install openjdk-17-jdk-headless maven
  if running; then
    wait_ready "$(head -n1 "$PIDFILE" | tr -dc '0-9')"
    log "neo4j already running on 127.0.0.1:$PORT"
    return 0
  fi
  if port_open 127.0.0.1 "$PORT"; then
    die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT"); set STEWARD_NEO4J_PORT or stop it"
  fi
  local java t0 pid
  java="$(java_bin)"
  build
  mkdir -p "$DIR" "$DATA/tmp"
  rm -f "$PIDFILE"
  log "starting neo4j $VERSION on 127.0.0.1:$PORT"
  echo "=== $(date -Is) start: neo4j $VERSION, bolt 127.0.0.1:$PORT, build $BUILD" >>"$LOGFILE"
  t0="$(date +%s.%N)"
  # exec keeps the pid: $! is the JVM. setsid detaches it from the caller's terminal and process group.
  # Temp files, perf data and crash logs stay under .services/neo4j (nothing written elsewhere).
  (cd "$DIR" && exec setsid "$java" -Xms512m -Xmx1g \
    -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow -XX:-UsePerfData \
    -XX:ErrorFile="$DIR/hs_err_pid%p.log" -Djava.io.tmpdir="$DATA/tmp" \
    -Dio.netty.tryReflectionSetAccessible=true -Djdk.nio.maxCachedBufferSize=1024 -Dlog4j2.disable.jmx=true \
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    -cp "$BUILD/target/classes:$BUILD/target/lib/*" "$MAIN_CLASS" "$DATA" "$PORT" \
    >>"$LOGFILE" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  log "neo4j ready: $URL (pid $pid, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
}

stop() {
  if running; then
    log "stopping neo4j"
    stop_pid "$PIDFILE" 60
  else
    log "neo4j not running"
    rm -f "$PIDFILE"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "neo4j running on 127.0.0.1:$PORT"; else echo "neo4j stopped"; exit 1; fi ;;
  env) echo "NEO4J_URL=$URL" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
