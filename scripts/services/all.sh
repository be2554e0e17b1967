#!/usr/bin/env bash
# Start, stop or report every server the tests need. Later issues append to SERVICES.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES=(postgres redis)
action="${1:-}"
case "$action" in
  start|status) for s in "${SERVICES[@]}"; do bash "$HERE/$s.sh" "$action"; done ;;
  stop) for ((i=${#SERVICES[@]}-1; i>=0; i--)); do bash "$HERE/${SERVICES[$i]}.sh" stop; done ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
