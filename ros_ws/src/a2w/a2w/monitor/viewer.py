"""The web viewer, served by the Rerun CLI shipped in the ``rerun-sdk`` wheel (offline).

Why a child process: the SDK's in-process web server (``rr.serve_web_viewer``) always listens on
all interfaces, while ``rerun --serve-web --bind ADDR`` binds both of its servers (the page's
HTTP server and the gRPC proxy the SDK streams to) to ``ADDR``, 127.0.0.1 by default. The viewer
page and the data go only where the operator asked.

The child gets a private config and data directory in which Rerun's usage analytics are off, so
the monitor never phones home and leaves the user's Rerun settings alone. It runs under a small
bash guard that holds a pipe from the node: when the node's process ends, however it ends (even
SIGKILL), the pipe closes and the guard stops the viewer, so no orphan keeps the ports.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import rerun_cli

log = logging.getLogger(__name__)

# $0 is the viewer binary. Runs it, then waits for it to end or for stdin (the node's pipe) to
# close: EOF (read's status 1) stops it and removes its private directory (the node may be gone
# without a chance to); a timeout (status > 128) just polls again. Exits with the viewer's own
# status, so a viewer that could not start (a port in use) shows in poll(), its log kept for output().
_GUARD = r"""
"$0" "$@" </dev/null & c=$!
while kill -0 "$c" 2>/dev/null; do
  read -r -t 1 _; r=$?
  if [ "$r" -ne 0 ] && [ "$r" -le 128 ]; then
    kill -TERM "$c" 2>/dev/null; wait "$c"; rc=$?
    rm -rf -- "$A2W_VIEWER_DIR"
    exit "$rc"
  fi
done
wait "$c"
"""


def rerun_executable() -> Path:
    """The ``rerun`` binary of the installed wheel (the same version as the SDK)."""
    return Path(rerun_cli.__file__).resolve().parent / "rerun"


def _connect_host(bind: str) -> str:
    """Where a local client reaches a server bound to ``bind`` (any-address -> loopback)."""
    try:
        ip = ipaddress.ip_address(bind)
    except ValueError:
        return bind  # a host name
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "::1"
    return f"[{bind}]" if ip.version == 6 else bind


class ViewerServer:
    """``rerun --serve-web`` on ``bind``: the web viewer on ``web_port``, the gRPC proxy on
    ``grpc_port``. ``start`` returns at once; ``poll`` says whether the child still runs."""

    def __init__(self, bind: str, web_port: int, grpc_port: int, memory_limit: str = "512MiB") -> None:
        self.bind = bind
        self.web_port = web_port
        self.grpc_port = grpc_port
        self.memory_limit = memory_limit
        self.proc: subprocess.Popen | None = None
        self._dir: str | None = None

    @property
    def grpc_url(self) -> str:
        """The proxy URL the SDK streams to and the page connects to."""
        return f"rerun+http://{_connect_host(self.bind)}:{self.grpc_port}/proxy"

    @property
    def web_url(self) -> str:
        """The page to open in a browser; it connects to the proxy by itself."""
        q = urllib.parse.urlencode({"url": self.grpc_url})
        return f"http://{_connect_host(self.bind)}:{self.web_port}/?{q}"

    def start(self) -> None:
        """Start the viewer (returns at once; ``wait_ready`` says whether it came up)."""
        self.stop()  # a restart: the previous child and its directory go first
        exe = rerun_executable()
        if not exe.is_file():
            raise FileNotFoundError(f"the rerun-sdk wheel has no viewer binary at {exe}")
        self._dir = tempfile.mkdtemp(prefix="a2w-monitor-rerun-")
        cfg = Path(self._dir, "config", "rerun")
        cfg.mkdir(parents=True)
        (cfg / "analytics.json").write_text(json.dumps({"analytics_enabled": False, "analytics_id": "a2w-monitor",
                                                        "metadata": {}}))
        env = {**os.environ, "A2W_VIEWER_DIR": self._dir, "XDG_CONFIG_HOME": str(Path(self._dir, "config")),
               "XDG_DATA_HOME": str(Path(self._dir, "data")), "XDG_CACHE_HOME": str(Path(self._dir, "cache"))}
        cmd = ["bash", "-c", _GUARD, str(exe), "--serve-web", "--bind", self.bind, "--port", str(self.grpc_port),
               "--web-viewer-port", str(self.web_port), "--server-memory-limit", self.memory_limit, "--threads", "1"]
        self._log = open(Path(self._dir, "viewer.log"), "wb")  # closed in stop()
        # own session: a Ctrl-C at the terminal reaches the node, which stops the viewer in order
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        log.info("monitor: web viewer at %s (rerun pid %d)", self.web_url, self.proc.pid)

    def wait_ready(self, timeout: float = 15.0) -> bool:
        """True once the gRPC proxy accepts connections and the child still runs; False when it
        exited (e.g. a port in use) or did not come up within ``timeout`` seconds."""
        host = _connect_host(self.bind).strip("[]")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll() is not None:
                return False
            try:
                with socket.create_connection((host, self.grpc_port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            # the port may be another program's: ours exits at once when it cannot bind
            time.sleep(0.3)
            return self.poll() is None
        return False

    def poll(self) -> int | None:
        """None while the child runs, else its exit code (-1 when it was never started or stopped)."""
        return -1 if self.proc is None else self.proc.poll()

    def output(self) -> str:
        """The child's last output (why it exited, e.g. a port in use)."""
        if self._dir is None:
            return ""
        try:
            return Path(self._dir, "viewer.log").read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the guard stops the viewer within a second
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout)
            self._log.close()
            self.proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
