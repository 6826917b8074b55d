"""``a2w rig check``: the preflight before a rig run. Each check reads what is on this host, never
touches a robot: no Flexiv ``Robot`` is constructed and no packet leaves the host.

=============  ===========================================================================
check          passes when
=============  ===========================================================================
config         the rig configuration file validates (``a2w.rig.config.validate_rig``)
cameras        every configured RealSense serial is connected (librealsense context query),
               on USB 3 (its ``usb_type_descriptor``) unless ``realsense.allow_usb2``
flexivrdk      the RDK imports in the arm workers' interpreter (``flexiv.worker_python``), is
               the 1.x line, and is the release made for the configured FSP version
arm NICs       each configured NIC address is assigned to an interface of this host (a bind
               to the address: no ping, no ARP)
calibration    the folder loads (``load_calibration``), its cameras.yaml serials are the
               configured cameras, and no file is older than ``max_age_days``
gpu            the policy's torch device exists (``torch.cuda``) when it is a CUDA device
disk           the dataset root's file system has ``min_free_gb`` free and is writable
=============  ===========================================================================

Each result is pass or fail with what was found and, on failure, the fix. The hardware probes are
parameters (``Probes``) so that tests can hand in real librealsense software devices, a stand-in
RDK module, or another interpreter.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from a2w.arms.flexiv.rdk_api import PINNED_VERSION, check_rdk_line, fsp_for_rdk, versions_match
from a2w.rig.config import RigConfig, RigConfigError, load_rig, rig_problems

DEFAULT_MAX_AGE_DAYS = 90.0  # a rig is re-calibrated after a bump, a re-mount, or this long
DEFAULT_MIN_FREE_GB = 20.0  # ~5 h of three 640x480 H.264 streams at crf 23, plus the parquet
RDK_PROBE_TIMEOUT = 60.0  # importing the RDK starts no robot search; generous for a cold disk


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Probes:
    """Where each check looks; the defaults are this host's hardware."""

    # The connected RealSense devices (pyrealsense2 ``rs.device``s); None: a librealsense context.
    realsense_devices: Callable[[], list[Any]] | None = None
    # The policy's torch device -> (ok, what was found); None: ``torch.cuda`` in this process.
    gpu: Callable[[str], tuple[bool, str]] | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def _fail(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, False, detail, fix)


# -- cameras --------------------------------------------------------------------------------
def check_cameras(cfg: RigConfig, devices: Callable[[], list[Any]] | None = None) -> CheckResult:
    try:
        from a2w.cameras.realsense.source import context_lister, device_info
    except ImportError as exc:
        return _fail("cameras", f"pyrealsense2 does not import ({exc})",
                     "pip install pyrealsense2 (requirements/realsense.txt) and the librealsense udev rules")
    try:
        found = [device_info(d) for d in (devices or context_lister())()]
    except RuntimeError as exc:
        return _fail("cameras", f"librealsense could not list devices ({exc})",
                     "check the udev rules and that no other process holds the cameras")
    by_serial = {d.serial: d for d in found}
    allow_usb2 = bool(cfg.params["camera_node"].realsense.allow_usb2)  # type: ignore[attr-defined]
    missing, slow, ok = [], [], []
    for view, serial in cfg.camera_serials.items():
        d = by_serial.get(serial)
        if d is None:
            missing.append(f"{view} {serial}")
        elif d.usb.startswith("2") and not allow_usb2:
            slow.append(f"{view} {serial} on USB {d.usb}")
        else:
            ok.append(f"{view} {serial} (USB {d.usb or '?'})")
    others = sorted(set(by_serial) - set(cfg.camera_serials.values()))
    seen = f"connected: {', '.join(str(d) for d in found) or 'none'}"
    if missing or slow:
        fixes = []
        if missing:
            fixes.append("plug in the camera(s) or correct camera_node.realsense.serials "
                         f"(rs-enumerate-devices -s){'; unconfigured: ' + ', '.join(others) if others else ''}")
        if slow:
            fixes.append("move each to a USB 3 port and cable (or set camera_node.realsense.allow_usb2)")
        problems = ([f"not found: {', '.join(missing)}"] if missing else []) + \
            ([f"USB 2: {', '.join(slow)}"] if slow else [])
        return _fail("cameras", f"{'; '.join(problems)}; {seen}", "; ".join(fixes))
    return CheckResult("cameras", True, ", ".join(ok))


# -- Flexiv RDK -----------------------------------------------------------------------------
_PROBE = ("import importlib, json, sys\n"
          "m = importlib.import_module(sys.argv[1])\n"
          "v, f = getattr(m, '__version__', ''), getattr(m, '__file__', '')\n"
          "print(json.dumps({'version': str(v), 'file': str(f)}))\n")


