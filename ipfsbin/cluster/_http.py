"""What the REST and Pinning Service API clients share: one httpx client, closed once."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx

__all__ = ["HttpApi"]


class HttpApi:
    """An HTTP API at ``url``; a context manager."""

    def __init__(self, url: str, **http: Any) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, **http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
