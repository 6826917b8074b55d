#!/usr/bin/env bash
# Idempotent: a Python 3.12 virtualenv with LeRobot's dataset loader (requirements/lerobot.txt), the
# real client that tests/record/ and bench/record.py open every recorded dataset with. LeRobot 0.6
# needs Python >= 3.12 and torch < 2.12, so it cannot share .venv (Python 3.11, torch 2.13).
# Prints the venv's python path on success; exits 3 when no Python 3.12 can be found.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LEROBOT_VENV:-build/lerobot-venv}"
REQ=requirements/lerobot.txt
LOCK=requirements/lerobot-lock.txt  # exact versions of everything it pulls in

. scripts/py312_venv.sh
ensure_py312_venv setup_lerobot_venv "$VENV" LEROBOT_PYTHON

stamp="$VENV/.lerobot-stamp"
want=$(cat "$REQ" "$LOCK" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_lerobot_venv: installing $(grep -v '^#' "$REQ" | tr '\n' ' ') (first run downloads ~4 GB)" >&2
  "$VENV/bin/pip" install -q --only-binary=:all: -r "$REQ" -c "$LOCK" >&2
  "$VENV/bin/python" -c 'from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION; assert CODEBASE_VERSION == "v3.0"' >&2
  echo "$want" > "$stamp"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
