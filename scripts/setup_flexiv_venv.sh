#!/usr/bin/env bash
# Idempotent: a Python 3.12 virtualenv with the pinned flexivrdk (requirements/flexiv.txt) for the
# Flexiv RDK worker processes (arm node parameter flexiv.worker_python) and the SDK conformance
# tests. flexivrdk has no Python 3.11 wheels, so this cannot live in .venv (flexiv_facts.md §1.1).
# Prints the venv's python path on success; exits 3 when no Python 3.12 can be found.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FLEXIV_VENV:-build/flexiv-venv}"
REQ=requirements/flexiv.txt

. scripts/py312_venv.sh
ensure_py312_venv setup_flexiv_venv "$VENV" FLEXIV_PYTHON

stamp="$VENV/.flexiv-stamp"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_flexiv_venv: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')" >&2
  "$VENV/bin/pip" install -q --only-binary=:all: -r "$REQ" >&2
  echo "$want" > "$stamp"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
