"""Keepers: how the blocks of accepted heads are kept, and let go.

Through Kubo they are links in one holder DAG pinned recursively (the node's
pin ledger builds it); daemon-less, they are rows in the local block file.
Which subscription holds a block is counted in the state, not here (see
:mod:`ipfsbin.subscribe.sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import FOLLOW_HOLDER, PinLedger
from ipfsbin.store.gateway import GatewayBlockStore
from ipfsbin.store.sqlite import SqliteBlockStore

__all__ = ["PIN_NAME", "BlockFileKeeper", "GatewayKeeper", "Keeper", "KuboKeeper"]

PIN_NAME: Final = FOLLOW_HOLDER
"""The name of every follower pin: a pin is shared by all subscriptions holding its block."""


class Keeper(Protocol):
    """Keeps the blocks of accepted heads (pins, or a local block file) and lets old ones go.

    A keeper does no counting: :func:`sync_subscription` asks it to release
    only blocks that no subscription holds any more. ``label`` names the
    subscription, for messages.
    """

    def keep(self, cids: Sequence[CID], *, label: str) -> None: ...

    def release(self, cids: Sequence[CID], *, label: str) -> None: ...


class KuboKeeper:
    """The follower's needs in the node's pin ledger, held by one holder DAG (``ipfsbin:follow``).

    Each keep or release rebuilds the holder of everything the follower needs
    and moves its one recursive pin (:mod:`ipfsbin.kubo.holder`), instead of
    a direct pin per block. The pin cannot tell which subscription holds a
    block; the state does (``held``). The node's
    :class:`~ipfsbin.kubo.pins.PinLedger` knows the follower as one holder
    beside a maintainer's workspace, so an envelope the workspace pins
    recursively is kept for both, and stays held for the follower when the
    workspace lets go.

    Not a recursive pin on the head itself: index entries link manifests, manifests
    link the packages, and commits link all of history, so a recursive pin
    would download every package of every platform. A follower holds only the
    head's commit, its trust roots and its index nodes.
    """

    def __init__(self, client: KuboClient, ledger: PinLedger | None = None) -> None:
        self.client = client
        self.ledger = PinLedger(client) if ledger is None else ledger

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        self.ledger.hold(PIN_NAME, cids, recursive=False)

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.ledger.release(PIN_NAME, cids)


class GatewayKeeper:
    """Keeping is writing the fetched blocks to the local file; releasing is deleting them."""

    def __init__(self, blocks: GatewayBlockStore) -> None:
        self.blocks = blocks

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        self.blocks.local.put_many(self.blocks.take(cids))
        missing = [c for c in cids if not self.blocks.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} were never fetched "
                f"(first: {missing[0]})"
            )
        self.blocks.settle()

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.blocks.local.delete(cids)


class BlockFileKeeper:
    """Releasing from the local block file without a gateway (``ipfsbin unsubscribe``).

    It keeps nothing new: ``keep`` only checks the blocks are in the file.
    """

    def __init__(self, local: SqliteBlockStore) -> None:
        self.local = local

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        missing = [c for c in cids if not self.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} are not in {self.local.path} "
                f"(first: {missing[0]})"
            )

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.local.delete(cids)
