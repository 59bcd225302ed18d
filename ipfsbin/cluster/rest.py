"""A client of IPFS Cluster's REST API (``api/rest``), over httpx.

Only what a mirror needs: pin with a replication factor, unpin, the pinset
with its allocations, and each pin's status on every peer as the cluster
reports it. Streaming endpoints answer newline-delimited JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from ipfsbin.cluster._http import HttpApi
from ipfsbin.codec.cid import CID
from ipfsbin.errors import ClusterError

__all__ = ["ClusterClient", "ClusterPin", "PinStatus"]

_TIMEOUT: Final = 60.0


@dataclass(frozen=True, kw_only=True)
class ClusterPin:
    """One entry of the cluster's pinset: what is pinned, how, and on which peers."""

    cid: CID
    name: str
    direct: bool
    replication_min: int
    replication_max: int
    allocations: tuple[str, ...]

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ClusterPin:
        return cls(
            cid=CID.from_text(_cid_text(value["cid"])),
            name=str(value.get("name") or ""),
            direct=value.get("max_depth") == 0,
            replication_min=int(value.get("replication_factor_min", -1)),
            replication_max=int(value.get("replication_factor_max", -1)),
            allocations=tuple(value.get("allocations") or ()),
        )


@dataclass(frozen=True, kw_only=True)
class PinStatus:
    """A pin's status on every cluster peer (``pinned``, ``pinning``, ``cluster_error``…)."""

    cid: CID
    name: str
    peers: Mapping[str, str]

    @property
    def pinned_on(self) -> int:
        return sum(1 for status in self.peers.values() if status == "pinned")

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> PinStatus:
        peer_map = value.get("peer_map") or {}
        return cls(
            cid=CID.from_text(_cid_text(value["cid"])),
            name=str(value.get("name") or ""),
            peers={peer: str(info.get("status", "")) for peer, info in peer_map.items()},
        )


def _cid_text(value: Any) -> str:
    # Cluster writes CIDs as strings, older versions as {"/": "..."}.
    return str(value["/"]) if isinstance(value, Mapping) else str(value)


class ClusterClient(HttpApi):
    """The REST API at ``url`` (e.g. ``http://127.0.0.1:9094``); a context manager."""

    def __init__(self, url: str, *, timeout: float = _TIMEOUT, auth: tuple[str, str] | None = None):
        super().__init__(url, timeout=timeout, auth=auth)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClusterError(
                f"IPFS Cluster at {self.url} did not answer {method} {path}: {exc}",
                hint="check that ipfs-cluster-service runs and that the URL is its REST API "
                "(port 9094 by default)",
            ) from exc
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise ClusterError(
                f"IPFS Cluster {method} {path}: {message.strip()} (HTTP {response.status_code})"
            )
        return response

    def _lines(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[Any]:
        text = self._request("GET", path, params=params).text
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)

    def id(self) -> Mapping[str, Any]:
        """This peer's identity: ``id``, ``peername``, ``ipfs`` (its Kubo), ``error``."""
        result: Mapping[str, Any] = self._request("GET", "/id").json()
        return result

    def peers(self) -> list[Mapping[str, Any]]:
        """Every peer of the cluster, as the answering peer sees it."""
        return list(self._lines("/peers"))

    def metrics(self, name: str = "freespace") -> list[Mapping[str, Any]]:
        """The latest ``name`` metric of every peer: the allocator picks peers among these."""
        found: list[Mapping[str, Any]] = self._request("GET", f"/monitor/metrics/{name}").json()
        return found

    def pin(
        self,
        cid: CID | str,
        *,
        name: str,
        replication: int,
    ) -> ClusterPin:
        """Pin ``cid`` recursively on ``replication`` peers (min and max both ``replication``).

        (Cluster v1.1.6's REST API pins recursively whatever ``mode`` says.)
        """
        params = {
            "name": name,
            "replication-min": str(replication),
            "replication-max": str(replication),
        }
        return ClusterPin.from_json(self._request("POST", f"/pins/{cid}", params=params).json())

    def unpin(self, cid: CID | str) -> None:
        self._request("DELETE", f"/pins/{cid}")

    def pinset(self) -> list[ClusterPin]:
        """The shared pinset (what is pinned where), without asking the peers' Kubos."""
        return [ClusterPin.from_json(value) for value in self._lines("/allocations")]

    def status(self, cid: CID | None = None) -> list[PinStatus]:
        """Each pin's status on every peer, as the peers report it (all pins without ``cid``)."""
        if cid is not None:
            return [PinStatus.from_json(self._request("GET", f"/pins/{cid}").json())]
        return [PinStatus.from_json(value) for value in self._lines("/pins")]
