#!/usr/bin/env bash
# The browser the end-to-end tests drive: Debian's chromium (Playwright's Python package launches it with
# executable_path; Playwright's own browser download is never used). Installs it when missing.
set -euo pipefail
CHROMIUM="${STEWARD_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
echo "[browser] installing chromium (apt-get)"
SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
"$CHROMIUM" --version
