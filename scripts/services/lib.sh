#!/usr/bin/env bash
# Shared helpers for scripts/services/*.sh (sourced). Servers bind to 127.0.0.1, keep their data
# and pid files under .services/, keep downloads in a cache outside the clone, stop by pid.
set -euo pipefail

_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The clone's root: git's toplevel of this directory, else two levels up (an exported tarball).
ROOT="$(git -C "$_LIB_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$_LIB_DIR/../.." && pwd))"
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
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
  # all.sh starts services in parallel: one apt-get at a time (dpkg has a single lock).
  exec {_apt_lock}>"$CACHE_DIR/.apt.lock"
  flock "$_apt_lock"
  if [[ $_apt_updated -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  flock -u "$_apt_lock"
}

# proc_alive PID : the process exists and is not a zombie (PID 1 here reaps orphans only every second or so).
proc_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat; stat="$(cat "/proc/$1/stat" 2>/dev/null || true)"
  [[ "${stat##*) }" != Z* ]]
}

# pid_alive FILE : the pid in FILE (first line) names a running process.
pid_alive() {
  local file="$1" pid
  [[ -f "$file" ]] || return 1
  pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
  [[ -n "$pid" ]] && proc_alive "$pid"
}

# stop_pid FILE [SECONDS] : TERM the process in FILE, wait, then KILL; remove FILE.
stop_pid() {
  local file="$1" wait_s="${2:-20}" pid
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(head -n1 "$file" | tr -dc '0-9')"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do proc_alive "$pid" || break; sleep 0.1; done
  if proc_alive "$pid"; then
    log "pid $pid did not stop in ${wait_s}s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# port_open HOST PORT : something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for_port HOST PORT TIMEOUT_S : wait until HOST:PORT accepts TCP connections (return 1 on timeout).
wait_for_port() {
  local host="$1" port="$2" timeout="${3:-30}"
  for _ in $(seq 1 $((timeout * 5))); do
    port_open "$host" "$port" && return 0
    sleep 0.2
  done
  return 1
}

# port_owner PORT : "pid/name" of the local listener on PORT, if ss can tell (for error messages).
port_owner() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n1 || true; }

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
