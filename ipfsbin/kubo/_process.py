"""Processes of Kubo daemons: spawn detached, ask how one ended, terminate, wait."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from ipfsbin.errors import NodeError

__all__ = [
    "alive",
    "child_exit_status",
    "spawn_detached",
    "terminate",
    "wait_gone",
]


def alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) ipfs daemon process."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        # a reused pid must not pass: our daemons run as `<kubo> daemon ...`
        return cmdline.split(b"\0")[1:2] == [b"daemon"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spawn_detached(argv: list[str], env: Mapping[str, str], log_path: Path) -> int:
    """Start ``argv`` in a new session, output appended to ``log_path``; returns its pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], argv, dict(env), file_actions=actions, setsid=True)


def child_exit_status(pid: int) -> str | None:
    """How a daemon this process spawned ended, or None while it runs.

    Asks ``waitpid``, not ``/proc``: between spawn and exec the child's
    command line is still ours.
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if alive(pid) else "exited"
    if done == 0:
        return None
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if this process started it (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child this process started, wait up to ``timeout`` seconds, then SIGKILL."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        if wait_gone(pid, timeout):
            return
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_gone(pid, 10.0):
        raise NodeError(f"the Kubo daemon (pid {pid}) did not stop after SIGKILL")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False
