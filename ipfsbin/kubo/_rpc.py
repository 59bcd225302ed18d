"""The HTTP side of Kubo's RPC: requests, answers, and the one place httpx errors are mapped.

Kubo answers ``POST /api/v0/<command>`` with 200 and a body (one JSON value,
newline-separated JSON values, or raw bytes), or with 400/500 and
``{"Message", "Code", "Type"}``. An error after the body began goes into an
HTTP trailer that httpx drops, so callers check that streams are complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any, Protocol

import httpx

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboCommandError, KuboError, KuboStreamError, KuboUnavailableError

__all__ = [
    "UNAVAILABLE_HINT",
    "CountingReader",
    "IterReader",
    "Param",
    "Params",
    "Readable",
    "Rpc",
    "Stream",
    "args",
    "base_url_from_multiaddr",
    "cid_field",
    "file_part",
    "go_duration",
    "int_field",
    "string_field",
    "translate_errors",
]

UNAVAILABLE_HINT = "is the daemon running? try `ipfsbin node start`"

# Query parameters as (name, value) pairs: positional arguments repeat `arg`.
Param = tuple[str, str | int | bool]
Params = Sequence[Param]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Body = bytes | IO[bytes] | Readable
Upload = Sequence[tuple[str, tuple[str, Body, str]]]

_OCTETS = "application/octet-stream"


def base_url_from_multiaddr(addr: str) -> tuple[str, str | None]:
    """``(base_url, unix_socket_path)`` for an API multiaddr or an ``http://`` URL."""
    addr = addr.strip()
    if addr.startswith(("http://", "https://")):
        return addr.rstrip("/"), None
    parts = addr.split("/")
    if len(parts) < 3 or parts[0] != "":
        raise ValueError(f"not an API multiaddr: {addr!r} (expected e.g. /ip4/127.0.0.1/tcp/5001)")
    proto, host = parts[1], parts[2]
    if proto == "unix":
        return "http://kubo", "/" + "/".join(parts[2:])
    if proto not in ("ip4", "ip6", "dns", "dns4", "dns6") or len(parts) < 5 or parts[3] != "tcp":
        raise ValueError(f"not an API multiaddr: {addr!r} (expected e.g. /ip4/127.0.0.1/tcp/5001)")
    port = parts[4]
    if not port.isdigit():
        raise ValueError(f"bad TCP port {port!r} in API multiaddr {addr!r}")
    rest = parts[5:]
    scheme = "https" if rest[:1] == ["https"] or rest[:2] == ["tls", "http"] else "http"
    if proto == "ip6":
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}", None


@contextmanager
def translate_errors(command: str, *, streaming: bool = False) -> Iterator[None]:
    """Turn every httpx exception into the ``KuboError`` family; the only place that does."""
    try:
        yield
    except KuboError:
        raise
    except httpx.TransportError as exc:
        if streaming:
            raise KuboStreamError(
                f"kubo {command}: the answer broke off before it was complete ({_describe(exc)})",
                hint=UNAVAILABLE_HINT,
            ) from exc
        if isinstance(exc, httpx.TimeoutException):
            raise KuboUnavailableError(
                f"kubo {command}: no answer in time ({_describe(exc)})", hint=UNAVAILABLE_HINT
            ) from exc
        raise KuboUnavailableError(
            f"kubo {command}: cannot reach the Kubo API at {_where(exc)} ({_describe(exc)})",
            hint=UNAVAILABLE_HINT,
        ) from exc
    except httpx.HTTPError as exc:
        raise KuboError(f"kubo {command}: HTTP failure ({_describe(exc)})") from exc


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _where(exc: httpx.TransportError) -> str:
    try:
        return str(exc.request.url.copy_with(path="/", query=None))
    except RuntimeError:  # no request attached
        return "the configured address"


def _encode_params(params: Params) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in params:
        if isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        else:
            out.append((name, str(value)))
    return out


def _command_error(command: str, response: httpx.Response) -> KuboCommandError:
    body = response.read()
    message: str | None = None
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("Message"), str):
        message = decoded["Message"]
    if message is None:
        text = body.decode("utf-8", "replace").strip()
        message = text[:500] or f"HTTP {response.status_code} with an empty body"
    return KuboCommandError(command, message, status=response.status_code)


