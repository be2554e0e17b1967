#!/usr/bin/env bash
# Start, stop or report every server the tests need. Later issues append to SERVICES
# (elasticsearch, kube-apiserver, keycloak): one script per name in this directory.
# Usage: all.sh start|stop|status|env
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES=(postgres redis neo4j kube elasticsearch)
action="${1:-}"
case "$action" in
  start|env) for s in "${SERVICES[@]}"; do bash "$HERE/$s.sh" "$action"; done ;;
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
