#!/usr/bin/env bash
# Start, stop or report every server the tests need: one script per name in this directory.
# `start` runs them in parallel (Keycloak and the first kube-apiserver build are slow) and fails if any failed.
# Usage: all.sh start|stop|status|env
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES=(keycloak postgres redis neo4j kube elasticsearch)
action="${1:-}"
case "$action" in
  start)
    declare -A pids
    t0=$SECONDS
    for s in "${SERVICES[@]}"; do bash "$HERE/$s.sh" start & pids[$s]=$!; done
    failed=()
    for s in "${SERVICES[@]}"; do wait "${pids[$s]}" || failed+=("$s"); done
    if ((${#failed[@]})); then echo "[services] ERROR: failed to start: ${failed[*]}" >&2; exit 1; fi
    echo "[services] all started in $((SECONDS - t0)) s" >&2 ;;
  env) for s in "${SERVICES[@]}"; do bash "$HERE/$s.sh" env; done ;;
  # Stop in reverse order; keep going if one fails, and report that at the end.
  stop)
    rc=0
    for ((i=${#SERVICES[@]}-1; i>=0; i--)); do bash "$HERE/${SERVICES[$i]}.sh" stop || rc=1; done
    exit "$rc" ;;
  # Report every service; exit 1 if any is not running.
  status)
    rc=0
    for s in "${SERVICES[@]}"; do bash "$HERE/$s.sh" status || rc=1; done
    exit "$rc" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
