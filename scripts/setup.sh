#!/usr/bin/env bash
# Idempotent setup for a fresh Debian bookworm machine (root) or a developer box:
# Debian packages the project needs, then a virtualenv in .venv with the pinned requirements and
# one editable install of both Python packages (a2world, a2w). Re-running is cheap: each step
# is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

# Debian packages:
#   libosmesa6        MuJoCo offscreen rendering on CPU (MUJOCO_GL=osmesa)
#   libgl1 libegl1    GL loaders MuJoCo's Python bindings open even for osmesa/egl
#   libusb-1.0-0      pyrealsense2's librealsense
#   iproute2 util-linux  loopback-only network namespaces for DDS/Zenoh/RDK tests (unshare, ip)
#   chromium          headless browser the monitor test loads the Rerun web viewer page in
APT_PACKAGES=(libosmesa6 libgl1 libegl1 libusb-1.0-0 iproute2 util-linux chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtualenv $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.setup-stamp"
want=$(cat requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing pinned Python requirements (first run takes a few minutes)"
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  "$VENV/bin/pip" install -q -r requirements/dev.txt
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
bash scripts/setup_ros_tier.sh  # real-rclpy test tier (tests/ros/): own venv, skips where unsupported
# Flexiv RDK venv (Python 3.12: no 3.11 wheels) for the arm driver's workers and the conformance tier.
bash scripts/setup_flexiv_venv.sh >/dev/null || echo "setup: no Flexiv RDK venv (needs Python 3.12); the conformance tier will skip"
# LeRobot's own dataset loader (Python 3.12, torch < 2.12): the real client of recorded datasets (tests/record/).
bash scripts/setup_lerobot_venv.sh >/dev/null || echo "setup: no LeRobot venv (needs Python 3.12); the dataset loader tests will skip"
echo "setup: ready ($VENV)"
