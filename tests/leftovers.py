"""No process a test session started outlives it: a pytest plugin (loaded by tests/conftest.py).

Kubo daemons run in a session of their own, so a terminal's Ctrl-C reaches
pytest alone and the fixtures stop them in order. A pytest ended by SIGTERM
or SIGHUP (a CI job cancelled, a shell's job killed) would skip that
teardown; here those signals raise ``KeyboardInterrupt`` instead, which
pytest answers by tearing every fixture down.

A pytest killed with SIGKILL runs nothing at all. So every process the
session starts inherits ``IPFSBIN_TEST_SESSION=<pytest pid> <rootdir>``:
when the session ends, whatever of it still runs is stopped (and named on
stderr, since a fixture leaked it), and when a session starts it stops what
earlier sessions of the same checkout whose pytest is gone left behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import pytest

MARKER = "IPFSBIN_TEST_SESSION"


def pytest_configure(config: pytest.Config) -> None:
    root = str(config.rootpath)
    orphaned = _sweep(lambda owner, where: where == root and not _alive(owner))
    if orphaned:
        _say(f"stopped {len(orphaned)} process(es) an ended test session left running", orphaned)
    os.environ[MARKER] = f"{os.getpid()} {root}"
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    mine = os.environ.pop(MARKER, "")
    leaked = _sweep(lambda owner, where: f"{owner} {where}" == mine)
    if leaked:
        _say(f"stopped {len(leaked)} process(es) the test session left running", leaked)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name}: tearing the fixtures down")


def _sweep(owned: Callable[[int, str], bool]) -> list[str]:
    """SIGTERM every process whose marker ``owned`` accepts, SIGKILL what stays; their commands."""
    found = {pid: command for pid, owner, where, command in _marked() if owned(owner, where)}
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(running(pid) for pid in found):
        time.sleep(0.1)
    for pid in found:
        if running(pid):
            _signal(pid, signal.SIGKILL)
    return [f"{pid}: {command}" for pid, command in found.items()]


def _marked() -> Iterator[tuple[int, int, str, str]]:
    """(pid, owner pid, rootdir, command line) of every process carrying a session marker."""
    prefix = f"{MARKER}=".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for item in environ:
            if item.startswith(prefix):
                owner, _, where = item[len(prefix) :].decode(errors="replace").partition(" ")
                if owner.isdigit():
                    yield int(entry.name), int(owner), where, command.decode(errors="replace")
                break


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie is only waiting for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _say(headline: str, commands: list[str]) -> None:
    sys.stderr.write(f"tests/leftovers: {headline}:\n")
    for line in commands:
        sys.stderr.write(f"  {line[:200]}\n")
