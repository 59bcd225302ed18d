"""Moving whole index subtrees through Kubo in bulk, checking each node as it lands.

One ``block/get`` per node costs a bitswap round trip without a session (at
best a few hundred blocks/s over loopback, whatever the concurrency). Kubo's
own ``refs -r`` fetches each node's children together in one bitswap session
(``merkledag.NewSession`` and ``ipld.GetDAG`` in ``core/commands/refs.go``),
as its recursive ``pin add`` does, and prints each ref only once the block is
in the repo. Bounded by ``--max-depth`` to the subtrees' height it fetches
exactly the index nodes: Kubo opens (and prefetches the children of) only
nodes above the bound, so the leaves are fetched and the manifests they link
to never asked for.

While ``refs`` runs, the refs it has printed are read back from the local
repo in pipelined batches (:mod:`ipfsbin.kubo.pipelined`) and each node is
checked against its parent (hash, level, last key, count, order) exactly as
the level walk does, so Kubo is trusted with nothing. The blocks land
unpinned; each checked batch is handed to ``checked`` (the sync pins them
while the walk goes on, :mod:`._early`). A sync killed half way leaves what
``refs`` fetched in the repo: the next one finds it there instead of
fetching it again.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Final, cast

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError, KuboError, SchemaError
from ipfsbin.index._node import Node
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.netlimits import within_operation
from ipfsbin.kubo.pipelined import pipelined_blocks
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import Checked, Moved

__all__ = ["RefsBulk", "refs_bulk"]

_BATCH: Final = 256
"""Most refs read back in one pipelined batch."""
_STALL: Final = 30.0
"""Seconds without a new ref after which the walk's remaining nodes are fetched otherwise."""
_DONE: Final = object()

_log = logging.getLogger(__name__)

Reader = Callable[[Sequence[CID]], list[bytes]]


