"""``ipfsbin serve``: wire the catalog, the publisher and the HTTP app to Kubo, and listen."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta

from ipfsbin import paths
from ipfsbin.catalog.cache import BuildCache
from ipfsbin.config import ClientConfig
from ipfsbin.errors import ServeError
from ipfsbin.host.profile import HostInfo, read_host
from ipfsbin.kubo.client import KuboClient
from ipfsbin.serve.app import ByteSource, Downloads, create_app
from ipfsbin.serve.logs import setup_logging
from ipfsbin.serve.packages import TimestampBook
from ipfsbin.serve.publisher import Publisher
from ipfsbin.serve.requests import RequestLog
from ipfsbin.serve.sources import GatewaySource, KuboSource, find_gateway
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import FollowConfig, Follower

__all__ = ["ServeOptions", "byte_source", "make_publisher", "serve_forever"]

_log = logging.getLogger("ipfsbin.serve")


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    interval: float = 2.0
    """Seconds between checks for a moved head or a changed host."""
    allow_stale: bool = False
    fetch_timeout: float = 30.0


def make_publisher(config: ClientConfig, client: KuboClient, options: ServeOptions) -> Publisher:
    """A publisher over the subscription state and ``client``'s blocks."""

    def host() -> HostInfo:
        return read_host(target=config.target)

    def follower() -> Follower:
        return Follower(FollowConfig(allow_stale=options.allow_stale), connect=lambda: client)

    return Publisher(
        config=config,
        open_follower=follower,
        cache=BuildCache(
            KuboBlockStore(
                client, offline=False, fetch_timeout=timedelta(seconds=options.fetch_timeout)
            )
        ),
        book=TimestampBook(paths.data_dir() / "serve-timestamps.json"),
        read_host=host,
    )


def byte_source(client: KuboClient, options: ServeOptions) -> tuple[ByteSource, str]:
    """The local node's gateway (RPC ``cat`` as the fallback), and words saying which."""
    rpc = KuboSource(client)
    gateway = find_gateway(client)
    if gateway is None:
        return rpc, "Kubo's RPC cat (no gateway address found; set IPFSBIN_GATEWAY)"
    return GatewaySource(gateway, rpc, timeout=max(options.fetch_timeout, 120.0)), gateway


def serve_forever(config: ClientConfig, client: KuboClient, options: ServeOptions) -> None:
    """Build the first snapshot, then listen until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    setup_logging()
    publisher = make_publisher(config, client, options)
    publisher.refresh(force=True)
    snapshot = publisher.snapshot
    if not snapshot.files:
        raise ServeError(
            "no subscription to serve",
            hint="subscribe first (`ipfsbin subscribe NAME --root CID`), or check "
            "serve.subscriptions in the configuration",
        )
    downloads = Downloads()
    requests = RequestLog()
    source, reads_from = byte_source(client, options)
    app = create_app(publisher, source, downloads, requests)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.serve.host,
            port=config.serve.port,
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
        f"ipfsbin:   binpkg bytes from {reads_from}",
    ]
    for name, file in sorted(snapshot.files.items()):
        lines.append(f"ipfsbin:   {base}/{name}/  ({len(file.offers)} packages)")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    _log.info(
        "listening",
        extra={
            "fields": {"url": base, "subscriptions": sorted(snapshot.files), "bytes": reads_from}
        },
    )
    writer = threading.Thread(target=requests.run, args=(stop,), daemon=True)
    worker.start()
    writer.start()
    try:
        server.run()
    finally:
        stop.set()
        worker.join(timeout=10)
        writer.join(timeout=10)
        requests.close()
