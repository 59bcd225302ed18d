"""The pinning engines a mirror drives: IPFS Cluster's REST API (and what they share).

An engine keeps named pins with a replication factor and reports, per pin,
its status on every peer as the engine sees it. The mirror never tracks
replicas itself: the engine owns replication, peer health and re-pinning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ipfsbin.cluster.rest import ClusterClient

__all__ = ["ClusterEngine", "EnginePin", "PinEngine"]


@dataclass(frozen=True, kw_only=True)
class EnginePin:
    """One pin as the engine reports it: name, and status per peer (or the service's one)."""

    cid: str
    name: str
    replication: int
    allocations: tuple[str, ...]
    status: Mapping[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "cid": self.cid,
            "name": self.name,
            "replication": self.replication,
            "allocations": list(self.allocations),
            "status": dict(self.status),
        }


class PinEngine(Protocol):
    def pinned(self, prefix: str) -> dict[str, str]:
        """CID text → name of every pin whose name starts with ``prefix``."""
        ...

    def pin(self, cid: str, *, name: str, replication: int) -> None:
        """Pin ``cid`` recursively on ``replication`` peers."""
        ...

    def unpin(self, cid: str) -> None: ...

    def status(self, prefix: str) -> list[EnginePin]:
        """Every pin under ``prefix`` with its status as the engine reports it."""
        ...


class ClusterEngine:
    """IPFS Cluster through its REST API: replication min = max = the mirror's factor."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client

    def pinned(self, prefix: str) -> dict[str, str]:
        return {str(p.cid): p.name for p in self.client.pinset() if p.name.startswith(prefix)}

    def pin(self, cid: str, *, name: str, replication: int) -> None:
        self.client.pin(cid, name=name, replication=replication)

    def unpin(self, cid: str) -> None:
        self.client.unpin(cid)

    def status(self, prefix: str) -> list[EnginePin]:
        pins = {str(p.cid): p for p in self.client.pinset() if p.name.startswith(prefix)}
        found: list[EnginePin] = []
        for info in self.client.status():
            pin = pins.get(str(info.cid))
            if pin is None:
                continue
            found.append(
                EnginePin(
                    cid=str(info.cid),
                    name=pin.name,
                    replication=pin.replication_max,
                    allocations=pin.allocations,
                    status=info.peers,
                )
            )
        return sorted(found, key=lambda p: (p.name, p.cid))
