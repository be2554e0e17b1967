#!/usr/bin/env bash
# Install dbt (dbt-core + dbt-postgres, every package pinned in requirements/dbt.lock) into a tool virtualenv OUTSIDE the clone and print the path of
# its `dbt` executable. dbt's own pins conflict with Steward's, so dbt never goes into Steward's venv or locks:
# the dbt tests (tests/sources/test_dbt.py) call this script, so a fresh machine installs dbt through the
# project's own files. Idempotent: once the venv holds exactly this lock, a second run only prints the path.
#
#   scripts/dbt.sh            # prints e.g. /root/.cache/steward/dbt-venv/bin/dbt
#   STEWARD_DBT_VENV=/path scripts/dbt.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/requirements/dbt.lock"
VENV="${STEWARD_DBT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/steward/dbt-venv}"
STAMP="$VENV/.steward-dbt-lock"
WANTED="$(sha256sum "$LOCK" | cut -d' ' -f1)"

if [[ -x "$VENV/bin/dbt" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" ]]; then
  echo "$VENV/bin/dbt"
  exit 0
fi

# One installer at a time (two test processes may start together); the loser finds the stamp afterwards.
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [[ -x "$VENV/bin/dbt" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" ]]; then
  echo "$VENV/bin/dbt"
  exit 0
fi

{
  PYTHON="${STEWARD_DBT_PYTHON:-$(command -v python3.11 || command -v python3)}"
  UV="$ROOT/.venv/bin/uv"
  rm -rf "$VENV"
  if [[ -x "$UV" ]]; then
    "$UV" venv -q --python "$PYTHON" "$VENV"
    "$UV" pip install -q --python "$VENV/bin/python" -r "$LOCK"
  else
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$LOCK"
  fi
  "$VENV/bin/dbt" --version
} >&2
echo "$WANTED" >"$STAMP"
echo "$VENV/bin/dbt"
