"""Run components as ROS 2 nodes with the rclpy host.

``<exec> [--ros-args ...]`` (the console scripts ament installs), or for tools and tests
``python -m a2w.ros.main EXEC|module:Class [--name NAME] [--ros-args ...]``. ROS arguments
(``-r __node:=``, ``-r __ns:=``, ``--params-file``, ``-p``, remaps) are handled by rclpy, exactly
as ``ros2 run``/``ros2 launch`` pass them.

Before rclpy starts, ``configure_process`` sets up what image transport needs in this process
(docs/architecture.md §4): the shipped Fast DDS profile (``config/fastdds_shm.xml``, a shared-memory
segment larger than an image) unless the user set ``FASTRTPS_DEFAULT_PROFILES_FILE`` or another
RMW, and glibc's malloc thresholds so image-sized buffers reuse warm heap pages.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import logging
import os
import platform
import sys
from pathlib import Path
from typing import MutableMapping, Sequence

from a2w import nodes
from a2w.host.component import Component

log = logging.getLogger(__name__)

PROFILE_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"  # what Fast DDS 2.14 reads (FASTDDS_... is ignored)
PROFILE_NAME = "fastdds_shm.xml"
# glibc mallopt parameters (malloc.h): the values GLIBC_TUNABLES' mmap_threshold/trim_threshold set.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 16 << 20  # an image (921,600 B) and its serialised copies come from the heap...
TRIM_THRESHOLD = 256 << 20  # ...and freed ones stay mapped for the next frame


def fastdds_profile() -> Path | None:
    """The shipped profile: from the colcon install (ament index) if there is one, else the
    source tree (``ros_ws/src/a2w/config``)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("a2w")) / "config" / PROFILE_NAME
        if installed.is_file():
            return installed
    except (ImportError, LookupError, ValueError, OSError):  # no ament index (OSError: no AMENT_PREFIX_PATH)
        pass
    source = Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME
    return source if source.is_file() else None


def set_transport_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point Fast DDS at the shipped profile unless the user chose a profile file or an RMW other
    than Fast DDS (the default RMW of Jazzy). Returns the path set, or None."""
    env = os.environ if environ is None else environ
    if env.get(PROFILE_ENV):
        return None
    if not env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp").startswith("rmw_fastrtps"):
        return None
    path = fastdds_profile()
    if path is None:
        log.warning("Fast DDS profile %s not found: images larger than 512 KiB will be dropped over "
                    "shared memory", PROFILE_NAME)
        return None
    env[PROFILE_ENV] = str(path)  # read by Fast DDS when rclpy creates the first participant
    return str(path)


def tune_malloc() -> bool:
    """Keep image-sized buffers on the heap and freed heap memory mapped: each 921,600-byte copy
    of a frame otherwise lands in fresh pages (hundreds of page faults per image). ``mallopt``
    sets the same parameters as ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:trim_threshold=...``
    but from inside the process, so no re-exec is needed (the wheels' .pth hook already re-execs
    Python once). Fixed values also turn off glibc's adaptive threshold. Skipped where the user set
    GLIBC_TUNABLES or the C library is not glibc. Returns whether it applied."""
    if os.environ.get("GLIBC_TUNABLES") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


def configure_process() -> None:
    """What every process hosting a2w nodes under rclpy sets before ``rclpy.init``."""
    profile = set_transport_profile()
    if profile:
        log.debug("%s=%s", PROFILE_ENV, profile)
    tune_malloc()


def load_component(target: str) -> type[Component]:
    """An exec name from ``a2w.nodes.NODES`` or ``module:Class``."""
    if ":" not in target:
        return nodes.load(target)
    module, _, cls = target.partition(":")
    obj = getattr(importlib.import_module(module), cls)
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise TypeError(f"{target} is not a Component")
    return obj


def run(component: type[Component], name: str, argv: Sequence[str] | None = None,
        duration: float | None = None) -> int:
    """Init rclpy with ``argv`` (ROS arguments included), run one component until shut down."""
    import rclpy

    from a2w.ros.host import RosHost

    args = list(sys.argv if argv is None else argv)
    configure_process()
    rclpy.init(args=args)
    host = RosHost()
    # Before the component is built (devices, MuJoCo: seconds), replacing rclpy's handlers: a
    # signal then still ends the run as interrupted (128 + signal number), as in-process.
    host.install_signal_handlers()
    try:
        try:
            host.add(component, name)
        except ValueError as exc:  # parameter errors: say which, exit non-zero, no traceback
            log.error("%s", exc)
            sys.stderr.write(f"{exc}\n")
            return 2
        host.spin(duration)
    finally:
        host.shutdown()
        rclpy.try_shutdown()
    log.info("%s stopped (%s), exit code %d", name,
             host.stop_reason or "duration passed or ROS shut down", host.exit_code)
    return host.exit_code


def run_exec(exec_name: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(nodes.load(exec_name), exec_name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    p = argparse.ArgumentParser(prog="python -m a2w.ros.main", description=__doc__)
    p.add_argument("target", help="exec name from a2w.nodes or module:Class")
    p.add_argument("--name", help="node name (default: the exec name or the class name in snake case)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    comp = load_component(a.target)
    name = a.name or (a.target if ":" not in a.target else _snake(comp.__name__))
    return run(comp, name, [sys.argv[0], *ros_args], a.duration)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


if __name__ == "__main__":
    sys.exit(main())
