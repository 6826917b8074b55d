"""Real rclpy (third-party ros-jazzy wheels, rmw_fastrtps_cpp) running components through the rclpy
host, with a2w_interfaces built by colcon. Each test runs a script in a loopback-only netns."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from a2w.msgs.diagnostics import DiagnosticLevel
from tests.ros.support import run_isolated

GOLDEN = Path(__file__).parent / "golden" / "a2w_interfaces_type_hashes.json"


def test_rclpy_type_hashes_equal_the_golden_file(ros_tier: Path) -> None:
    rc, out, result = run_isolated("type_hashes.py")
    assert rc == 0 and result is not None, out[-3000:]
    golden = json.loads(GOLDEN.read_text())
    assert result == {k: v for k, v in golden.items() if k in result}
    assert len(result) == sum(1 for k in golden if "/msg/" in k or k.endswith(("_Request", "_Response", "_Event")))


def test_two_processes_params_pubsub_service_and_clean_shutdown(ros_tier: Path, tmp_path: Path) -> None:
    rc, out, r = run_isolated("two_processes.py", str(tmp_path))
    assert rc == 0 and r is not None, out[-3000:]
    # Parameters came from the YAML file (int 50 accepted for a float, as in-process).
    assert r["tasks"] == ["from-yaml"]
    assert r["rate_param"] == 50  # the YAML value, read back through the node's parameter service
    assert r["task_param"] == "from-yaml" and r["views_param"] == ["front", "left_wrist"]
    assert r["rate_desc"] == ["publish rate (Hz)", True, [[1.0, 200.0]]]
    assert r["views_type"] == 9  # PARAMETER_STRING_ARRAY
    # Reliable events arrive complete and in order; camera frames carry camera_info's intrinsics.
    assert r["events"] >= 30 and r["indices_consecutive"]
    assert r["views"] == ["front", "left_wrist"]
    assert r["frame_shapes"] == [[24, 32, 3]] and r["intrinsics_fx"] == [30.0]
    assert r["pixel_consistent"]
    # The service answered with the talker's own count, then SIGINT shut it down cleanly, with
    # the exit code of an interrupted run (as in-process).
    assert r["reply"][0] is True and r["reply"][1].startswith("test: sent ")
    assert r["talker_rc"] == 128 + signal.SIGINT, r["talker_out_tail"]
    assert r["marker"] is not None and r["marker"].startswith("sent ")
    assert r["listener_errors"] == 0


@pytest.mark.parametrize("threads", [1, 4])
def test_qos_latching_mismatch_blocked_component_and_blocking_calls(ros_tier: Path, threads: int) -> None:
    rc, out, r = run_isolated("qos_and_starvation.py", str(threads))
    assert rc == 0 and r is not None, out[-3000:]
    assert r["latched"] == [[7, "latched"]], "a late transient-local subscriber gets the last message"
    # Reliable subscriber vs best-effort publisher: DDS does not match them, and the host says so.
    assert r["mismatched"] == 0
    assert r["incompatible_qos"].get("/best_effort", 0) >= 1
    # A component blocked for 1.5 s is reported busy on /diagnostics while it blocks (from a host
    # thread, so also when it holds the only executor thread), while healthy nodes stay OK...
    assert [DiagnosticLevel.WARN, "busy in timer 0.05s"] in r["sleepy_diag"]
    assert r["busy_reported_while_blocked"], r["sleepy_diag"]
    assert r["ticker_diag_levels"] == [DiagnosticLevel.OK]
    # ...and never stops another component's 50 Hz timer for good: it ticks once the block ends.
    assert r["ticks_after_block"] >= 30, r
    if threads > 1:
        # On a multi-threaded executor other components do not even wait for it.
        assert r["ticks_while_blocked"] >= 30, r
    # A blocking service call from a callback is refused at once (it would wait for the executor
    # it blocks); call_async from a callback and call from a worker thread are answered.
    kind, text = r["calls"]["in_callback"]
    assert kind == "RuntimeError" and "call_async" in text, r["calls"]
    assert r["calls"]["async"] == "served async", r["calls"]
    assert r["calls"]["worker"] == "served worker", r["calls"]
    if threads == 1:  # any callback on the only executor thread, wrapped by the host or not
        assert r["calls"]["raw"].startswith("RuntimeError: ") and "executor's thread" in r["calls"]["raw"], r["calls"]
    else:  # another executor thread serves the response
        assert r["calls"]["raw"] == "served raw", r["calls"]
    assert r["caller_errors"] == 0
    assert r["ready"] == {"before_server": False, "after_server": True, "answer": "late"}, r["ready"]


def test_every_parameter_of_every_node_is_dumped(ros_tier: Path) -> None:
    """As `ros2 param dump` asks: ListParameters, then GetParameters for every listed name. A list
    parameter without a value made rclpy answer the whole request empty (dump printed {})."""
    rc, out, r = run_isolated("param_dump.py", timeout=300)
    assert rc == 0 and r is not None, out[-3000:]
    assert {"arm_node", "sim_node"} <= set(r["nodes"])
    for exe, n in r["nodes"].items():
        assert set(n["declared"]) <= set(n["listed"]), exe
        assert n["values"] == len(n["listed"]), f"{exe}: {n['values']} values for {len(n['listed'])} names"
    # Lists without a default keep their array type (set_parameters type checks stay static).
    arm, sim = r["nodes"]["arm_node"]["list_kinds"], r["nodes"]["sim_node"]["list_kinds"]
    assert arm["flexiv.left_nics"] == "str[]" and arm["flexiv.cartesian_stiffness"] == "float[]", arm
    assert sim["left_base"] == "float[]" and sim["faults"] == "str[]", sim
    assert not any(kind in ("byte[]", "not set") for n in r["nodes"].values() for kind in n["list_kinds"].values())
    # The real `ros2 param dump` (ros2cli, built into the tier) prints them all.
    assert r["cli"] is not None, "ros2 is not on the tier's PATH (scripts/setup_ros_tier.sh builds ros2cli)"
    for exe, (code, text, err) in r["cli"].items():
        assert code == 0, f"{exe}: {err}"
        for name in r["nodes"][exe]["declared"]:
            assert name.rsplit(".", 1)[-1] + ":" in text, f"{exe}: {name} missing from\n{text}"


def test_component_logs_reach_rosout_once_with_levels(ros_tier: Path) -> None:
    rc, out, r = run_isolated("rosout.py", timeout=180)
    assert rc == 0 and r is not None, out[-3000:]
    assert r["names"] == ["probe.chatty"], r
    assert r["built"], "a line logged while the component is built reaches /rosout too"
    # Python levels as rcutils severities (debug is below the default level, so not sent).
    assert r["levels"] == [["critical", 50], ["error", 40], ["exception", 40], ["info", 20], ["warning", 30]], r
    assert r["traceback_forwarded"], r
    assert r["function"] == ["tick"], "the record's own caller, not the handler"
    # Printed once on the console (by rcutils), not again by Python's root handler.
    assert r["console_counts"] and set(r["console_counts"]) == {1}, r["console_tail"]
    assert r["child_rc"] == 128 + signal.SIGINT, r["console_tail"]


def test_shipped_fastdds_profile_is_used_and_interoperates(ros_tier: Path, tmp_path: Path) -> None:
    rc, out, r = run_isolated("transport_profile.py", str(tmp_path), timeout=300)
    assert rc == 0 and r is not None, out[-3000:]
    shipped = r["shipped"]
    assert shipped.endswith("fastdds_shm.xml") and Path(shipped).is_file(), shipped
    # A node started by a2w.ros.main runs with the profile; full frames cross to a process with
    # the same profile and to one on Fast DDS's builtin transports (discovery over UDP on lo).
    for case in ("with_profile", "without_profile"):
        c = r[case]
        assert c.get("sender_profile") == shipped, c
        assert c["ok"] >= 60 and c["bad"] == 0, c
    assert r["with_profile"]["receiver_profile"] == shipped
    assert r["without_profile"]["receiver_profile"] == ""
    # A user's own profile file or another RMW is left alone; with neither, the shipped file is set.
    assert r["user_setting"] == [None, "/etc/mine.xml", None, False, shipped, shipped]
    # Found in a colcon install through the ament index, else in the source tree.
    assert r["lookup"] == [True, r["source_tree"], r["source_tree"]], r["lookup"]


def test_bad_parameters_stop_the_node_naming_them(ros_tier: Path) -> None:
    rc, out, r = run_isolated("bad_params.py")
    assert rc == 0 and r is not None, out[-3000:]
    for label, name in (("unknown", "bogus"), ("range", "rate"), ("type", "task")):
        code, text = r[label]
        assert code == 2, f"{label}: {text}"
        assert name in text, f"{label}: {text}"


def test_rosidl_hashes_of_the_colcon_build_equal_the_golden_file(ros_tier: Path) -> None:
    # rosidl writes the hash of every interface and service wrapper it generated; this also
    # covers the service-level hashes that no topic exposes.
    gen = ros_tier / "ws" / "build" / "a2w_interfaces" / "rosidl_generator_type_description" / "a2w_interfaces"
    rosidl: dict[str, str] = {}
    for f in gen.glob("*/*.json"):
        for h in json.loads(f.read_text())["type_hashes"]:
            rosidl[h["type_name"]] = h["hash_string"]
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) <= set(rosidl)
    assert {k: rosidl[k] for k in golden} == golden


def test_runtime_guards_params_worker_crash_clock_jump_and_topic_publishers(ros_tier: Path) -> None:
    rc, out, r = run_isolated("runtime_guards.py", timeout=300)
    assert rc == 0 and r is not None, out[-3000:]
    # Non-finite values from rclpy overrides are refused, naming node and parameter.
    for label, (code, text) in r["params"].items():
        name = label.split("=")[0]
        assert code == 2, f"{label}: {text}"
        assert "'/tunable'" in text and f"'{name}'" in text, f"{label}: {text}"
    assert {"driver.rate=.nan", "driver.rate=0.1"} <= set(r["params"])
    assert r["group"] == [2.0, ["x"], ["rate", "serials"]], r["group"]
    # A crashed worker ends the run with exit code 70 (not 0 after the whole duration).
    code, text, _ = r["crash"]
    assert code == 70, text
    assert "physics" in text and "RuntimeError: physics diverged" in text, text
    # A jump of /clock is reported on the node (forward 1000 s, then back); the first tick is not one.
    assert r["clock_jumps"] == 2, r
    assert "1001.1" in r["last_clock_jump"], r
    # Another process's publisher of a camera topic is named (the camera node's conflict check).
    assert r["publishers"] == ["/talker"], r
    assert r["resolved"] == "/rig/cameras/front/color/image_raw", r


def test_a_signal_ends_the_run_as_interrupted_while_building_or_spinning(ros_tier: Path) -> None:
    """As in-process: exit code 128 + signal number (not 0, which means the task succeeded) and
    the reason says which signal, also when it arrives while the component is still being built."""
    rc, out, r = run_isolated("signals.py", timeout=300)
    assert rc == 0 and r is not None, out[-3000:]
    for sig in (signal.SIGINT, signal.SIGTERM):
        for phase in ("building", "spinning"):
            code, text = r[f"{sig.name} {phase}"]
            assert code == 128 + sig, f"{sig.name} while {phase}: exit {code}\n{text}"
            assert f"interrupted by {sig.name}" in text, f"{sig.name} while {phase}:\n{text}"


def test_arm_node_driver_parameters_are_dotted_ros_parameters_checked_by_the_driver(ros_tier: Path) -> None:
    rc, out, r = run_isolated("arm_params.py", timeout=300)
    assert rc == 0 and r is not None, out[-3000:]
    for label, name in (("range", "parameter 'flexiv.rate': InvalidParameterValueException"),
                        ("old_name", "unknown parameter(s) ['flexiv_rate']"),
                        ("unset", "flexiv.left_serial: the arm's serial number is required"),
                        ("file", "flexiv.right_serial: both arms have the same serial number")):
        code, text = r[label]
        assert code == 2, f"{label}: {text}"
        assert name in text, f"{label}: {text}"
