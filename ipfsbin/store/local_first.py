"""A block store that answers from the local blocks, and asks the network only where allowed.

The binhost shim reads its catalog's blocks (manifests, descriptors,
platforms, attestations) through one store from several threads: the
start-up build and every request must never wait on the DHT or a slow peer
(Kubo waits its whole fetch timeout for a block nobody has), while the
publisher's background thread may. So the network is off by default and
switched on per thread (:meth:`LocalFirstStore.reaching`), or asked with a
short bound until its first miss (:meth:`LocalFirstStore.briefly`, the build
at start: with peers that hold the blocks it lists as before, without any it
stops asking after one short wait). A block missed where the network is off
is remembered (:meth:`LocalFirstStore.take_missed`) for the background
thread to fetch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import BlockNotFoundError
from ipfsbin.store.base import BlockStore

__all__ = ["LocalFirstStore"]


_LOCAL, _BRIEF, _NETWORK = 0, 1, 2


class LocalFirstStore:
    """``local`` (never the network); in a thread inside :meth:`reaching`, ``network``; inside
    :meth:`briefly`, ``quick`` (the network with a short timeout) until it first fails.

    Every store checks every block against its CID; writes go to ``local``.
    """

    def __init__(self, local: BlockStore, network: BlockStore, quick: BlockStore) -> None:
        self.local = local
        self.network = network
        self.quick = quick
        self._reach = threading.local()
        self._lock = threading.Lock()
        self._missed: set[CID] = set()

    def reaching(self) -> contextlib.AbstractContextManager[None]:
        """In this thread, for the duration, a block not held here is fetched from the network."""
        return self._mode(_NETWORK)

    def briefly(self) -> contextlib.AbstractContextManager[None]:
        """In this thread, for the duration, ``quick`` is asked for a block not held here until
        it first fails; from then on only local blocks are read."""
        return self._mode(_BRIEF)

    @contextlib.contextmanager
    def _mode(self, mode: int) -> Iterator[None]:
        before = getattr(self._reach, "mode", _LOCAL)
        self._reach.mode = mode
        try:
            yield
        finally:
            self._reach.mode = before

    def get(self, cid: CID) -> bytes:
        mode = getattr(self._reach, "mode", _LOCAL)
        if mode == _NETWORK:
            return self.network.get(cid)
        try:
            return self.local.get(cid)
        except BlockNotFoundError as exc:
            if mode == _BRIEF:
                try:
                    return self.quick.get(cid)
                except BlockNotFoundError:
                    self._reach.mode = _LOCAL  # no peer had it in time: stop asking
            with self._lock:
                self._missed.add(cid)
            raise BlockNotFoundError(
                f"{exc.message}; it is fetched in the background",
                hint="the build is listed once its blocks are here",
            ) from exc

    def missed(self) -> int:
        """Blocks missed outside :meth:`reaching` and not fetched since."""
        with self._lock:
            return len(self._missed)

    def take_missed(self) -> frozenset[CID]:
        """The blocks missed outside :meth:`reaching` since the last call (then forgotten)."""
        with self._lock:
            missed, self._missed = frozenset(self._missed), set()
        return missed

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        return self.local.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.local.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self.local.has(cid)
