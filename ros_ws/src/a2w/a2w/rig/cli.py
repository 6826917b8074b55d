"""`a2w rig check RIG.yaml`: the rig preflight (a2w.rig.check), a table of pass/fail lines with
the fix for each failure; exit 1 on any failure, 2 when the arguments are wrong."""

from __future__ import annotations

import argparse
import sys

from a2w.rig.check import DEFAULT_MAX_AGE_DAYS, DEFAULT_MIN_FREE_GB, format_table, run_checks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rig", help="the real rig: preflight checks (docs/rig.md)",
                       description="Work with the real rig's configuration (docs/rig.md).")
    rsub = p.add_subparsers(dest="rig_command", metavar="COMMAND")
    c = rsub.add_parser(
        "check", help="check the rig configuration, cameras, RDK, NICs, calibration, GPU and disk",
        description="Preflight before a rig run: the rig configuration validates, the configured RealSense "
        "cameras are connected on USB 3, the Flexiv RDK matches the robots' FSP, the arm NICs are this "
        "host's, the calibration is valid and recent, the policy's GPU is there and the dataset disk has "
        "room. Touches no robot: no Flexiv Robot is constructed and nothing is sent off the host.",
        epilog="Exit status: 0 every check passed, 1 a check failed, 2 bad arguments.")
    c.add_argument("rig", help="rig configuration file (configs/rig/<rig>.yaml)")
    c.add_argument("--max-age-days", type=float, default=DEFAULT_MAX_AGE_DAYS,
                   help=f"a calibration file older than this fails (default {DEFAULT_MAX_AGE_DAYS:g})")
    c.add_argument("--min-free-gb", type=float, default=DEFAULT_MIN_FREE_GB,
                   help=f"free space the dataset root needs (default {DEFAULT_MIN_FREE_GB:g} GB)")
    c.set_defaults(func=check)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def check(args: argparse.Namespace) -> int:
    if args.max_age_days <= 0 or args.min_free_gb < 0:
        sys.stderr.write("a2w rig check: --max-age-days must be > 0 and --min-free-gb >= 0\n")
        return 2
    results = run_checks(args.rig, max_age_days=args.max_age_days, min_free_gb=args.min_free_gb)
    sys.stdout.write(format_table(results) + "\n")
    return 0 if all(r.ok for r in results) else 1
