#!/usr/bin/env bash
# Entrypoint of the rig image (docker/Dockerfile): source ROS 2 and the a2w workspace, then run
# what the first argument names. `exec` hands the process over, so `docker stop` / Ctrl-C reach
# ros2 launch directly (compose's init forwards them) and its exit code is the container's.
#
#   FILE.launch.xml [name:=value ...]   ros2 launch a2w FILE ... (a path with a / is launched as is)
#   check [args ...]                     a2w rig check ... (the preflight)
#   a2w [args ...]                       the a2w CLI (calibration: a2w calib ...)
#   ros2 [args ...]                      the ros2 CLI
#   shell [bash args ...]                bash with everything sourced
#   help                                 this text
#
# A2W_ROS_SETUP and A2W_WS_SETUP name the two setup files (the image sets neither: the defaults
# are where the Dockerfile puts them); tests/docker/ points them at fakes.
set -eo pipefail

usage() {
  cat <<'EOF'
usage: docker compose run --rm rig COMMAND [ARGS...]

commands:
  FILE.launch.xml [name:=value ...]  ros2 launch a2w FILE (e.g. rig.launch.xml rig:=/config/rig.yaml);
                                     a path containing / is launched as that file
  check [ARGS...]                    a2w rig check ARGS (preflight: config, calibration, arms, cameras)
  a2w [ARGS...]                      the a2w CLI, e.g. a2w calib --help
  ros2 [ARGS...]                     the ros2 CLI, e.g. ros2 topic list
  shell [ARGS...]                    bash with ROS 2 and the workspace sourced
  help                               this text
EOF
}

die_usage() {
  echo "entrypoint: $1" >&2
  usage >&2
  exit 2
}

ros_setup="${A2W_ROS_SETUP:-/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash}"
ws_setup="${A2W_WS_SETUP:-/opt/a2w/ws/install/setup.bash}"

if [ $# -eq 0 ]; then
  die_usage "no command given"
fi
case "$1" in
  help | -h | --help)
    usage
    exit 0
    ;;
esac

for f in "$ros_setup" "$ws_setup"; do
  if [ ! -f "$f" ]; then
    echo "entrypoint: setup file $f not found (is this the a2w rig image?)" >&2
    exit 1
  fi
done
# ROS's setup scripts read variables they may not have set; no `set -u` around them.
# shellcheck source=/dev/null
source "$ros_setup"
# shellcheck source=/dev/null
source "$ws_setup"

cmd="$1"
shift
case "$cmd" in
  check) exec a2w rig check "$@" ;;
  a2w) exec a2w "$@" ;;
  ros2) exec ros2 "$@" ;;
  shell) exec bash "$@" ;;
  */*.launch.xml | */*.launch.py | */*.launch.yaml)
    [ -f "$cmd" ] || die_usage "launch file $cmd not found"
    exec ros2 launch "$cmd" "$@"
    ;;
  *.launch.xml | *.launch.py | *.launch.yaml) exec ros2 launch a2w "$cmd" "$@" ;;
  *) die_usage "unknown command '$cmd'" ;;
esac
