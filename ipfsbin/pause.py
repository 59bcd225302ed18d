"""Named pause points, so a test can kill a real process exactly between two steps.

With ``IPFSBIN_PAUSE_AT=<name>`` in the environment, :func:`pause_point` of
that name writes the process ID to ``IPFSBIN_PAUSE_FILE`` (when set) and
waits up to ``IPFSBIN_PAUSE_SECONDS`` (default 600) before going on, or
until that file is removed: a test removes it to let the process go on as
soon as it has seen what it waited for. Without the variable it does
nothing. The crash tests send SIGKILL while a sync waits after recording
its new head and before releasing the old head's blocks (``after-record``);
the GC race test runs ``ipfsbin gc`` while a sync waits with its new blocks
fetched and not yet pinned (``before-keep``); the holder test kills a sync
with a new holder DAG pinned and not yet marked current (``holder-pinned``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["pause_point"]


def pause_point(name: str) -> None:
    if os.environ.get("IPFSBIN_PAUSE_AT") != name:
        return
    seconds = float(os.environ.get("IPFSBIN_PAUSE_SECONDS", "600"))
    marker = os.environ.get("IPFSBIN_PAUSE_FILE")
    if not marker:
        time.sleep(seconds)
        return
    path = Path(marker)
    path.write_text(f"{os.getpid()}\n", encoding="ascii")
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
