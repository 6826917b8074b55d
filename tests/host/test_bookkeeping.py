"""The bookkeeping both hosts share (a2w.host.bookkeeping): the diagnostics level rule and the
DiagnosticLevel it reports. The rclpy host runs the same code; tests/ros/test_rclpy.py covers it
under real rclpy."""

import itertools
import json

import pytest

from a2w.host import Host
from a2w.host.host import NodeSpec
from a2w.msgs.diagnostics import DiagnosticLevel, DiagnosticStatus
from tests.probe_components import Ticker


@pytest.mark.parametrize("level", list(DiagnosticLevel))
def test_a_level_is_its_diagnostic_msgs_int_everywhere(level):
    """Values on /diagnostics are strings and levels go on the wire as a byte: a level must read
    as its int in str(), f-strings, JSON and comparisons, on every supported Python."""
    n = int(level)
    assert (str(level), f"{level}", json.dumps(level)) == (str(n),) * 3
    assert level == n and DiagnosticLevel(n) is level and bytes([level]) == bytes([n])
    as_enum, as_int = (DiagnosticStatus("/x", lv, "", {"level": lv}, 0.0) for lv in (level, n))
    assert as_enum == as_int and as_enum.values == {"level": str(n)}


@pytest.mark.parametrize("callbacks, workers, jumps, qos", list(itertools.product((0, 1, 7), repeat=4)))
def test_node_status_rule(callbacks, workers, jumps, qos):
    """ERROR for a crashed worker, callback errors or a sim clock jump (the message names the
    first of them in that order), WARN for a QoS mismatch only, OK otherwise."""
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(Ticker, "t"))
    node = host.nodes[0]
    node.executor.errors, node.worker_errors = callbacks, workers
    status = node.status({}, clock_jumps=jumps, incompatible_qos=qos)
    expected = ((DiagnosticLevel.ERROR, "worker crashed") if workers else
                (DiagnosticLevel.ERROR, "callback errors") if callbacks else
                (DiagnosticLevel.ERROR, "sim clock jumped") if jumps else
                (DiagnosticLevel.WARN, "incompatible QoS") if qos else (DiagnosticLevel.OK, "ok"))
    assert (status.level, status.message, status.name) == (*expected, "/t")
    assert isinstance(status.level, DiagnosticLevel)
    values = node.error_values()
    assert ("callback_errors" in values, "worker_errors" in values) == (bool(callbacks), bool(workers))


@pytest.mark.parametrize("health", [None, *[(lv, f"component says {lv.name}") for lv in DiagnosticLevel]])
@pytest.mark.parametrize("workers, qos", [(0, 0), (0, 1), (1, 0)])
def test_a_components_own_health_counts_when_it_is_worse(health, workers, qos):
    """Component.health (e.g. the policy holding the arms for a fault) sets the level and message
    when it is worse than the host's own verdict; the host's verdict wins otherwise."""
    host = Host(diagnostics_period=0)
    host.add(NodeSpec(Ticker, "t"))
    node = host.nodes[0]
    node.worker_errors = workers
    status = node.status({}, incompatible_qos=qos, health=health)
    own = ((DiagnosticLevel.ERROR, "worker crashed") if workers else
           (DiagnosticLevel.WARN, "incompatible QoS") if qos else (DiagnosticLevel.OK, "ok"))
    expected = health if health is not None and health[0] > own[0] else own
    assert (status.level, status.message) == expected
