"""A client of the IPFS Pinning Service API (https://ipfs.github.io/pinning-services-api-spec/).

Any service that speaks it (IPFS Cluster's ``pinsvcapi``, commercial
services) with a bearer token. The replication factor is the service's
own policy: the API has no field for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from ipfsbin.cluster._http import HttpApi
from ipfsbin.errors import ClusterError

__all__ = ["PinningServiceClient", "ServicePin", "cluster_token"]

_STATUSES: Final = "queued,pinning,pinned,failed"
_PAGE: Final = 1000


@dataclass(frozen=True, kw_only=True)
class ServicePin:
    """One pin request on the service: its id, what it pins, and its status."""

    request_id: str
    cid: str
    name: str
    status: str
    created: str
    delegates: tuple[str, ...] = ()  # multiaddresses of the service's nodes for this pin

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ServicePin:
        pin = value["pin"]
        return cls(
            request_id=str(value["requestid"]),
            cid=str(pin["cid"]),
            name=str(pin.get("name") or ""),
            status=str(value["status"]),
            created=str(value.get("created") or ""),
            delegates=tuple(str(a) for a in value.get("delegates") or ()),
        )


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    try:
        reason = response.json().get("error", {}).get("reason") or response.text
    except (ValueError, AttributeError):
        reason = response.text
    hint = "check the access token" if response.status_code in (401, 403) else None
    raise ClusterError(
        f"pinning service {what}: {str(reason).strip()} (HTTP {response.status_code})", hint=hint
    )


def cluster_token(url: str, user: str, password: str) -> str:
    """A JWT for IPFS Cluster's APIs, issued for basic-auth credentials (``POST /token``)."""
    try:
        response = httpx.post(f"{url.rstrip('/')}/token", auth=(user, password), timeout=30.0)
    except httpx.HTTPError as exc:
        raise ClusterError(f"IPFS Cluster at {url} did not answer POST /token: {exc}") from exc
    _raise_for(response, "POST /token")
    return str(response.json()["token"])


class PinningServiceClient(HttpApi):
    """The API at ``url`` with ``token``; a context manager."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        super().__init__(url, timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClusterError(
                f"pinning service at {self.url} did not answer {method} {path}: {exc}",
                hint="check the URL of the Pinning Service API (IPFS Cluster: port 9097)",
            ) from exc
        _raise_for(response, f"{method} {path}")
        return response

    def add(self, cid: str, *, name: str) -> ServicePin:
        body = {"cid": cid, "name": name}
        return ServicePin.from_json(self._request("POST", "/pins", json=body).json())

    def remove(self, request_id: str) -> None:
        self._request("DELETE", f"/pins/{request_id}")

    def pins(self, *, name: str | None = None, cids: tuple[str, ...] = ()) -> Iterator[ServicePin]:
        """Every pin request in any status (name: substring match), page by page."""
        params: dict[str, str] = {"status": _STATUSES, "limit": str(_PAGE)}
        if name is not None:
            params.update(name=name, match="partial")
        if cids:
            params["cid"] = ",".join(cids)
        while True:
            results = self._request("GET", "/pins", params=params).json().get("results") or []
            found = [ServicePin.from_json(r) for r in results]
            yield from found
            if len(found) < _PAGE:
                return
            params["before"] = min(p.created for p in found)
