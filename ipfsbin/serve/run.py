"""``ipfsbin serve``: wire the catalog, the publisher and the HTTP app to their blocks, and listen.

Blocks and binpkg bytes come from the local Kubo daemon, or, daemon-less
(``--gateway URL``), from a trustless gateway: index nodes from the block
file ``sync --gateway`` keeps, manifests and the other small objects as
raw blocks, binpkgs as CARs (:mod:`ipfsbin.store.gateway_file`), every
block checked against its CID.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import httpx

from ipfsbin import paths
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.config import ClientConfig
from ipfsbin.errors import ServeError
from ipfsbin.host.profile import HostInfo, read_host
from ipfsbin.kubo.client import KuboClient
from ipfsbin.serve.app import ByteSource, Downloads, StreamSource, create_app
from ipfsbin.serve.logs import setup_logging
from ipfsbin.serve.packages import TimestampBook
from ipfsbin.serve.page import HealthView
from ipfsbin.serve.publisher import Publisher
from ipfsbin.serve.requests import RequestLog
from ipfsbin.serve.sources import (
    GatewaySource,
    KuboSource,
    ReadBudget,
    RepoSource,
    find_gateway,
    find_repo_blocks,
)
from ipfsbin.store.base import BlockStore
from ipfsbin.store.gateway import GatewayBlockStore, gateway_client
from ipfsbin.store.gateway_file import FILE_LIMITS, GatewayFileSource
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.store.local_first import LocalFirstStore
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe.follower import FollowConfig, Follower

__all__ = [
    "LOOP",
    "START_FETCH_TIMEOUT",
    "Backend",
    "ServeOptions",
    "byte_source",
    "make_publisher",
    "open_backend",
    "serve_forever",
]

_log = logging.getLogger("ipfsbin.serve")

LOOP: Final = "asyncio"
"""uvicorn's event loop. Not uvloop: uvloop writes to the socket holding the GIL,
and the read-ahead thread, which hashes between short GIL-free calls, then waits
at each of them for that copy to end (its 500 MB took 0.48-0.54 s of wall time for
0.38 s of CPU); asyncio's ``socket.send`` copies with the GIL released. Two
shims alternated on ``fetch.py``'s files, same CPU per download, 500 MB warm
from the repo: 1.25-1.26 against 1.00-1.01 GB/s; 1 MB is 2-20% slower (per request,
asyncio's loop runs more Python)."""


START_FETCH_TIMEOUT: Final = 3.0
"""Seconds the build at start waits for a block that is not here, once (then it reads only
local blocks and the background thread fetches the rest): a peer holding the block answers
in milliseconds, and without one Kubo would wait the whole ``fetch_timeout``."""


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    interval: float = 2.0
    """Seconds between checks for a moved head or a changed host."""
    allow_stale: bool = False
    fetch_timeout: float = 30.0
    gateway: str | None = None
    """A trustless gateway's URL: serve without Kubo (``sync --gateway`` keeps the heads)."""


@dataclass(frozen=True, kw_only=True)
class Backend:
    """Where the serving side reads: the followed heads, the catalog's blocks, binpkg bytes."""

    follower: Callable[[], Follower]
    blocks: BlockStore
    source: ByteSource
    describe: str
    close: Callable[[], None]
    client: KuboClient | None = None  # None: no daemon, so no DHT to ask for providers


def open_backend(options: ServeOptions, client: KuboClient | None) -> Backend:
    """Kubo's (``client``), or a trustless gateway's when ``options.gateway`` is set."""
    if options.gateway is not None:
        return _gateway_backend(options.gateway, options)
    if client is None:
        raise ValueError("serving through Kubo needs a client")
    kubo = client
    source, reads_from = byte_source(kubo, options)
    return Backend(
        follower=lambda: Follower(
            FollowConfig(allow_stale=options.allow_stale), connect=lambda: kubo
        ),
        # only the publisher's background thread may wait on the network (Publisher.run)
        blocks=LocalFirstStore(
            KuboBlockStore(kubo, offline=True),
            KuboBlockStore(
                kubo, offline=False, fetch_timeout=timedelta(seconds=options.fetch_timeout)
            ),
            KuboBlockStore(
                kubo,
                offline=False,
                fetch_timeout=timedelta(seconds=min(options.fetch_timeout, START_FETCH_TIMEOUT)),
            ),
        ),
        source=source,
        describe=reads_from,
        client=kubo,
        close=lambda: None,
    )


def _gateway_backend(url: str, options: ServeOptions) -> Backend:
    parsed = httpx.URL(url) if "://" in url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ServeError(
            f"--gateway {url!r} is not an http(s) URL",
            hint="give the trustless gateway's base URL, e.g. https://mirror.example/ "
            "(the one `ipfsbin sync --gateway` follows)",
        )
    config = FollowConfig(gateway=url, allow_stale=options.allow_stale)
    blocks_http = gateway_client(options.fetch_timeout)
    files_http = gateway_client(options.fetch_timeout, FILE_LIMITS)
    local = SqliteBlockStore(config.block_path)

    def close() -> None:
        blocks_http.close()
        files_http.close()
        local.close()

    return Backend(
        follower=lambda: Follower(config),
        # a catalog keeps what it decoded, so fetched blocks need not be held as well
        blocks=GatewayBlockStore(blocks_http, url, local, hold=False),
        source=GatewayFileSource(files_http, url),
        describe=f"the trustless gateway {url.rstrip('/')} (no Kubo daemon)",
        close=close,
    )


def make_publisher(config: ClientConfig, backend: Backend, options: ServeOptions) -> Publisher:
    """A publisher over the subscription state and ``backend``'s blocks."""

    def host() -> HostInfo:
        return read_host(target=config.target)

    return Publisher(
        config=config,
        open_follower=backend.follower,
        cache=BuildCache(backend.blocks),
        book=TimestampBook(paths.data_dir() / "serve-timestamps.json"),
        read_host=host,
        kept_path=paths.data_dir() / "catalog-builds",
        listing_path=paths.data_dir() / "serve-listing",
        local_first=backend.blocks if isinstance(backend.blocks, LocalFirstStore) else None,
    )


def byte_source(client: KuboClient, options: ServeOptions) -> tuple[ByteSource, str]:
    """The local repo's block files, the node's gateway, its RPC ``cat``: the first that
    serves, and words saying which (the repo only when this user can read it)."""
    budget = ReadBudget()
    rpc = KuboSource(client)
    gateway = find_gateway(client)
    source: StreamSource
    if gateway is None:
        source, where = rpc, "Kubo's RPC cat (no gateway address found; set IPFSBIN_GATEWAY)"
    else:
        timeout = max(options.fetch_timeout, 120.0)
        source, where = GatewaySource(gateway, rpc, timeout=timeout, budget=budget), gateway
    blocks = find_repo_blocks()
    if blocks is None:
        return source, where
    repo = RepoSource(blocks, source, budget=budget)
    return repo, f"the repo's block files in {blocks.root}, else {where}"


def serve_forever(
    config: ClientConfig, options: ServeOptions, client: KuboClient | None = None
) -> None:
    """Build the first snapshot, then listen until interrupted (SIGINT/SIGTERM)."""
    backend = open_backend(options, client)
    try:
        _serve(config, options, backend)
    finally:
        backend.close()


def _serve(config: ClientConfig, options: ServeOptions, backend: Backend) -> None:
    import uvicorn

    setup_logging()
    publisher = make_publisher(config, backend, options)
    publisher.start()
    snapshot = publisher.snapshot
    if not snapshot.files:
        raise ServeError(
            "no subscription to serve",
            hint="subscribe first (`ipfsbin subscribe NAME --root CID`), or check "
            "serve.subscriptions in the configuration",
        )
    downloads = Downloads()
    health = HealthView(publisher, backend.client, config, allow_stale=options.allow_stale)
    requests = RequestLog()
    app = create_app(publisher, backend.source, downloads, health=health, requests=requests)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.serve.host,
            port=config.serve.port,
            loop=LOOP,
            http="httptools",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
    )
    stop = threading.Event()
    worker = threading.Thread(
        target=publisher.run, args=(stop,), kwargs={"interval": options.interval}, daemon=True
    )
    base = f"http://{config.serve.listen}"
    lines = [
        f"ipfsbin: serving {len(snapshot.files)} subscription(s) on {base}/",
        f"ipfsbin:   binpkg bytes from {backend.describe}",
    ]
    for name, file in sorted(snapshot.files.items()):
        lines.append(f"ipfsbin:   {base}/{name}/  ({file.size} packages)")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    _log.info(
        "listening",
        extra={
            "fields": {
                "url": base,
                "subscriptions": sorted(snapshot.files),
                "bytes": backend.describe,
            }
        },
    )
    writer = threading.Thread(target=requests.run, args=(stop,), daemon=True)
    worker.start()
    writer.start()
    try:
        server.run()
    finally:
        stop.set()
        # a build in memory (perhaps waiting out a fetch) is dropped; a kept file being written
        # is waited for
        worker.join(timeout=0.5 if publisher.building else 10)
        writer.join(timeout=10)
        requests.close()