def rdk_version(python: str, module: str, pythonpath: Sequence[str] = ()) -> tuple[str | None, str]:
    """(version, where) of ``module`` imported by interpreter ``python``, or (None, why not). A
    process of its own: the import never touches this one, and constructs no robot."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH", "")])])
    try:
        proc = subprocess.run([python, "-c", _PROBE, module], capture_output=True, text=True,
                              timeout=RDK_PROBE_TIMEOUT, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit code " + str(proc.returncode)])[-1]
        return None, f"{module} does not import with {python}: {last}"
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"{python} printed no version for {module}"
    return info["version"], info["file"]


def check_flexivrdk(cfg: RigConfig) -> CheckResult:
    fx = cfg.flexiv
    python = fx.worker_python or sys.executable
    version, where = rdk_version(python, fx.rdk_module, fx.worker_pythonpath)
    install = (f"install requirements/flexiv.txt (flexivrdk=={PINNED_VERSION}) with scripts/setup_flexiv_venv.sh "
               "and set arm_node.flexiv.worker_python to that venv's python")
    if version is None:
        return _fail("flexivrdk", where, install)
    problem = check_rdk_line(version) if version else f"{fx.rdk_module} has no __version__"
    if problem:
        return _fail("flexivrdk", f"{fx.rdk_module} {version} ({where}): {problem}", install)
    if not fx.software_version:
        return _fail("flexivrdk", f"{fx.rdk_module} {version}; the robots' FSP version is not configured",
                     "read the FSP version in Flexiv Elements and set arm_node.flexiv.software_version")
    paired = fsp_for_rdk(version)
    if paired is None:
        detail = f"{fx.rdk_module} {version} has no verified FSP pairing (configured FSP {fx.software_version})"
        if fx.accept_unverified_pairing:
            return CheckResult("flexivrdk", True, detail + "; accepted (flexiv.accept_unverified_pairing)")
        return _fail("flexivrdk", detail, f"install the flexivrdk release made for FSP {fx.software_version} "
                     "(a2w.arms.flexiv.rdk_api.RDK_FSP_PAIRS), or set flexiv.accept_unverified_pairing")
    if not versions_match(paired, fx.software_version):
        return _fail("flexivrdk", f"{fx.rdk_module} {version} is for FSP {paired}, the robots run FSP "
                     f"{fx.software_version} (a mismatch looks exactly like 'robot not found')",
                     f"install the flexivrdk release made for FSP {fx.software_version} "
                     "(a2w.arms.flexiv.rdk_api.RDK_FSP_PAIRS), or correct arm_node.flexiv.software_version")
    return CheckResult("flexivrdk", True, f"{fx.rdk_module} {version} for FSP {paired} ({where})")


# -- NICs ----------------------------------------------------------------------------------
def address_is_local(address: str) -> tuple[bool, str]:
    """Whether ``address`` is assigned to an interface of this host: binding a UDP socket to it
    succeeds only then (EADDRNOTAVAIL otherwise). Nothing is sent."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return False, "not assigned to any interface of this host"
        return False, f"cannot bind to it ({exc.strerror or exc})"
    return True, "assigned here"


def check_nics(cfg: RigConfig) -> CheckResult:
    fx = cfg.flexiv
    bad, good = [], []
    for side, nics in (("left", fx.left_nics), ("right", fx.right_nics)):
        if not nics:
            bad.append(f"{side}: none configured")
        for n in nics:
            ok, why = address_is_local(n)
            (good if ok else bad).append(f"{side} {n}" + ("" if ok else f": {why}"))
    if bad:
        return _fail("arm NICs", "; ".join(bad),
                     "give the NIC wired to each arm its static address (ip addr add ADDR/24 dev IFACE, or "
                     "the netplan file), or correct arm_node.flexiv.<arm>_nics")
    return CheckResult("arm NICs", True, ", ".join(good) + " (reachability itself: the arm node's connect)")


