"""The HTTP side of the local binhost (Starlette): Packages, binpkgs, status.

Routes (``schema/binhost.md``):

* ``GET /<subscription>/Packages`` and ``Packages.gz``: the snapshot's file;
  ``Last-Modified`` equals its TIMESTAMP and ``If-Modified-Since`` at or past
  it gives 304;
* ``GET|HEAD /<subscription>/<PATH>``: the binpkg, streamed from the byte
  source and checked against the signed manifest as it goes: block by
  block from the repo's block files (:mod:`ipfsbin.serve.blockcheck`), by
  the whole file's sha256 otherwise (:mod:`ipfsbin.serve.stream`);
  ``Range`` gives 206;
* ``GET /status`` (JSON): heads, their age and state, the catalog's size,
  recent downloads and failures; ``GET /`` (HTML, :mod:`ipfsbin.serve.page`):
  the same with the weather of this host, its charts, and doctor's findings.

The app makes no trust decision: it renders what the catalog offers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Protocol, TypeAlias

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ipfsbin.catalog.build import Offer
from ipfsbin.catalog.cache import build_time_of
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IpfsbinError, TrustError
from ipfsbin.manifest import BinpkgVerifier, Manifest
from ipfsbin.prefetch.worker import read_prefetched
from ipfsbin.serve.blockcheck import Missing
from ipfsbin.serve.packages import PackagesFile
from ipfsbin.serve.page import HealthView, render_page
from ipfsbin.serve.publisher import Publisher
from ipfsbin.serve.requests import RequestLog
from ipfsbin.serve.sources import LARGEST_READ, RepoSource
from ipfsbin.serve.stream import ByteRange, parse_range, read_ahead, verified_range

__all__ = ["ByteSource", "Downloads", "StreamSource", "create_app"]

_log = logging.getLogger("ipfsbin.serve")
SMALL_FILE = LARGEST_READ
"""Files up to this size the repo holds are read and checked in the event loop's thread when
no other download is under way: at most one block, 0.7 ms of sha256."""


class StreamSource(Protocol):
    """A binpkg's bytes as a plain stream (Kubo's gateway or RPC, a trustless gateway's CAR);
    not trusted, checked against the whole file's sha256 as they stream."""

    def chunks(self, cid: CID, size: int) -> Iterator[bytes]: ...


ByteSource: TypeAlias = StreamSource | RepoSource
"""Where a binpkg's bytes come from; the repo's block files are checked block by block."""


class Downloads:
    """Recent downloads and failures for ``/status`` (bounded), and running counts."""

    def __init__(self, keep: int = 50) -> None:
        self._recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._failures: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.active = 0
        self.served = 0
        self.failed = 0

    def start(self) -> None:
        with self._lock:
            self.active += 1

    def finish(self, record: dict[str, Any], *, ok: bool) -> None:
        with self._lock:
            self.active -= 1
            if ok:
                self.served += 1
                self._recent.append(record)
            else:
                self.failed += 1
                self._failures.append(record)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "active": self.active,
                "served": self.served,
                "failed": self.failed,
                "recent": list(self._recent),
                "failures": list(self._failures),
            }


def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def _not_modified(request: Request, file: PackagesFile) -> bool:
    since = request.headers.get("if-modified-since")
    if not since:
        return False
    try:
        moment = parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError, IndexError):
        return False
    return moment >= file.timestamp


@dataclass(frozen=True, kw_only=True)
class Listed:
    """One listed PATH as a download needs it: the signed manifest its bytes are checked by."""

    subscription: str
    path: str
    manifest_cid: CID
    manifest: Manifest

    @classmethod
    def of(cls, offer: Offer) -> Listed:
        build = offer.build
        return cls(
            subscription=offer.subscription,
            path=offer.path,
            manifest_cid=build.manifest_cid,
            manifest=build.manifest,
        )


def _record(listed: Listed, want: ByteRange | None) -> dict[str, Any]:
    return {
        "subscription": listed.subscription,
        "path": listed.path,
        "cpv": listed.manifest.cpv,
        "cid": str(listed.manifest.binpkg),
        "range": None if want is None else f"{want.start}-{want.end}",
    }


def _failed(record: dict[str, Any], exc: IpfsbinError, sent: int) -> None:
    record["error"] = f"{type(exc).__name__}: {exc.message}"
    if exc.hint:
        record["hint"] = exc.hint
    _log.error("download aborted", extra={"fields": {**record, "bytes": sent}})


