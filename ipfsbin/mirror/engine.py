"""The pinning engines a mirror drives: IPFS Cluster's REST API, a Pinning Service API
directly, or through Kubo's ``pin remote`` client.

An engine keeps named pins with a replication factor and reports, per pin,
its status on every peer as the engine sees it. The mirror never tracks
replicas itself: the engine owns replication, peer health and re-pinning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ipfsbin.cluster.pinsvc import PinningServiceClient
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.kubo.client import KuboClient

__all__ = [
    "ClusterEngine",
    "EnginePin",
    "KuboRemoteEngine",
    "PinEngine",
    "PinningServiceEngine",
    "delegate_peers",
]


@dataclass(frozen=True, kw_only=True)
class EnginePin:
    """One pin as the engine reports it: name, and status per peer (or the service's one)."""

    cid: str
    name: str
    replication: int | None  # None: the service's own policy
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

    def holders(self, prefix: str) -> frozenset[str]:
        """IPFS peer IDs of the nodes keeping the engine's copies of the pins under ``prefix``.

        A usage vote leaves them out: they provide what the mirror pinned.
        """
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

    def holders(self, prefix: str) -> frozenset[str]:
        del prefix  # every cluster peer's Kubo may hold any pin
        return frozenset(
            str(ipfs["id"])
            for peer in self.client.peers()
            if isinstance(ipfs := peer.get("ipfs"), dict) and ipfs.get("id")
        )

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


class PinningServiceEngine:
    """A Pinning Service API: the service decides the replication (its own policy)."""

    def __init__(self, client: PinningServiceClient) -> None:
        self.client = client

    def pinned(self, prefix: str) -> dict[str, str]:
        return {p.cid: p.name for p in self.client.pins(name=prefix) if p.name.startswith(prefix)}

    def pin(self, cid: str, *, name: str, replication: int) -> None:
        del replication  # not part of the API: the service's policy
        self.client.add(cid, name=name)

    def unpin(self, cid: str) -> None:
        for pin in list(self.client.pins(cids=(cid,))):
            self.client.remove(pin.request_id)

    def status(self, prefix: str) -> list[EnginePin]:
        return _service_status(self.client.pins(name=prefix), prefix)

    def holders(self, prefix: str) -> frozenset[str]:
        pins = [p for p in self.client.pins(name=prefix) if p.name.startswith(prefix)]
        return delegate_peers(a for pin in pins for a in pin.delegates)


class KuboRemoteEngine:
    """A Pinning Service API through Kubo's ``pin remote`` client (a service Kubo knows by name)."""

    def __init__(self, kubo: KuboClient, service: str) -> None:
        self.kubo = kubo
        self.service = service

    # Kubo's --name filter matches the whole name only: list all, filter here.
    def pinned(self, prefix: str) -> dict[str, str]:
        pins = self.kubo.pin_remote_ls(service=self.service)
        return {p.cid: p.name for p in pins if p.name.startswith(prefix)}

    def pin(self, cid: str, *, name: str, replication: int) -> None:
        del replication  # not part of the API: the service's policy
        self.kubo.pin_remote_add(cid, service=self.service, name=name)

    def unpin(self, cid: str) -> None:
        self.kubo.pin_remote_rm([cid], service=self.service)

    def status(self, prefix: str) -> list[EnginePin]:
        return _service_status(self.kubo.pin_remote_ls(service=self.service), prefix)

    def holders(self, prefix: str) -> frozenset[str]:
        del prefix  # `pin remote ls` does not report the service's delegates
        return frozenset()


def delegate_peers(addresses: Iterable[str]) -> frozenset[str]:
    """Peer IDs of a Pinning Service's delegates (multiaddresses ending ``/p2p/ID``)."""
    return frozenset(a.rsplit("/p2p/", 1)[1] for a in addresses if "/p2p/" in a)


class _ServicePin(Protocol):
    @property
    def cid(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...


def _service_status(pins: Iterable[_ServicePin], prefix: str) -> list[EnginePin]:
    """A Pinning Service's pins under ``prefix``: one status each, the service's."""
    found = [
        EnginePin(
            cid=p.cid, name=p.name, replication=None, allocations=(), status={"service": p.status}
        )
        for p in pins
        if p.name.startswith(prefix)
    ]
    return sorted(found, key=lambda p: (p.name, p.cid))