# -- calibration ----------------------------------------------------------------------------
def check_calibration(cfg: RigConfig, max_age_days: float, now: datetime) -> CheckResult:
    from a2w.calib.files import CalibrationError, load_calibration

    folder = cfg.calibration
    if not str(cfg.params["arm_node"].calibration):  # type: ignore[attr-defined]
        return _fail("calibration", "no calibration folder configured",
                     "calibrate the rig (docs/calibration.md) and set arm_node.calibration and "
                     "robot_state_node.calibration to calibration/<rig>")
    try:
        cal = load_calibration(folder)
    except CalibrationError as exc:
        return _fail("calibration", str(exc), "re-run the calibration that writes it (docs/calibration.md), "
                     "or restore the file from git; then `a2w rig check` again")
    problems = []
    for view, serial in cfg.camera_serials.items():
        have = cal.cameras[view].serial.removeprefix("_") if view in cal.cameras else ""
        if have != serial:
            problems.append(f"cameras.yaml {view} is for serial {have or '?'}, the rig's {view} camera is {serial}")
    ages = {name: (now - t).total_seconds() / 86400.0 for name, t in cal.created.items()}
    oldest = max(ages, key=lambda n: ages[n])
    stale = [f"{n} {ages[n]:.0f} days old" for n in sorted(ages) if ages[n] > max_age_days]
    future = [n for n in sorted(ages) if ages[n] < -1.0 / 24]
    if stale:
        problems.append(f"older than {max_age_days:g} days: {', '.join(stale)}")
    if future:
        problems.append(f"created in the future: {', '.join(future)} (the clock, or a hand-edited header)")
    if problems:
        return _fail("calibration", f"{folder} (rig {cal.rig}): " + "; ".join(problems),
                     "re-calibrate (docs/calibration.md: intrinsics, hand-eye, front, bases), or point "
                     "arm_node/robot_state_node.calibration at this rig's folder")
    return CheckResult("calibration", True, f"{folder} (rig {cal.rig}), oldest file {oldest} "
                       f"{max(ages[oldest], 0.0):.1f} days old")


# -- GPU ------------------------------------------------------------------------------------
def torch_device(device: str) -> tuple[bool, str]:
    """Whether torch can use ``device`` in this process, and what it found."""
    try:
        import torch
    except ImportError as exc:
        return False, f"torch does not import ({exc})"
    if not device.startswith("cuda"):
        return True, f"torch {torch.__version__}, device {device}"
    if not torch.cuda.is_available():
        return False, f"torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda})"
    index = int(device.partition(":")[2] or torch.cuda.current_device())
    count = torch.cuda.device_count()
    if index >= count:
        return False, f"{device}: only {count} CUDA device(s)"
    return True, f"{device}: {torch.cuda.get_device_name(index)}, torch {torch.__version__} CUDA {torch.version.cuda}"


def check_gpu(cfg: RigConfig, probe: Callable[[str], tuple[bool, str]] | None = None) -> CheckResult:
    device = cfg.policy_device
    ok, found = (probe or torch_device)(device)
    if ok:
        return CheckResult("gpu", True, found + ("" if device.startswith("cuda") else
                                                 " (the policy runs on the CPU: far slower than its 2 s chunks)"))
    return _fail("gpu", found, "install the NVIDIA driver and a CUDA build of torch (python -c 'import torch; "
                 "print(torch.cuda.is_available())'), or set policy_node.device")


# -- disk -----------------------------------------------------------------------------------
def check_disk(cfg: RigConfig, min_free_gb: float) -> CheckResult:
    root = cfg.dataset_root.absolute()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free / 1e9
    if not os.access(existing, os.W_OK):
        return _fail("disk", f"{root}: {existing} is not writable by this user",
                     "chown the dataset directory, or set record_node.root")
    if free < min_free_gb:
        return _fail("disk", f"{root}: {free:.1f} GB free, below {min_free_gb:g} GB",
                     "free space (move finished datasets off), or set record_node.root on a larger disk")
    return CheckResult("disk", True, f"{root}: {free:.1f} GB free")


# -- all ------------------------------------------------------------------------------------
def run_checks(rig: str | Path, *, max_age_days: float = DEFAULT_MAX_AGE_DAYS,
               min_free_gb: float = DEFAULT_MIN_FREE_GB, probes: Probes | None = None) -> list[CheckResult]:
    """Every check for the rig configuration at ``rig``, in the order of the table above."""
    probes = probes or Probes()
    try:
        cfg = load_rig(rig)
    except RigConfigError as exc:
        return [_fail("config", "; ".join(exc.problems), f"edit {rig} (docs/rig.md; configs/rig/example.yaml)")]
    problems = rig_problems(cfg)
    out = [_fail("config", "; ".join(problems), f"edit {rig} (docs/rig.md)") if problems
           else CheckResult("config", True, f"{rig}")]
    out.append(check_cameras(cfg, probes.realsense_devices))
    out.append(check_flexivrdk(cfg))
    out.append(check_nics(cfg))
    out.append(check_calibration(cfg, max_age_days, probes.now()))
    out.append(check_gpu(cfg, probes.gpu))
    out.append(check_disk(cfg, min_free_gb))
    return out


def format_table(results: Sequence[CheckResult]) -> str:
    """One line per check (PASS/FAIL, name, what was found); each failure's fix below it."""
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<{width}}  {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"{'':4}  {'':<{width}}  fix: {r.fix}")
    failed = sum(not r.ok for r in results)
    lines.append(f"\n{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