def _pieces(source: ByteSource, listed: Listed, want: ByteRange | None) -> Iterator[bytes]:
    """The checked bytes of ``want``: block by block from the repo, else by the whole file's
    sha256 (``schema/binhost.md``, "Binpkg bytes").

    Runs in the read-ahead thread: opening the source, reading and hashing
    never wait on the event loop, nor it on them.
    """
    manifest = listed.manifest
    if isinstance(source, RepoSource):
        yield from source.checked(manifest, listed.manifest_cid, want)
        return
    # sha256 only: Portage checks the Packages file's SIZE/MD5/SHA1 itself
    verifier = BinpkgVerifier(manifest, listed.manifest_cid, portage_digests=False)
    yield from verified_range(source.chunks(manifest.binpkg, manifest.size), verifier, want)


async def _after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncGenerator[bytes]:
    yield first
    async for piece in rest:
        yield piece


async def stream_counted(
    pieces: AsyncIterator[bytes],
    expected: int,
    downloads: Downloads,
    record: dict[str, Any],
    on_mismatch: Callable[[str], None],
) -> AsyncGenerator[bytes]:
    """The checked bytes of one download; the caller counted it as started.

    The download counts as served once all ``expected`` bytes went to the
    server: a client holding its Content-Length may close the connection
    before the pieces' end is seen, and the last piece only leaves after the
    whole file was checked.
    """
    started = time.monotonic()
    sent = 0
    ok = False
    try:
        async for piece in pieces:
            yield piece
            # asked for the next piece: the server has sent this one
            sent += len(piece)
            ok = sent == expected
        ok = True
    except TrustError as exc:
        _failed(record, exc, sent)
        on_mismatch(exc.message)
        raise
    except IpfsbinError as exc:
        _failed(record, exc, sent)
        raise
    finally:
        _finish(downloads, record, sent, started, ok=ok)


def _finish(
    downloads: Downloads, record: dict[str, Any], sent: int, started: float, *, ok: bool
) -> None:
    record.update(bytes=sent, seconds=round(time.monotonic() - started, 3), at=time.time())
    if ok:
        _log.info("download", extra={"fields": record})
    elif "error" not in record:
        record["error"] = "the client went away"
    downloads.finish(record, ok=ok)


async def _served(downloads: Downloads, record: dict[str, Any], sent: int, started: float) -> None:
    # async: Starlette runs a plain function's background task in a worker thread
    _finish(downloads, record, sent, started, ok=True)


def _small(source: ByteSource, listed: Listed, want: ByteRange | None) -> bytes | None:
    """The checked bytes of a file of at most :data:`SMALL_FILE` whose blocks the repo holds
    (read here, in the caller's thread), or None to read it the usual way."""
    manifest = listed.manifest
    if not isinstance(source, RepoSource) or manifest.size > SMALL_FILE:
        return None
    try:
        return b"".join(source.checked(manifest, listed.manifest_cid, want, fallback=False))
    except Missing:
        return None


