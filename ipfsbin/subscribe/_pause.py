"""Named pause points, so a test can kill a real process exactly between two steps.

With ``IPFSBIN_PAUSE_AT=<name>`` in the environment, :func:`pause_point` of
that name writes the process ID to ``IPFSBIN_PAUSE_FILE`` (when set) and
waits up to ``IPFSBIN_PAUSE_SECONDS`` (default 600) before going on. Without
the variable it does nothing. The crash tests send SIGKILL while a sync waits
after recording its new head and before releasing the old head's blocks
(``after-record``); the GC race test runs ``ipfsbin gc`` while a sync waits
with its new blocks fetched and not yet pinned (``before-keep``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["pause_point"]


def pause_point(name: str) -> None:
    if os.environ.get("IPFSBIN_PAUSE_AT") != name:
        return
    marker = os.environ.get("IPFSBIN_PAUSE_FILE")
    if marker:
        Path(marker).write_text(f"{os.getpid()}\n", encoding="ascii")
    time.sleep(float(os.environ.get("IPFSBIN_PAUSE_SECONDS", "600")))
