"""Keeping a maintainer's objects pinned in Kubo while the head moves.

The head commit's envelope is pinned recursively: that covers the commit,
its index tree, every manifest and binpkg the index links and (through the
parents) all of history. The trust root's envelope is pinned on its own, and
so is a draft waiting for co-signatures, so that co-signers elsewhere can
fetch it by CID.
"""

from __future__ import annotations

from typing import Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient

__all__ = ["KuboPins", "NoPins", "Pins"]

# Pinning a new head fetches nothing (the blocks are local) but walks the DAG.
_PIN_TIMEOUT_SECONDS = 600.0


class Pins(Protocol):
    def pin(self, cid: CID, name: str) -> None:
        """Pin ``cid`` recursively (no-op when it already is)."""
        ...

    def move(self, old: CID | None, new: CID, name: str) -> None:
        """Move a recursive pin from ``old`` to ``new`` (just pin ``new`` when ``old`` is None)."""
        ...

    def unpin(self, cid: CID) -> None:
        """Drop the recursive pin on ``cid`` if there is one."""
        ...


class KuboPins:
    """:class:`Pins` over a Kubo daemon."""

    def __init__(self, client: KuboClient) -> None:
        self.client = client

    def pin(self, cid: CID, name: str) -> None:
        if not self.client.is_pinned(cid, pin_type="recursive"):
            self.client.pin_add([cid], recursive=True, name=name, timeout=_PIN_TIMEOUT_SECONDS)

    def move(self, old: CID | None, new: CID, name: str) -> None:
        if old is None or old == new:
            self.pin(new, name)
            return
        if not self.client.is_pinned(old, pin_type="recursive"):
            self.pin(new, name)
            return
        if self.client.is_pinned(new, pin_type="recursive"):
            self.unpin(old)
            return
        self.client.pin_update(old, new, unpin=True)

    def unpin(self, cid: CID) -> None:
        if self.client.is_pinned(cid, pin_type="recursive"):
            self.client.pin_rm([cid], recursive=True)


class NoPins:
    """Records what would be pinned; for block stores that keep everything (memory)."""

    def __init__(self) -> None:
        self.pinned: set[CID] = set()

    def pin(self, cid: CID, name: str) -> None:
        self.pinned.add(cid)

    def move(self, old: CID | None, new: CID, name: str) -> None:
        if old is not None:
            self.pinned.discard(old)
        self.pinned.add(new)

    def unpin(self, cid: CID) -> None:
        self.pinned.discard(cid)
