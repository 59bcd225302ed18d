"""A test session's Kubo daemons do not outlive it, however pytest ends.

A session of its own runs a test holding a real node from the ``kubo_node``
fixture; that pytest is then ended with SIGTERM (its fixtures must stop the
node) or SIGKILL (the next session of the same checkout must stop it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.leftovers import MARKER, running

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).parents[2]
HOLDING_TEST = """\
import os, pathlib, time

def test_hold(kubo_node):
    pathlib.Path(os.environ["HOLD_FILE"]).write_text(str(kubo_node.pid))
    time.sleep(600)
"""


class Session:
    """Another pytest, rooted at ``root``, with this suite's plugins and Kubo fixtures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(
            'pytest_plugins = ["tests.leftovers", "tests.integration.conftest"]\n'
        )
        (root / "test_hold.py").write_text(HOLDING_TEST)
        self.hold_file = root / "daemon.pid"

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOLD_FILE": str(self.hold_file)}
        env.pop(MARKER, None)  # not one of this session's processes
        return subprocess.Popen(  # noqa: S603 - this interpreter, pytest
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--rootdir", str(self.root), "-c", str(self.root / "pytest.ini"), *args,
             str(self.root)],
            cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def daemon_pid(self, pytest_process: subprocess.Popen[str]) -> int:
        """The pid of the node the holding test runs, once it is up."""
        deadline = time.monotonic() + 120
        while not self.hold_file.exists():
            assert pytest_process.poll() is None, pytest_process.communicate()[0]
            assert time.monotonic() < deadline, "the holding test did not start its node"
            time.sleep(0.1)
        time.sleep(0.1)  # the pid is written in one call; let it land
        return int(self.hold_file.read_text())


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    held = Session(tmp_path)
    yield held
    if held.hold_file.exists():  # whatever the test asserted, this daemon does not stay
        pid = int(held.hold_file.read_text())
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_to_pytest_stops_its_daemons(session: Session) -> None:
    inner = session.start()
    daemon = session.daemon_pid(inner)
    assert running(daemon)
    inner.send_signal(signal.SIGTERM)
    out, _ = inner.communicate(timeout=120)
    assert inner.returncode != 0, out
    assert _gone_within(daemon, 5), f"daemon {daemon} still runs after pytest ended:\n{out}"


def test_the_next_session_stops_what_a_killed_one_left(session: Session) -> None:
    inner = session.start()
    daemon = session.daemon_pid(inner)
    inner.kill()
    inner.communicate(timeout=60)
    time.sleep(1)
    assert running(daemon)  # SIGKILL gave pytest no chance to stop it
    nothing = session.start("--collect-only")
    out, _ = nothing.communicate(timeout=120)
    assert _gone_within(daemon, 5), out
    assert "stopped 1 process(es) an ended test session left running" in out, out
    assert f"{daemon}: " in out, out
