"""Bounds on every network read: a deadline per request, one per operation, a minimum rate.

A per-read timeout alone does not bound anything: a peer that sends one byte
a second never trips it, and holds a sync for hours (a 2 MiB block for
weeks). So every HTTP request made through :func:`limited_transport` is
bounded three ways, checked at the socket, for headers and body alike:

- ``TransferLimits.deadline``: seconds from sending the request to the last
  byte of the answer;
- ``TransferLimits.min_rate``: bytes per second, averaged from the first
  byte of the answer, enforced once ``grace`` seconds have passed since that
  byte (time to the first byte is bounded by the read timeout and the deadlines);
- :func:`operation_deadline`: a deadline for a whole operation (one sync),
  shared by every request made inside it, on any client, in this context.

A read that would pass a bound is cut short with ``httpcore.ReadTimeout``,
which httpx raises as ``httpx.ReadTimeout``; callers map it in their one place
(``KuboUnavailableError`` / ``KuboStreamError`` for Kubo, ``SubscriptionError``
for a gateway).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpcore
import httpx

__all__ = [
    "GATEWAY_LIMITS",
    "NO_LIMITS",
    "TransferLimits",
    "limited_transport",
    "operation_deadline",
    "operation_remaining",
    "within_operation",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class TransferLimits:
    """Bounds for each request; ``None`` switches a bound off."""

    deadline: float | None
    min_rate: int | None
    grace: float = 5.0

    def __post_init__(self) -> None:
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")
        if self.min_rate is not None and self.min_rate <= 0:
            raise ValueError(f"min_rate must be positive, got {self.min_rate}")
        if self.grace < 0:
            raise ValueError(f"grace must not be negative, got {self.grace}")


NO_LIMITS: Final = TransferLimits(deadline=None, min_rate=None)
GATEWAY_LIMITS: Final = TransferLimits(deadline=120.0, min_rate=32 * 1024, grace=5.0)
"""A 2 MiB block (the largest peers exchange) at the minimum rate takes 64 s after the grace."""

_operation_end: ContextVar[float | None] = ContextVar("ipfsbin_operation_end", default=None)
_transfer: ContextVar[_Transfer | None] = ContextVar("ipfsbin_transfer", default=None)


@contextmanager
def operation_deadline(seconds: float) -> Iterator[None]:
    """Every request in this context ends within ``seconds`` from now (nested: the earlier wins)."""
    if seconds <= 0:
        raise ValueError(f"an operation deadline must be positive, got {seconds}")
    end = time.monotonic() + seconds
    outer = _operation_end.get()
    token = _operation_end.set(end if outer is None else min(outer, end))
    try:
        yield
    finally:
        _operation_end.reset(token)


def operation_remaining() -> float | None:
    """Seconds left before the operation deadline in force here (None: no deadline); for
    connections made outside ``httpx`` (at least a millisecond, so a timeout stays a timeout)."""
    end = _operation_end.get()
    return None if end is None else max(end - time.monotonic(), 0.001)


_A = TypeVar("_A")
_R = TypeVar("_R")


def within_operation(function: Callable[[_A], _R]) -> Callable[[_A], _R]:
    """``function`` bound by the caller's operation deadline in any thread (pool workers).

    Context variables do not follow work into a thread pool, so the deadline
    in force here is captured now and set around each call.
    """
    end = _operation_end.get()

    def bounded(argument: _A) -> _R:
        token = _operation_end.set(end)
        try:
            return function(argument)
        finally:
            _operation_end.reset(token)

    return bounded


class _Transfer:
    """The bounds of one request, and what it received so far."""

    def __init__(self, limits: TransferLimits) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.first_byte: float | None = None
        self.received = 0
        ends = [_operation_end.get()]
        if limits.deadline is not None:
            ends.append(self.started + limits.deadline)
        self.end = min((e for e in ends if e is not None), default=None)

    def _rate_end(self) -> float | None:
        """When the average rate falls below the minimum if nothing more arrives."""
        if self.limits.min_rate is None or self.first_byte is None:
            return None
        return self.first_byte + max(self.limits.grace, self.received / self.limits.min_rate)

    def _nearest_end(self) -> float | None:
        return min((e for e in (self.end, self._rate_end()) if e is not None), default=None)

    def wait(self, timeout: float | None, now: float) -> float | None:
        """``timeout`` cut to the nearest bound; ReadTimeout if a bound has passed."""
        end = self._nearest_end()
        if end is None:
            return timeout
        left = end - now
        if left <= 0:
            raise httpcore.ReadTimeout(self.describe(now))
        return left if timeout is None else min(timeout, left)

    @contextmanager
    def explained(self) -> Iterator[None]:
        """A socket timeout that is one of our bounds says which one."""
        try:
            yield
        except httpcore.TimeoutException as exc:
            now = time.monotonic()
            end = self._nearest_end()
            if end is not None and now >= end - 0.01:
                raise httpcore.ReadTimeout(self.describe(now)) from exc
            raise

    def got(self, size: int, now: float) -> None:
        if size and self.first_byte is None:
            self.first_byte = now
        self.received += size
        if self.end is not None and now > self.end:
            raise httpcore.ReadTimeout(self.describe(now))
        rate_end = self._rate_end()
        if size and rate_end is not None and now > rate_end:
            raise httpcore.ReadTimeout(self.describe(now))

    def describe(self, now: float) -> str:
        elapsed = now - self.started
        if self.end is not None and now >= self.end:
            return f"deadline passed after {elapsed:.1f}s ({self.received} bytes received)"
        since = now - (self.first_byte or now)
        return (
            f"{self.received} bytes in {since:.1f}s, below the minimum rate of "
            f"{self.limits.min_rate} bytes/s"
        )


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        transfer = _transfer.get()
        if transfer is None:
            return self._inner.read(max_bytes, timeout)
        with transfer.explained():
            data = self._inner.read(max_bytes, transfer.wait(timeout, time.monotonic()))
        transfer.got(len(data), time.monotonic())
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        transfer = _transfer.get()
        if transfer is None:
            self._inner.write(buffer, timeout)
            return
        with transfer.explained():
            self._inner.write(buffer, transfer.wait(timeout, time.monotonic()))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        transfer = _transfer.get()
        if transfer is None:
            return _Stream(
                self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
            )
        with transfer.explained():
            wait = transfer.wait(timeout, time.monotonic())
            stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Body(httpx.SyncByteStream):
    """The answer's body, read with its request's bounds in force."""

    def __init__(self, inner: httpx.SyncByteStream, transfer: _Transfer) -> None:
        self._inner = inner
        self._transfer = transfer

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            token = _transfer.set(self._transfer)
            try:
                chunk = next(chunks, None)
            finally:
                _transfer.reset(token)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _LimitedTransport(httpx.HTTPTransport):
    def __init__(self, limits: TransferLimits, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limits = limits
        pool = self._pool
        if not isinstance(pool, httpcore.ConnectionPool):  # pragma: no cover - httpx changed
            raise RuntimeError("httpx.HTTPTransport no longer keeps an httpcore.ConnectionPool")
        # every connection the pool opens from now on reads through the bounded stream
        pool._network_backend = _Backend(pool._network_backend)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transfer = _Transfer(self._limits)
        token = _transfer.set(transfer)
        try:
            response = super().handle_request(request)
        finally:
            _transfer.reset(token)
        stream = response.stream
        if not isinstance(stream, httpx.SyncByteStream):  # pragma: no cover - httpx changed
            raise RuntimeError("httpx.HTTPTransport answered with an async stream")
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Body(stream, transfer),
            extensions=response.extensions,
        )


def limited_transport(limits: TransferLimits, *, uds: str | None = None) -> httpx.HTTPTransport:
    """An httpx transport whose every request obeys ``limits`` and the operation deadline."""
    return _LimitedTransport(limits, uds=uds)
