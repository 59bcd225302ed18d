"""Moving whole index subtrees into the local Kubo repo in bulk, for a first sync.

One ``block/get`` per node costs a bitswap round trip without a session
(about 150 blocks/s over loopback with 8 at a time). Kubo's own ``refs -r``
fetches a node's children together in one bitswap session, like its
recursive ``pin add``. Bounded with ``--max-depth`` to the subtree's height
it fetches exactly the index nodes: Kubo opens only the nodes above the
bound, so the manifests the leaves link to are never asked for.

The blocks land in the repo unpinned; the walk in :mod:`._delta` reads and
checks each one (hash, level, keys, counts against its parent) as before and
the keeper pins them once the head is accepted. A sync killed half way
leaves what ``refs`` fetched in the repo, so the next sync reads it locally
instead of fetching it again. Nothing here is trusted: a failed or
incomplete ``refs`` only means the walk fetches the missing nodes itself.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Final

from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError
from ipfsbin.kubo.client import KuboClient

__all__ = ["RefsPrefetch"]

_log = logging.getLogger(__name__)

_STREAMS: Final = 4
"""Subtrees moved at once (each ``refs`` call is one depth-first walk in Kubo)."""


class RefsPrefetch:
    """A :class:`~ipfsbin.subscribe._delta.Prefetch` over Kubo's ``refs`` (use as a context).

    Leaving the context stops the walks still running (the walk over the
    index no longer needs them) and waits for them to end.
    """

    def __init__(self, client: KuboClient, *, streams: int = _STREAMS) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="ipfsbin-refs")
        self._stop = threading.Event()
        self._running: list[Future[int]] = []
        self.subtrees = 0

    def subtree(self, cid: CID, depth: int) -> None:
        if self._stop.is_set():
            raise RuntimeError("the prefetch is closed")
        self.subtrees += 1
        self._running.append(self._pool.submit(self._walk, cid, depth))

    def _walk(self, cid: CID, depth: int) -> int:
        moved = 0
        try:
            for _ in self.client.refs(cid, max_depth=depth):
                moved += 1
                if self._stop.is_set():
                    break
        except IpfsbinError as exc:
            # the walk over the index fetches whatever is still missing itself
            _log.info("bulk fetch of %s stopped after %d blocks: %s", cid, moved, exc)
        return moved

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RefsPrefetch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
