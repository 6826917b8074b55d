import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from a2w import cli, nodes


@pytest.fixture(autouse=True)
def probe_nodes(monkeypatch, tmp_path):
    monkeypatch.setitem(nodes.NODES, "ticker", "tests.probe_components:Ticker")
    monkeypatch.setitem(nodes.NODES, "collector", "tests.probe_components:Collector")
    monkeypatch.setenv("A2W_RUN_DIR", str(tmp_path / "run"))


LAUNCH = """<launch>
  <arg name="count" default="0"/>
  <node pkg="a2w" exec="ticker" name="t"><param name="count" value="$(var count)"/></node>
  <node pkg="a2w" exec="collector" name="c"/>
</launch>
"""


def test_launch_runs_and_topics_introspects_it(tmp_path, capsys):
    f = tmp_path / "x.launch.xml"
    f.write_text(LAUNCH)
    rc = {}
    th = threading.Thread(target=lambda: rc.setdefault("rc", cli.main(["launch", str(f), "--duration", "3"])))
    th.start()
    # The snapshot appears once the host runs; building the CLI may first import torch (seconds
    # on a loaded machine), so wait for it rather than guess a delay.
    deadline = time.monotonic() + 30.0
    while cli.main(["topics"]) != 0:
        assert th.is_alive() and time.monotonic() < deadline, "no snapshot of the running launch"
        time.sleep(0.1)
    assert cli.main(["nodes"]) == 0
    th.join(10)
    out = capsys.readouterr().out
    assert rc["rc"] == 0
    assert "/ticks" in out and "/t" in out and "Collector" in out
    assert cli.main(["topics"]) == 1  # host gone: its snapshot was removed


def test_launch_exit_code_from_component_and_check(tmp_path, capsys):
    f = tmp_path / "x.launch.xml"
    f.write_text(LAUNCH)
    assert cli.main(["launch", str(f), "count:=3", "--duration", "10"]) == 3
    assert cli.main(["launch", str(f), "--check"]) == 0
    assert "tests.probe_components.Ticker" in capsys.readouterr().out


def test_launch_reports_errors_without_traceback(tmp_path, capsys):
    f = tmp_path / "x.launch.xml"
    f.write_text(LAUNCH)
    assert cli.main(["launch", str(f), "cnt:=3"]) == 2
    assert "unknown launch argument" in capsys.readouterr().err
    assert cli.main(["launch", str(f), "count:=x"]) == 2
    assert "expected an integer" in capsys.readouterr().err


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "a2w.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for word in ("launch", "topics", "nodes"):
        assert word in out


# `a2w launch` in a child process, with the probe components registered as in the fixture above.
RUN_WITH_PROBES = ("import sys; from a2w import cli, nodes; "
                   "nodes.NODES.update(ticker='tests.probe_components:Ticker', "
                   "collector='tests.probe_components:Collector'); "
                   "sys.exit(cli.main(sys.argv[1:]))")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_exits_nonzero_and_the_summary_says_interrupted(tmp_path, sig, code):
    """0 means the task succeeded (README); a run cut short by a signal must not look like that."""
    f = tmp_path / "x.launch.xml"
    f.write_text(LAUNCH)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "A2W_RUN_DIR": str(tmp_path / "run"),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", RUN_WITH_PROBES, "launch", str(f)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = proc.stdout.readline()  # printed once every node is up and spinning
        assert "running 2 node(s)" in started, started + proc.stderr.read()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, out + err
    assert f"stopped (interrupted by {sig.name}), exit code {code}" in out, out + err