class RefsBulk:
    """A :class:`~ipfsbin.subscribe._delta.Bulk` over Kubo's ``refs`` and pipelined reads.

    A ``refs`` walk that stops delivering for :data:`_STALL` seconds (a bitswap
    session can sit for a minute on this project's loaded machines, and a
    missing block stops it for good) is left behind: the nodes it was still
    to deliver are fetched one by one through ``fetch`` (each its own bitswap
    request under ``fetch``'s timeout), checked, and their subtrees handed to
    a new ``refs`` walk.
    """

    def __init__(
        self, client: KuboClient, read: Reader, fetch: BlockStore, *, workers: int
    ) -> None:
        self.client = client
        self.read = read
        self.fetch = fetch
        self.workers = workers
        self.restarts = 0

    def below(self, tops: Sequence[Node], *, checked: Checked | None = None) -> Moved:
        """Fetch and check every node under ``tops`` (checked nodes of one level >= 1);
        ``checked`` is told of each batch once it passed its checks."""
        if any(top.level < 1 or top.level != tops[0].level for top in tops):
            raise ValueError("bulk tops must be internal nodes of one level")
        moved: list[CID] = []
        size = 0
        groups = [list(tops)] if tops else []
        while groups:
            group = groups.pop()
            expected = {c: (top, i) for top in group for i, c in enumerate(top.children)}
            size += self._stream(group, expected, moved, checked)
            if not expected:
                continue
            self.restarts += 1
            tops_below: list[Node] = []
            wanted = list(expected)
            for start in range(0, len(wanted), _BATCH):
                nodes, got = self._one_by_one(wanted[start : start + _BATCH], expected)
                moved += [node.cid for node in nodes]
                if checked is not None:
                    checked([node.cid for node in nodes])
                size += got
                # leaves are done with; only internal nodes are kept, as the next walks' tops
                tops_below += [node for node in nodes if node.level > 0]
            for level in sorted({node.level for node in tops_below}):
                groups.append([node for node in tops_below if node.level == level])
        return Moved(cids=tuple(moved), bytes=size)

    def _stream(
        self,
        tops: list[Node],
        expected: dict[CID, tuple[Node, int]],
        moved: list[CID],
        checked: Checked | None,
    ) -> int:
        """Check what one ``refs`` walk under ``tops`` delivers; ``expected`` keeps the rest."""
        blocks = MemoryBlockStore()
        tree = ProllyTree(blocks, cache_size=0)
        size = 0
        with self._refs([top.cid for top in tops], tops[0].level) as arrivals:
            for batch in arrivals:
                for cid, data in zip(batch, self.read(batch), strict=True):
                    ref = expected.pop(cid, None)
                    if ref is None:
                        raise SchemaError(f"Kubo listed {cid}, which no checked index node links")
                    blocks.put_many([(cid, data)])
                    node = tree.child(*ref)  # level, last key, count and order against the parent
                    blocks.discard([cid])
                    if node.level > 0:
                        expected.update((c, (node, i)) for i, c in enumerate(node.children))
                    moved.append(cid)
                    size += len(data)
                if checked is not None:
                    checked(batch)
        return size

    def _one_by_one(
        self, wanted: list[CID], expected: dict[CID, tuple[Node, int]]
    ) -> tuple[list[Node], int]:
        """Some of the nodes a stalled walk left, fetched through ``fetch`` and checked."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            found = list(pool.map(within_operation(self._get), wanted))
        blocks = MemoryBlockStore()
        blocks.put_many(zip(wanted, found, strict=True))
        tree = ProllyTree(blocks, cache_size=0)
        nodes = [tree.child(*expected[cid]) for cid in wanted]
        return nodes, sum(len(data) for data in found)

    def _get(self, cid: CID) -> bytes:
        # once more after a timeout: a want a peer dropped (the abandoned walk's session
        # cancelling the same block as this request asked for it) is only sent again later
        try:
            return self.fetch.get(cid)
        except BlockNotFoundError:
            _log.info("fetching %s once more", cid)
            return self.fetch.get(cid)

    @contextmanager
    def _refs(self, tops: list[CID], depth: int) -> Iterator[Iterator[list[CID]]]:
        """Batches of the refs Kubo has fetched so far, as they come (a thread reads them);
        they end early when the walk fails or stalls."""
        arrived: queue.SimpleQueue[object] = queue.SimpleQueue()
        stop = threading.Event()

        def listen() -> None:
            try:
                # no Kubo timeout: the walk may take minutes; the sync's deadline bounds it
                for cid in self.client.refs(tops, max_depth=depth):
                    if stop.is_set():
                        return
                    arrived.put(cid)
            except KuboError as exc:
                _log.info("refs under %s ended early: %s", tops[0], exc)
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                arrived.put(exc)
            arrived.put(_DONE)

        def batches() -> Iterator[list[CID]]:
            while True:
                batch: list[CID] = []
                try:
                    item = arrived.get(timeout=_STALL)
                except queue.Empty:
                    _log.info("refs under %s stalled for %g s: fetching the rest", tops[0], _STALL)
                    return
                while True:
                    if item is _DONE:
                        if batch:
                            yield batch
                        return
                    if isinstance(item, BaseException):
                        raise item
                    batch.append(cast(CID, item))
                    if len(batch) >= _BATCH or arrived.empty():
                        break
                    item = arrived.get()
                yield batch

        context = contextvars.copy_context()  # the sync's operation deadline
        worker = threading.Thread(target=context.run, args=(listen,), daemon=True)
        worker.start()
        try:
            yield batches()
        finally:
            stop.set()  # an abandoned walk ends at its next ref (or the sync's deadline)


@contextmanager
def refs_bulk(client: KuboClient, *, fetch_timeout: timedelta, workers: int) -> Iterator[RefsBulk]:
    """A :class:`RefsBulk` reading through a pipelined connection to ``client``'s API, or
    ``workers`` concurrent ``block/get`` calls when the API is not plain HTTP over TCP."""
    fetch = KuboBlockStore(client, offline=False, fetch_timeout=fetch_timeout)
    pipelined = pipelined_blocks(client)
    if pipelined is not None:
        with pipelined:
            yield RefsBulk(client, pipelined.read, fetch, workers=workers)
        return
    local = KuboBlockStore(client, offline=True)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ipfsbin-read") as pool:

        def read(cids: Sequence[CID]) -> list[bytes]:
            return list(pool.map(within_operation(local.get), cids))

        yield RefsBulk(client, read, fetch, workers=workers)
