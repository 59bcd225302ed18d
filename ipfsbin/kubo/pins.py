"""Pins ipfsbin makes in Kubo: one naming scheme, and the maintainer's moving pins.

Every pin ipfsbin makes is named by :func:`pin_name`: ``ipfsbin:<role>``
then what it keeps, colon-separated (``ipfsbin:follow``,
``ipfsbin:index:default:head``, ``ipfsbin:publish:manifest:dev-libs/foo-1``),
so a pin's maker can be told from its name alone (``pin ls``, GC, doctor).
Kubo keeps one pin per CID whatever its name; which of ipfsbin's holders
needs a block is counted by its owner (the follower's state), not by names.

A maintainer's head commit envelope is pinned recursively: that covers the
commit, its index tree, every manifest and binpkg the index links and
(through the parents) all of history. The trust root's envelope is pinned on
its own, and so is a draft waiting for co-signatures, so that co-signers
elsewhere can fetch it by CID.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient

__all__ = ["PIN_PREFIX", "KuboPins", "NoPins", "PinRole", "Pins", "is_ipfsbin_pin", "pin_name"]

PIN_PREFIX: Final = "ipfsbin"
PinRole = Literal["follow", "index", "publish", "cosign"]
_ROLES: Final = frozenset({"follow", "index", "publish", "cosign"})
# Names used before this scheme; still recognised as ipfsbin's own.
_LEGACY_PREFIXES: Final = ("ipfsbin-follow", "ipfsbin ")


def pin_name(role: PinRole, *subject: str) -> str:
    """``ipfsbin:<role>:<subject>...``, the name of every pin ipfsbin makes."""
    if role not in _ROLES:
        raise ValueError(f"unknown pin role {role!r}")
    if any(not part or ":" in part or part != part.strip() for part in subject):
        raise ValueError(f"pin name parts must be non-empty words without ':': {subject!r}")
    return ":".join((PIN_PREFIX, role, *subject))


def is_ipfsbin_pin(name: str) -> bool:
    """Whether a pin of this name was made by ipfsbin (this scheme or an earlier one)."""
    return name.startswith(PIN_PREFIX + ":") or name.startswith(_LEGACY_PREFIXES)


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
