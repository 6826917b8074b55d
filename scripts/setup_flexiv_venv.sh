#!/usr/bin/env bash
# Idempotent: a Python 3.12 virtualenv with the pinned flexivrdk (requirements/flexiv.txt) for the
# Flexiv RDK worker processes (arm node parameter flexiv.worker_python) and the SDK conformance
# tests. flexivrdk has no Python 3.11 wheels, so this cannot live in .venv (flexiv_facts.md §1.1).
# Prints the venv's python path on success; exits 3 when no Python 3.12 can be found.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FLEXIV_VENV:-build/flexiv-venv}"
REQ=requirements/flexiv.txt

find_python() {
  local c
  for c in "${FLEXIV_PYTHON:-}" python3.12 /usr/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python \
           "$HOME"/.pyenv/versions/3.12*/bin/python; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(find_python); then
    echo "setup_flexiv_venv: no Python 3.12 found (set FLEXIV_PYTHON, or install python3.12)" >&2
    exit 3
  fi
  echo "setup_flexiv_venv: creating $VENV with $PY" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.flexiv-stamp"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_flexiv_venv: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')" >&2
  "$VENV/bin/pip" install -q --only-binary=:all: -r "$REQ" >&2
  echo "$want" > "$stamp"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
