"""`a2w calib`: the ChArUco board, the sim rig's calibration truth, and the calibration tools.

``board``       write the printable board (PNG, or PDF) from ``calibration/board.yaml``
``sim-truth``   write ``calibration/sim/`` from the sim scene's tables
``intrinsics``  one camera's pinhole + distortion from board views
``handeye``     per arm, ``<arm>_tcp -> wrist camera`` (eye-in-hand, board fixed on the table)
``front``       ``world -> front camera`` from the board at its known placement
``bases``       per arm, ``world -> <arm>_base`` from the wrist captures of the placed board

Each tool runs on the MuJoCo rig with ``--sim`` (renders the board, drives the arms, reports the
error against the sim's truth and fails when it misses 2 mm / 0.2°) or on recorded capture
folders (a2w.calib.capture); ``--out FOLDER`` writes the result into a calibration folder.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[5]
SIM_FOLDER = REPO / "calibration" / "sim"
TARGET_MM, TARGET_DEG = 2.0, 0.2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calib", help="camera and rig calibration (ChArUco board, hand-eye, extrinsics)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="calib_command", metavar="WHAT", required=True)

    def common(c: argparse.ArgumentParser, arms: bool = False) -> None:
        c.add_argument("--board", type=Path, default=REPO / "calibration" / "board.yaml", help="board definition")
        c.add_argument("--sim", action="store_true", help="capture in the MuJoCo rig and compare with its truth")
        c.add_argument("--views", type=int, default=10, help="sim: board views per camera (default 10)")
        c.add_argument("--seed", type=int, default=0, help="sim: random poses seed")
        c.add_argument("--save-capture", type=Path, help="sim: also write the rendered capture(s) here")
        c.add_argument("--out", type=Path, help="write the result into this calibration folder")
        c.add_argument("--rig", help="rig name for the written file (default: the folder's name)")
        if arms:
            for arm in ("left", "right"):
                c.add_argument(f"--{arm}", type=Path, help=f"capture folder of the {arm} wrist camera")
        else:
            c.add_argument("--capture", type=Path, help="capture folder (a2w.calib.capture)")

    b = cmds.add_parser("board", help="write the printable ChArUco board")
    b.add_argument("--board", type=Path, default=REPO / "calibration" / "board.yaml", help="board definition")
    b.add_argument("--out", type=Path, default=REPO / "calibration" / "board.png", help="PNG (or .pdf) path")
    b.add_argument("--pdf", action="store_true", help="also write a PDF next to it (true scale at 100 %%)")
    b.add_argument("--dpi", type=float, default=300.0)
    b.set_defaults(func=_board)
    t = cmds.add_parser("sim-truth", help="write the sim rig's calibration folder from the scene's tables")
    t.add_argument("--out", type=Path, default=SIM_FOLDER)
    t.set_defaults(func=_sim_truth)
    i = cmds.add_parser("intrinsics", help="a camera's intrinsics from board views")
    common(i)
    i.add_argument("--view", choices=("front", "left_wrist", "right_wrist"), required=True)
    i.add_argument("--no-distortion", action="store_true", help="fix distortion at zero (a pinhole renderer)")
    i.set_defaults(func=_intrinsics)
    for name, helptext, fn in (("handeye", "wrist camera in the TCP frame, per arm", _handeye),
                               ("bases", "arm bases in the world, per arm", _bases)):
        c = cmds.add_parser(name, help=helptext)
        common(c, arms=True)
        c.add_argument("--arm", choices=("left", "right", "both"), default="both", help="sim: which arm(s)")
        c.add_argument("--calibration", type=Path, help="folder whose cameras.yaml gives the intrinsics "
                       "(default with --sim: calibration/sim)")
        c.set_defaults(func=fn)
    f = cmds.add_parser("front", help="the front camera in the world")
    common(f)
    f.add_argument("--calibration", type=Path, help="folder whose cameras.yaml gives the intrinsics "
                   "(default with --sim: calibration/sim)")
    f.set_defaults(func=_front)


# -- helpers ------------------------------------------------------------------------------
def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _fmt(t: Any) -> str:
    xyz_rpy = t.to_xyz_rpy()
    return (f"translation [{', '.join(f'{v:+.5f}' for v in xyz_rpy[:3])}] m, "
            f"rpy [{', '.join(f'{math.degrees(v):+.4f}' for v in xyz_rpy[3:])}] deg")


def _check(what: str, err: tuple[float, float]) -> bool:
    ok = err[0] <= TARGET_MM and err[1] <= TARGET_DEG
    _out(f"  sim error {what}: {err[0]:.3f} mm, {err[1]:.4f} deg "
         f"({'within' if ok else 'MISSES'} the {TARGET_MM:g} mm / {TARGET_DEG:g} deg target)")
    return ok


def _cameras(args: argparse.Namespace) -> dict:
    from a2w.calib.files import read_cameras

    folder = args.calibration or (SIM_FOLDER if args.sim else None)
    if folder is None:
        raise SystemExit("--calibration FOLDER (its cameras.yaml gives the intrinsics) is required without --sim")
    return read_cameras(Path(folder) / "cameras.yaml")[0]


def _rig(args: argparse.Namespace) -> str:
    return args.rig or args.out.resolve().name


def _sim_rig(args: argparse.Namespace):
    from a2w.calib.sim_capture import SimRig

    return SimRig.open(_spec(args))


def _spec(args: argparse.Namespace):
    from a2w.calib.board import load_board

    return load_board(args.board)


def _run(fn, args: argparse.Namespace) -> int:
    from a2w.calib.files import CalibrationError
    from a2w.calib.solvers import SolveError

    try:
        return fn(args)
    except (CalibrationError, SolveError) as exc:
        sys.stderr.write(f"a2w calib {args.calib_command}: {exc}\n")
        return 2


# -- commands -----------------------------------------------------------------------------
def _board(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from a2w.calib.board import load_board, write_board_image

        spec = load_board(args.board)
        outs = [args.out] + ([args.out.with_suffix(".pdf")] if args.pdf and args.out.suffix.lower() != ".pdf" else [])
        for path in outs:
            write_board_image(spec, path, dpi=args.dpi)
            _out(f"wrote {path}")
        w, h = spec.size
        _out(f"board: {spec.squares_x}x{spec.squares_y} squares of {spec.square_length * 1000:g} mm, markers "
             f"{spec.marker_length * 1000:g} mm ({spec.dictionary}); {w * 1000:g} x {h * 1000:g} mm plus a "
             "half-square margin. Print at 100 % and measure a square.")
        return 0
    return _run(go, args)


def _sim_truth(args: argparse.Namespace) -> int:
    from a2w.calib.truth import write_sim_truth

    write_sim_truth(args.out)
    _out(f"wrote {args.out}")
    return 0


def _intrinsics(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from a2w.calib.capture import load_capture, save_capture
        from a2w.calib.files import read_cameras, write_cameras
        from a2w.calib.solvers import solve_intrinsics
        from a2w.calib.truth import sim_cameras

        spec = _spec(args)
        if args.sim:
            rig = _sim_rig(args)
            try:
                if args.view == "front":
                    cap = rig.board_views("front", args.views, args.seed)
                else:
                    cap = rig.wrist_capture(args.view.split("_")[0], args.views, args.seed)
            finally:
                rig.close()
            if args.save_capture:
                save_capture(cap, args.save_capture)
        elif args.capture:
            cap = load_capture(args.capture)
            if cap.view != args.view:
                raise SystemExit(f"--capture is of view {cap.view!r}, not {args.view!r}")
        else:
            raise SystemExit("give --sim or --capture DIR")
        res = solve_intrinsics(cap, spec, estimate_distortion=not args.no_distortion)
        c = res.camera
        _out(f"intrinsics {args.view}: fx {c.fx:.3f} fy {c.fy:.3f} cx {c.cx:.3f} cy {c.cy:.3f} px, distortion "
             f"[{', '.join(f'{d:+.5f}' for d in c.distortion)}]; reprojection rms {res.rms_px:.4f} px over "
             f"{res.n_views} views")
        ok = True
        if args.sim:
            t = sim_cameras()[args.view]
            df = max(abs(c.fx - t.fx), abs(c.fy - t.fy))
            dc = max(abs(c.cx - t.cx), abs(c.cy - t.cy))
            ok = df / t.fx <= 0.01
            _out(f"  sim error: focal {df:.3f} px ({100 * df / t.fx:.3f} %), principal point {dc:.3f} px "
                 f"(MuJoCo pinhole f {t.fx:g} px from fovy; {'within' if ok else 'MISSES'} the 1 % target)")
        if args.out:
            path = Path(args.out) / "cameras.yaml"
            if not path.is_file():
                raise SystemExit(f"{path}: missing; copy calibration/example/ to start a rig's folder")
            cams, _ = read_cameras(path)
            old = cams[args.view]
            cams[args.view] = type(c)(old.serial, c.width, c.height, c.fx, c.fy, c.cx, c.cy, c.distortion_model,
                                      c.distortion, "measured")
            write_cameras(args.out, _rig(args), cams, f"a2w calib intrinsics ({args.view} measured)",
                          {f"{args.view}_rms_px": res.rms_px, f"{args.view}_views": res.n_views})
            _out(f"wrote {path}")
        return 0 if ok else 1
    return _run(go, args)


def _wrist_solves(args: argparse.Namespace) -> tuple[dict, dict, bool]:
    """Hand-eye solves per arm (sim or capture folders), with the board placement per arm."""
    from a2w.calib.capture import load_capture, save_capture
    from a2w.calib.files import WRIST_VIEW
    from a2w.calib.solvers import solve_handeye

    spec = _spec(args)
    cams = _cameras(args)
    caps = {}
    if args.sim:
        arms = ("left", "right") if args.arm == "both" else (args.arm,)
        rig = _sim_rig(args)
        try:
            for arm in arms:
                caps[arm] = rig.wrist_capture(arm, args.views, args.seed)
                if args.save_capture:
                    save_capture(caps[arm], Path(args.save_capture) / arm)
        finally:
            rig.close()
    else:
        for arm in ("left", "right"):
            if getattr(args, arm):
                caps[arm] = load_capture(getattr(args, arm))
        if not caps:
            raise SystemExit("give --sim or --left DIR and/or --right DIR")
    results = {arm: solve_handeye(cap, spec, cams[WRIST_VIEW[arm]], source=str(getattr(args, arm) or "sim"))
               for arm, cap in caps.items()}
    return results, caps, bool(args.sim)


def _handeye(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from a2w.calib.files import read_handeye, write_handeye
        from a2w.calib.truth import sim_handeye

        results, _, sim = _wrist_solves(args)
        ok = True
        for arm, res in results.items():
            _out(f"handeye {arm} (tcp -> wrist camera optical): {_fmt(res.tcp_cam)}; reprojection rms "
                 f"{res.rms_px:.4f} px over {res.n_views} views")
            if sim:
                ok &= _check(f"{arm} hand-eye", res.tcp_cam.error_to(sim_handeye()[arm]))
        if args.out:
            path = Path(args.out) / "handeye.yaml"
            current = read_handeye(path)[0] if path.is_file() else {}
            merged = {**current, **{arm: r.tcp_cam for arm, r in results.items()}}
            if set(merged) != {"left", "right"}:
                raise SystemExit(f"{path}: missing; solve both arms or start from calibration/example/")
            resid = {f"{arm}_{k}": v for arm, r in results.items() for k, v in r.residuals().items()}
            write_handeye(args.out, _rig(args), merged, "a2w calib handeye (ChArUco, Park-Martin + reprojection "
                          "refinement)", resid)
            _out(f"wrote {path}")
        return 0 if ok else 1
    return _run(go, args)


def _bases(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from a2w.calib.capture import require
        from a2w.calib.files import read_bases, write_bases
        from a2w.calib.solvers import solve_base
        from a2w.calib.truth import sim_bases

        results, caps, sim = _wrist_solves(args)
        ok = True
        bases = {}
        for arm, res in results.items():
            require(caps[arm], str(getattr(args, arm) or "sim"), board=True)
            bases[arm] = solve_base(res, caps[arm].board_in_world)
            _out(f"base {arm} (world -> {arm}_base): {_fmt(bases[arm])}; reprojection rms {res.rms_px:.4f} px "
                 f"over {res.n_views} views")
            if sim:
                ok &= _check(f"{arm} base", bases[arm].error_to(sim_bases()[arm]))
        if args.out:
            path = Path(args.out) / "bases.yaml"
            current = read_bases(path)[0] if path.is_file() else {}
            merged = {**current, **bases}
            if set(merged) != {"left", "right"}:
                raise SystemExit(f"{path}: missing; solve both arms or start from calibration/example/")
            resid = {f"{arm}_{k}": v for arm, r in results.items() for k, v in r.residuals().items()}
            write_bases(args.out, _rig(args), merged, "a2w calib bases (wrist captures of the placed board)", resid)
            _out(f"wrote {path}")
        return 0 if ok else 1
    return _run(go, args)


def _front(args: argparse.Namespace) -> int:
    def go(args: argparse.Namespace) -> int:
        from a2w.calib.capture import load_capture, save_capture
        from a2w.calib.files import write_front
        from a2w.calib.solvers import solve_front
        from a2w.calib.truth import sim_front

        spec = _spec(args)
        cams = _cameras(args)
        if args.sim:
            rig = _sim_rig(args)
            try:
                cap = rig.front_capture()
            finally:
                rig.close()
            if args.save_capture:
                save_capture(cap, args.save_capture)
        elif args.capture:
            cap = load_capture(args.capture)
        else:
            raise SystemExit("give --sim or --capture DIR")
        res = solve_front(cap, spec, cams["front"], source=str(args.capture or "sim"))
        _out(f"front (world -> front camera optical): {_fmt(res.world_cam)}; reprojection rms {res.rms_px:.4f} px "
             f"over {res.n_corners} corners")
        ok = _check("front", res.world_cam.error_to(sim_front())) if args.sim else True
        if args.out:
            path = write_front(args.out, _rig(args), res.world_cam, "a2w calib front (ChArUco at a known placement)",
                               res.residuals())
            _out(f"wrote {path}")
        return 0 if ok else 1
    return _run(go, args)
