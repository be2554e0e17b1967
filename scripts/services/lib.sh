#!/usr/bin/env bash
# Shared helpers for scripts/services/*.sh (sourced). Servers bind to 127.0.0.1, keep their data
# and pid files under .services/, keep downloads in a cache outside the clone, stop by pid.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${STEWARD_SERVICES_DIR:-$ROOT/.services}"
CACHE_DIR="${STEWARD_CACHE_DIR:-$HOME/.cache/steward-services}"
mkdir -p "$SERVICES_DIR" "$CACHE_DIR"

log() { echo "[services] $*" >&2; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

_apt_updated=0
# apt_install PKG... : install Debian packages that are missing (apt-get update once, only when needed).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
  if [[ $_apt_updated -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pid_alive FILE : the pid in FILE (first line) names a running process.
pid_alive() {
  local file="$1" pid
  [[ -f "$file" ]] || return 1
  pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pid FILE [SECONDS] : TERM the process in FILE, wait, then KILL; remove FILE.
stop_pid() {
  local file="$1" wait_s="${2:-20}" pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(head -n1 "$file" | tr -dc '0-9')"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop in ${wait_s}s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# port_open HOST PORT : something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for CMD TIMEOUT WHAT LOGFILE : poll CMD until it succeeds, or fail with the log's tail.
wait_for() {
  local check="$1" timeout="$2" what="$3" logfile="${4:-}"
  for _ in $(seq 1 $((timeout * 5))); do
    if eval "$check" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  [[ -n "$logfile" && -f "$logfile" ]] && tail -n 30 "$logfile" >&2
  die "$what did not become ready within ${timeout}s"
}