def create_app(
    publisher: Publisher,
    source: ByteSource,
    downloads: Downloads,
    health: HealthView | None = None,
    requests: RequestLog | None = None,
) -> Starlette:
    """The Starlette application over ``publisher``'s snapshots.

    ``health`` feeds the page; binpkg GETs are counted in ``requests``.
    """

    def packages(request: Request) -> Response:
        name = request.path_params["subscription"]
        file = publisher.snapshot.files.get(name)
        if file is None:
            return Response(f"no subscription {name} is served here\n", status_code=404)
        headers = {"Last-Modified": _http_date(file.timestamp), "Cache-Control": "no-cache"}
        if _not_modified(request, file):
            return Response(status_code=304, headers=headers)
        gz = request.url.path.endswith(".gz")
        body = file.gz if gz else file.text
        kind = "application/gzip" if gz else "text/plain; charset=utf-8"
        return Response(body, media_type=kind, headers=headers)

    async def binpkg(request: Request) -> Response:
        name = request.path_params["subscription"]
        path = request.path_params["path"]
        file = publisher.snapshot.files.get(name)
        offer = None if file is None else file.offers.get(path)
        listed = None if offer is None else Listed.of(offer)
        if listed is None and file is not None and file.listed is not None:
            # served from the kept listing: the manifest is read by its CID
            try:
                found = await run_in_threadpool(publisher.kept_manifest, file, path)
            except IpfsbinError as exc:
                hint = f" ({exc.hint})" if exc.hint else ""
                return Response(f"{path}: {exc.message}{hint}\n", status_code=503)
            if found is not None:
                listed = Listed(
                    subscription=name, path=path, manifest_cid=found[0], manifest=found[1]
                )
        if listed is None:
            return Response(f"{path} is not offered by {name}\n", status_code=404)
        manifest = listed.manifest
        size = manifest.size
        try:
            want = parse_range(request.headers.get("range"), size)
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        headers = {
            "Accept-Ranges": "bytes",
            "Last-Modified": _http_date(build_time_of(manifest)),
            "ETag": f'"{manifest.sha256.hex()}"',
            "Content-Length": str(size if want is None else want.length),
        }
        status = 200
        if want is not None:
            status = 206
            headers["Content-Range"] = f"bytes {want.start}-{want.end}/{size}"
        kind = "application/x-tar" if manifest.format == "gpkg" else "application/octet-stream"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=kind)
        if requests is not None:
            requests.note(manifest.binpkg, manifest.cpv)
        record = _record(listed, want)
        expected = size if want is None else want.length
        started = time.monotonic()

        def withdraw(reason: str) -> None:
            publisher.mark_undeliverable(listed.manifest_cid, reason)

        # with no other download under way, a small file the repo holds is checked here:
        # handing it to a thread and back would only add to its latency
        idle = downloads.active == 0
        downloads.start()
        pieces: AsyncGenerator[bytes] | None = None
        try:
            first = _small(source, listed, want) if idle else None
            if first is None:
                pieces = read_ahead(_pieces(source, listed, want))
                # the first checked piece is there before the status line goes out: a daemon
                # that is down, or bytes that fail before any is sent, give a clear 503
                first = await anext(pieces)
        except IpfsbinError as exc:
            if pieces is not None:
                await pieces.aclose()
            _failed(record, exc, 0)
            if isinstance(exc, TrustError):
                withdraw(exc.message)
            record["at"] = time.time()
            downloads.finish(record, ok=False)
            hint = f" ({exc.hint})" if exc.hint else ""
            return Response(f"{manifest.cpv}: {exc.message}{hint}\n", status_code=503)
        if pieces is None or len(first) == expected:  # checked whole: sent as one answer
            if pieces is not None:
                await pieces.aclose()
            done = BackgroundTask(_served, downloads, record, expected, started)
            return Response(first, status, headers, kind, background=done)
        return StreamingResponse(
            stream_counted(_after(first, pieces), expected, downloads, record, withdraw),
            status_code=status,
            headers=headers,
            media_type=kind,
        )

    def status(request: Request) -> Response:
        return JSONResponse(status_json(publisher, downloads))

    def index(request: Request) -> Response:
        figures = None if health is None else health.current()
        return HTMLResponse(render_page(status_json(publisher, downloads), figures))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/status", status),
            Route("/{subscription}/Packages", packages, methods=["GET", "HEAD"]),
            Route("/{subscription}/Packages.gz", packages, methods=["GET", "HEAD"]),
            Route("/{subscription}/{path:path}", binpkg, methods=["GET", "HEAD"]),
        ]
    )


def status_json(publisher: Publisher, downloads: Downloads) -> dict[str, Any]:
    snap = publisher.snapshot
    now = time.time()
    states = {s.head.name: s for s in snap.catalog.heads}
    heads = []
    for sub in snap.subscriptions:
        state = states.get(sub.name)
        file = snap.files.get(sub.name)
        heads.append(
            {
                "name": sub.name,
                "url_path": f"/{sub.name}/",
                "height": sub.height,
                "head": None if sub.head is None else str(sub.head),
                "accepted_age_seconds": None
                if sub.accepted_at is None
                else round(now - sub.accepted_at, 1),
                "verified": sub.head is not None,
                "last_error": sub.error,
                "stale": None if state is None else state.stale,
                "entries": 0 if state is None else state.entries,
                "offered": 0 if file is None else file.size,
                "timestamp": None if file is None else file.timestamp,
            }
        )
    return {
        "heads": heads,
        "catalog": {
            "offers": snap.catalog.size,
            "built_at": snap.built_at,
            "build_seconds": round(snap.build_seconds, 3),
            "listing": "kept" if snap.kept else "built",
            "errors": list(snap.errors),
            "missed_blocks": publisher.missed_blocks(),
        },
        "host": None
        if snap.host is None
        else {"chost": snap.host.chost, "target": snap.host.target, "profile": snap.host.profile},
        "downloads": downloads.to_json(),
        "prefetched": _prefetched(),
    }


def _prefetched() -> list[dict[str, object]]:
    """The builds prefetched, verified and pinned ahead of emerge (``sync --follow``)."""
    return [b.to_json() for b in read_prefetched()]