@dataclass(frozen=True, slots=True)
class Stream:
    """An answer whose body is still arriving; iterate it inside ``Rpc.stream``."""

    command: str
    response: httpx.Response

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        with translate_errors(self.command, streaming=True):
            yield from self.response.iter_bytes(chunk_size)

    def iter_json(self) -> Iterator[dict[str, Any]]:
        """Each JSON object of a newline-separated answer, in order."""
        with translate_errors(self.command, streaming=True):
            lines = self.response.iter_lines()
            for line in lines:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    raise KuboStreamError(
                        f"kubo {self.command}: expected a JSON object per line, got {line[:200]!r}"
                    ) from exc
                if not isinstance(value, dict):
                    raise KuboStreamError(
                        f"kubo {self.command}: expected a JSON object, got {type(value).__name__}"
                    )
                if value.get("Type") == "error" and isinstance(value.get("Message"), str):
                    raise KuboCommandError(self.command, value["Message"])
                yield value


class Rpc:
    """Sends commands to one Kubo API over the ``httpx.Client`` it is given."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @contextmanager
    def stream(
        self,
        command: str,
        params: Params = (),
        *,
        files: Upload | None = None,
        timeout: float | None | httpx.Timeout = None,
    ) -> Iterator[Stream]:
        """Send ``command``; yields the answer once a 200 status arrived."""
        kwargs: dict[str, Any] = {"params": _encode_params(params)}
        if files is not None:
            kwargs["files"] = list(files)
        if timeout is not None:
            kwargs["timeout"] = timeout
        with translate_errors(command):
            request = self.http.build_request("POST", f"/api/v0/{command}", **kwargs)
            response = self.http.send(request, stream=True)
        try:
            if response.status_code != 200:
                with translate_errors(command, streaming=True):
                    raise _command_error(command, response)
            yield Stream(command, response)
        finally:
            response.close()

    def call(
        self,
        command: str,
        params: Params = (),
        *,
        files: Upload | None = None,
        timeout: float | None | httpx.Timeout = None,
    ) -> bytes:
        """The whole body of a successful answer."""
        with self.stream(command, params, files=files, timeout=timeout) as answer:
            return b"".join(answer.iter_bytes())

    def call_json(
        self,
        command: str,
        params: Params = (),
        *,
        files: Upload | None = None,
        timeout: float | None | httpx.Timeout = None,
    ) -> dict[str, Any]:
        """An answer that is exactly one JSON object."""
        body = self.call(command, params, files=files, timeout=timeout)
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise KuboStreamError(
                f"kubo {command}: expected one JSON object, got {body[:200]!r}"
            ) from exc
        if not isinstance(value, dict):
            raise KuboStreamError(
                f"kubo {command}: expected a JSON object, got {type(value).__name__}"
            )
        return value


def file_part(data: Body, name: str = "file") -> tuple[str, tuple[str, Body, str]]:
    """One multipart part named ``file`` as Kubo expects for file arguments."""
    return ("file", (name, data, _OCTETS))


class IterReader:
    """A read-only binary stream over an iterable of chunks, so uploads need not fit in memory."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.consumed += len(out)
        return out


class CountingReader:
    """Wraps a binary stream and counts the bytes handed out (to compare with Kubo's count)."""

    def __init__(self, inner: IO[bytes] | Readable) -> None:
        self._inner = inner
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.consumed += len(data)
        return data


def string_field(command: str, obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        message = f"kubo {command}: answer lacks the string field {key!r}: {obj!r}"
        raise KuboStreamError(message[:300])
    return value


def int_field(command: str, obj: Mapping[str, Any], key: str, *, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        message = f"kubo {command}: answer lacks the number field {key!r}: {obj!r}"
        raise KuboStreamError(message[:300])
    return value


def go_duration(value: timedelta | float) -> str:
    """A Go duration string with units (``"300s"``, ``"1500ms"``); seconds for plain numbers."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"a duration must not be negative, got {seconds}s")
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def cid_field(command: str, obj: dict[str, Any], key: str) -> CID:
    raw = obj.get(key)
    if isinstance(raw, dict):  # Kubo's JSON form of a CID is {"/": "<cid>"}
        raw = raw.get("/")
    if not isinstance(raw, str):
        message = f"kubo {command}: answer lacks the CID field {key!r}: {obj!r}"
        raise KuboStreamError(message[:300])
    return CID.from_text(raw)


def args(values: Iterable[CID | str]) -> list[Param]:
    return [("arg", str(v)) for v in values]
