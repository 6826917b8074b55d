# Sourced by setup_flexiv_venv.sh and setup_lerobot_venv.sh: the side venvs that need Python 3.12
# (flexivrdk has no 3.11 wheels; LeRobot 0.6 needs >= 3.12) while .venv is 3.11.

# find_python312 [CANDIDATE]: print the path of the first Python 3.12 among CANDIDATE (a user's
# override), python3.12 on PATH, /usr/bin and pyenv's; status 1 when there is none.
find_python312() {
  local c
  for c in "${1:-}" python3.12 /usr/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python \
           "$HOME"/.pyenv/versions/3.12*/bin/python; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

# ensure_py312_venv TAG VENV OVERRIDE_VAR: create VENV with a Python 3.12 unless it exists; exit 3
# naming OVERRIDE_VAR (the variable a user sets to point at an interpreter) when none is found.
ensure_py312_venv() {
  local tag=$1 venv=$2 var=$3 py
  [ -x "$venv/bin/python" ] && return 0
  if ! py=$(find_python312 "${!var:-}"); then
    echo "$tag: no Python 3.12 found (set $var, or install python3.12)" >&2
    exit 3
  fi
  echo "$tag: creating $venv with $py" >&2
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv"
}
