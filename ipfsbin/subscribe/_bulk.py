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
unpinned and are kept once the head is accepted. A sync killed half way
leaves what ``refs`` fetched in the repo: the next one finds it there
instead of fetching it again.

Why a walk stops, and what is done then: ``GetDAG`` asks for all of a node's
children at once (hundreds of leaves under one index node). The serving
peer answers them in turn, at most 1 MiB outstanding per peer; boxo's
bitswap client meanwhile takes a want-block not answered within twice the
recent message latency (50 ms at least, so on a fast link soon) for a
DONT_HAVE, and after 16 in a row drops the peer from the session
(``bitswap/client/internal/messagequeue/donthavetimeoutmgr.go``,
``session/sessionwantsender.go``, boxo v0.35). The session then has nobody
to ask; the wants go out again only with the peer queue's rebroadcast, every
30 s. So a walk that delivers nothing for :data:`_STALL` seconds is hung up
(:mod:`ipfsbin.kubo.refs_walk`) and a new walk one level under every parent
of what it still owed takes over (a new session; the children already in the
repo are listed again from it, not fetched).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import queue
import threading
import time
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
from ipfsbin.kubo.refs_walk import RefsWalk, refs_walks
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import Moved

__all__ = ["RefsBulk", "refs_bulk"]

_BATCH: Final = 256
"""Most refs read back in one pipelined batch; most nodes fetched one by one at a time."""
_STALL: Final = 1.0
"""Seconds without a ref after which a walk is hung up and new walks take over (at 10^6
entries 1.29-1.47x Kubo's time, against 1.98x with 2 s at a higher load)."""
_GIVE_UP: Final = 30.0
"""Seconds without a new node after which owed nodes are fetched one by one."""
_DONE: Final = object()

_log = logging.getLogger(__name__)

Reader = Callable[[Sequence[CID]], list[bytes]]


class RefsBulk:
    """A :class:`~ipfsbin.subscribe._delta.Bulk` over Kubo's ``refs`` and pipelined reads.

    A ``refs`` walk that stops delivering for :data:`_STALL` seconds is hung up
    and a new walk one level under the parents of the nodes it still owed takes
    over (and so on down).
    When no new node has come for :data:`_GIVE_UP` seconds (a block no peer
    has stops every walk for good), up to :data:`_BATCH` of the owed nodes are
    fetched one by one through ``fetch`` (each its own bitswap request under
    ``fetch``'s timeout, so a block nobody has fails the sync), then walks take
    over again.
    """

    def __init__(
        self,
        client: KuboClient,
        read: Reader,
        fetch: BlockStore,
        *,
        workers: int,
        walks: tuple[str, int, str | None] | None = None,
    ) -> None:
        self.client = client
        self.read = read
        self.fetch = fetch
        self.workers = workers
        self.walks = walks  # host, port, authorization: walks that can be ended (refs_walk)
        self.restarts = 0

    def below(self, tops: Sequence[Node]) -> Moved:
        """Fetch and check every node under ``tops`` (checked nodes of one level >= 1)."""
        if any(top.level < 1 or top.level != tops[0].level for top in tops):
            raise ValueError("bulk tops must be internal nodes of one level")
        # each node still owed, with its checked parent and its place there
        expected = {c: (top, i) for top in tops for i, c in enumerate(top.children)}
        moved: dict[CID, None] = {}  # in order of arrival; also what a new walk lists again
        size = 0
        group, depth = list(tops), tops[0].level if tops else 1
        last_new = time.monotonic()
        while expected:
            before = len(moved)
            size += self._stream(group, depth, expected, moved)
            if len(moved) > before:
                last_new = time.monotonic()
            if not expected:
                break
            self.restarts += 1
            if time.monotonic() - last_new >= _GIVE_UP:
                size += self._one_by_one(list(itertools.islice(expected, _BATCH)), expected, moved)
                last_new = time.monotonic()
                if not expected:
                    break
            # one level down from every parent of an owed node: a deeper walk would list again
            # whole subtrees already here (seconds of local reads in Kubo for each restart)
            group, depth = list({id(parent): parent for parent, _ in expected.values()}.values()), 1
        return Moved(cids=tuple(moved), bytes=size)

    def _stream(
        self,
        tops: list[Node],
        depth: int,
        expected: dict[CID, tuple[Node, int]],
        moved: dict[CID, None],
    ) -> int:
        """Check what one ``refs`` walk ``depth`` levels under ``tops`` delivers; ``expected``
        keeps the rest."""
        blocks = MemoryBlockStore()
        tree = ProllyTree(blocks, cache_size=0)
        size = 0
        with self._refs([top.cid for top in tops], depth) as arrivals:
            for batch in arrivals:
                new = [cid for cid in batch if cid not in moved]  # listed again by a later walk
                for cid, data in zip(new, self.read(new), strict=True):
                    ref = expected.pop(cid, None)
                    if ref is None:
                        raise SchemaError(f"Kubo listed {cid}, which no checked index node links")
                    blocks.put_many([(cid, data)])
                    node = tree.child(*ref)  # level, last key, count and order against the parent
                    blocks.discard([cid])
                    if node.level > 0:
                        expected.update((c, (node, i)) for i, c in enumerate(node.children))
                    moved[cid] = None
                    size += len(data)
        return size

    def _one_by_one(
        self, wanted: list[CID], expected: dict[CID, tuple[Node, int]], moved: dict[CID, None]
    ) -> int:
        """Some of the nodes the walks left, fetched through ``fetch`` and checked."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            found = list(pool.map(within_operation(self._get), wanted))
        blocks = MemoryBlockStore()
        blocks.put_many(zip(wanted, found, strict=True))
        tree = ProllyTree(blocks, cache_size=0)
        for cid in wanted:
            node = tree.child(*expected.pop(cid))
            if node.level > 0:
                expected.update((c, (node, i)) for i, c in enumerate(node.children))
            moved[cid] = None
        return sum(len(data) for data in found)

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
        walk = None
        if self.walks is not None:
            host, port, authorization = self.walks
            walk = RefsWalk(host, port, authorization=authorization)
        refs = self.client.refs if walk is None else walk.refs

        def listen() -> None:
            try:
                # no Kubo timeout: the walk may take minutes; the sync's deadline bounds it
                for cid in refs(tops, max_depth=depth):
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
                    _log.info("refs under %s stalled for %g s: walking again", tops[0], _STALL)
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
            stop.set()  # an abandoned walk ends now, or else at its next ref (or the deadline)
            if walk is not None:
                walk.end()


@contextmanager
def refs_bulk(client: KuboClient, *, fetch_timeout: timedelta, workers: int) -> Iterator[RefsBulk]:
    """A :class:`RefsBulk` reading through a pipelined connection to ``client``'s API, or
    ``workers`` concurrent ``block/get`` calls when the API is not plain HTTP over TCP."""
    fetch = KuboBlockStore(client, offline=False, fetch_timeout=fetch_timeout)
    pipelined = pipelined_blocks(client)
    if pipelined is not None:
        with pipelined:
            yield RefsBulk(client, pipelined.read, fetch, workers=workers, walks=refs_walks(client))
        return
    local = KuboBlockStore(client, offline=True)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ipfsbin-read") as pool:

        def read(cids: Sequence[CID]) -> list[bytes]:
            return list(pool.map(within_operation(local.get), cids))

        yield RefsBulk(client, read, fetch, workers=workers)
