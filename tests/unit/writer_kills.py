"""A writer process killed with SIGKILL at several moments of its writes, for the kept files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["kill_writer_at_moments"]

ROOT = Path(__file__).resolve().parents[2]
DELAYS = (0.05, 0.2, 0.35, 0.6, 0.9)


def kill_writer_at_moments(script: str, path: Path, check: Callable[[], None]) -> None:
    """Run ``script`` (argument: ``path``; prints ``ready`` then writes ``path`` again and
    again) and kill it after each of :data:`DELAYS` seconds; ``check`` runs after each kill
    that left a file."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in DELAYS:
        with subprocess.Popen(
            [sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, env=env
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if path.exists():
            check()
    assert path.exists()
