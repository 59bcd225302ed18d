"""Keeping a maintainer's objects pinned in Kubo while the head moves.

The head commit's envelope is pinned recursively: that covers the commit,
its index tree, every manifest and binpkg the index links and (through the
parents) all of history. The trust root's envelope is pinned on its own, and
so is a draft waiting for co-signatures, so that co-signers elsewhere can
fetch it by CID.

Every pin goes through the node's :class:`~ipfsbin.kubo.ledger.PinLedger`
under its name (the holder), so a follower holding the same envelopes on
the same node keeps them when the workspace lets go.
"""

from __future__ import annotations

from typing import Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.ledger import PinLedger

__all__ = ["KuboPins", "NoPins", "Pins"]


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
    """:class:`Pins` over a Kubo daemon, accounted in the node's pin ledger."""

    def __init__(self, client: KuboClient, ledger: PinLedger | None = None) -> None:
        self.client = client
        self.ledger = PinLedger(client) if ledger is None else ledger

    def pin(self, cid: CID, name: str) -> None:
        self.ledger.hold(name, [cid], recursive=True)

    def move(self, old: CID | None, new: CID, name: str) -> None:
        self.ledger.move(name, old, new)

    def unpin(self, cid: CID) -> None:
        self.ledger.release_recursive(cid)


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
