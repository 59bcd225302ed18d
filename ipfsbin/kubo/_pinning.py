"""Pins, swarm and repo: the part of the Kubo client that keeps blocks and peers."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboCommandError, KuboStreamError
from ipfsbin.kubo._rpc import Param, Rpc, args, cid_field, go_duration, int_field, string_field
from ipfsbin.kubo.records import Pin, PinType, RepoStat, SwarmPeer

__all__ = ["PinningCommands"]


class PinningCommands:
    """``pin/*``, ``swarm/*`` and ``repo/*``; mixed into ``KuboClient``."""

    _rpc: Rpc

    # -- pins ---------------------------------------------------------------

    def pin_add(
        self,
        cids: Sequence[CID],
        *,
        recursive: bool = True,
        name: str | None = None,
        timeout: float | None = None,
    ) -> tuple[CID, ...]:
        """Pin (fetching what is missing); ``timeout`` in seconds bounds the whole call."""
        params: list[Param] = [*args(cids), ("recursive", recursive), ("progress", False)]
        if name is not None:
            params.append(("name", name))
        if timeout is not None:
            params.append(("timeout", go_duration(timeout)))
        http_timeout = None if timeout is None else httpx.Timeout(timeout + 10.0, connect=5.0)
        obj = self._rpc.call_json("pin/add", params, timeout=http_timeout)
        return tuple(CID.from_text(c) for c in obj.get("Pins") or ())

    def pin_rm(self, cids: Sequence[CID], *, recursive: bool = True) -> tuple[CID, ...]:
        obj = self._rpc.call_json("pin/rm", [*args(cids), ("recursive", recursive)])
        return tuple(CID.from_text(c) for c in obj.get("Pins") or ())

    def pin_update(self, old: CID, new: CID, *, unpin: bool = True) -> None:
        """Move a recursive pin from ``old`` to ``new`` (walks only the difference)."""
        self._rpc.call_json("pin/update", [*args([old, new]), ("unpin", unpin)])

    def pin_ls(
        self, cids: Sequence[CID] = (), *, pin_type: PinType | str = "recursive"
    ) -> tuple[Pin, ...]:
        """Pins of ``pin_type`` (``"all"`` too); with ``cids``, Kubo errors if one is not pinned."""
        params: list[Param] = [
            *args(cids),
            ("type", pin_type),
            ("stream", False),
            ("quiet", False),
            ("names", True),
        ]
        obj = self._rpc.call_json("pin/ls", params)
        keys = obj.get("Keys") or {}
        if not isinstance(keys, dict):
            raise KuboStreamError(f"kubo pin/ls: expected a Keys object, got {keys!r}"[:300])
        pins = []
        for text, info in sorted(keys.items()):
            kind = str(info.get("Type")) if isinstance(info, dict) else ""
            # "indirect through <cid>" is still an indirect pin
            kind = "indirect" if kind.startswith("indirect") else kind
            if kind == "direct":
                pin_kind: PinType = "direct"
            elif kind == "indirect":
                pin_kind = "indirect"
            elif kind == "recursive":
                pin_kind = "recursive"
            else:
                raise KuboStreamError(f"kubo pin/ls: unknown pin type {kind!r} for {text}")
            name = str(info.get("Name") or "")
            pins.append(Pin(cid=CID.from_text(text), type=pin_kind, name=name))
        return tuple(pins)

    def is_pinned(self, cid: CID, *, pin_type: PinType | str = "recursive") -> bool:
        try:
            return bool(self.pin_ls([cid], pin_type=pin_type))
        except KuboCommandError as exc:
            if "not pinned" in exc.kubo_message:
                return False
            raise

    # -- swarm --------------------------------------------------------------

    def swarm_connect(self, addrs: Sequence[str]) -> None:
        """Connect to peers by full multiaddr (``/ip4/…/tcp/…/p2p/<peer id>``)."""
        self._rpc.call_json("swarm/connect", args(addrs))

    def swarm_peers(self) -> tuple[SwarmPeer, ...]:
        obj = self._rpc.call_json(
            "swarm/peers",
            [("verbose", False), ("streams", False), ("latency", False), ("direction", False)],
        )
        return tuple(
            SwarmPeer(
                peer_id=string_field("swarm/peers", p, "Peer"),
                addr=string_field("swarm/peers", p, "Addr"),
            )
            for p in obj.get("Peers") or ()
        )

    # -- repo ---------------------------------------------------------------

    def repo_stat(self) -> RepoStat:
        obj = self._rpc.call_json("repo/stat", [("size-only", False), ("human", False)])
        return RepoStat(
            repo_size=int_field("repo/stat", obj, "RepoSize"),
            storage_max=int_field("repo/stat", obj, "StorageMax"),
            num_objects=int_field("repo/stat", obj, "NumObjects", default=0),
            repo_path=string_field("repo/stat", obj, "RepoPath"),
            version=string_field("repo/stat", obj, "Version"),
        )

    def repo_gc(self, *, timeout: float | None = None) -> tuple[CID, ...]:
        """Remove unpinned blocks; returns their CIDs. Errors Kubo reports are raised at the end."""
        params: list[Param] = [("stream-errors", True), ("quiet", False), ("silent", False)]
        removed: list[CID] = []
        errors: list[str] = []
        with self._rpc.stream("repo/gc", params, timeout=timeout) as answer:
            for event in answer.iter_json():
                if event.get("Error"):
                    errors.append(str(event["Error"]))
                elif "Key" in event:
                    removed.append(cid_field("repo/gc", event, "Key"))
        if errors:
            raise KuboCommandError("repo/gc", "; ".join(errors[:5]))
        return tuple(removed)
