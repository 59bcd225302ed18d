"""An IPFS Cluster peer ipfsbin runs itself, beside one Kubo daemon (tests, small mirrors).

:class:`ClusterPeer` initializes a peer's config directory (CRDT consensus,
every peer trusted, a shared secret), binds its cluster, REST, proxy and
Pinning Service API listeners to loopback ports, points it at its Kubo's
RPC API, starts ``ipfs-cluster-service daemon`` (bootstrapping to other
peers) and waits for its REST API.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

from ipfsbin.cluster.install import ClusterBinaries, ensure_cluster
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.errors import ClusterError, NodeError
from ipfsbin.kubo._process import stop_child

__all__ = ["CRDT_BATCHING", "ClusterPeer", "new_cluster_secret"]

_LOG: Final = "cluster.log"


def new_cluster_secret() -> str:
    """A cluster secret: 32 random bytes in hex, shared by every peer of one cluster."""
    return secrets.token_hex(32)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


CRDT_BATCHING: Final = {"max_batch_size": 500, "max_batch_age": "1s", "max_queue_size": 50000}
"""Cluster's CRDT batching: a batch is committed at 500 pin/unpin operations or after 1 s."""


class ClusterPeer:
    """One ``ipfs-cluster-service`` over the config in ``path``, pinning through ``kubo_api``.

    ``pinsvc_credentials`` (user, password) protect the Pinning Service API;
    ``replication`` is the cluster's default factor (-1: every peer), the one
    pins made through that API get. ``batching`` is the CRDT batching
    section of ``service.json`` (``{"max_batch_size": 0, "max_batch_age":
    "0s"}`` switches it off).
    """

    def __init__(
        self,
        path: Path,
        *,
        kubo_api: str,
        secret: str,
        binaries: ClusterBinaries | None = None,
        pinsvc_credentials: tuple[str, str] = ("ipfsbin", "ipfsbin"),
        replication: int = -1,
        batching: Mapping[str, Any] = CRDT_BATCHING,
    ) -> None:
        self.path = Path(path)
        self.batching = dict(batching)
        self.kubo_api = kubo_api
        self.secret = secret
        self.pinsvc_credentials = pinsvc_credentials
        self.replication = replication
        self._binaries = binaries
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def binaries(self) -> ClusterBinaries:
        if self._binaries is None:
            self._binaries = ensure_cluster()
        return self._binaries

    @property
    def log_path(self) -> Path:
        return self.path / _LOG

    def _config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.path / "service.json").read_text())
        return loaded

    def init(self) -> None:
        """Create the config (once) and bind every listener to a free loopback port."""
        if (self.path / "service.json").is_file():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(  # noqa: S603 - our binary, no shell
            [str(self.binaries.service), "-c", str(self.path), "init", "--consensus", "crdt"],
            capture_output=True,
            env={**os.environ, "CLUSTER_SECRET": self.secret},
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise NodeError(
                f"ipfs-cluster-service init failed: {done.stderr.decode(errors='replace')[-2000:]}"
            )
        config = self._config()
        loopback = "/ip4/127.0.0.1/tcp/{}"
        cluster = config["cluster"]
        cluster["secret"] = self.secret
        cluster["peername"] = self.path.name
        cluster["replication_factor_min"] = self.replication
        cluster["replication_factor_max"] = self.replication
        cluster["listen_multiaddress"] = [loopback.format(_free_port())]
        # no mDNS: a test cluster must not find other clusters on the machine
        cluster["mdns_interval"] = "0s"
        cluster["monitor_ping_interval"] = "2s"
        cluster["peer_watch_interval"] = "2s"
        # a mirror pins thousands of CIDs at once: one CRDT delta per batch, not per pin
        config["consensus"]["crdt"]["batching"] = self.batching
        api = config["api"]
        api["restapi"]["http_listen_multiaddress"] = loopback.format(_free_port())
        api["ipfsproxy"]["listen_multiaddress"] = loopback.format(_free_port())
        api["ipfsproxy"]["node_multiaddress"] = self.kubo_api
        api["pinsvcapi"]["http_listen_multiaddress"] = loopback.format(_free_port())
        user, password = self.pinsvc_credentials
        api["pinsvcapi"]["basic_auth_credentials"] = {user: password}
        connector = config["ipfs_connector"]["ipfshttp"]
        connector["node_multiaddress"] = self.kubo_api
        connector["connect_swarms_delay"] = "1s"
        (self.path / "service.json").write_text(json.dumps(config, indent=2))

    def _port_of(self, multiaddr: str) -> int:
        return int(multiaddr.rsplit("/", 1)[-1])

    @property
    def rest_url(self) -> str:
        addr = self._config()["api"]["restapi"]["http_listen_multiaddress"]
        return f"http://127.0.0.1:{self._port_of(addr)}"

    @property
    def pinsvc_url(self) -> str:
        addr = self._config()["api"]["pinsvcapi"]["http_listen_multiaddress"]
        return f"http://127.0.0.1:{self._port_of(addr)}"

    @property
    def peer_id(self) -> str:
        return str(json.loads((self.path / "identity.json").read_text())["id"])

    @property
    def multiaddr(self) -> str:
        """The address other peers bootstrap to."""
        return f"{self._config()['cluster']['listen_multiaddress'][0]}/p2p/{self.peer_id}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> ClusterClient:
        return ClusterClient(self.rest_url)

    def start(self, bootstrap: Sequence[str] = (), timeout: float = 60.0) -> None:
        """Start the daemon (joining the peers at ``bootstrap``) and wait for its REST API."""
        if self.running:
            return
        self.init()
        argv = [str(self.binaries.service), "-c", str(self.path), "daemon"]
        if bootstrap:
            argv += ["--bootstrap", ",".join(bootstrap)]
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our binary, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise NodeError(
                    f"ipfs-cluster-service stopped while starting:\n{self.log_tail()}",
                    hint=f"see {self.log_path}",
                )
            try:
                with ClusterClient(self.rest_url, timeout=2.0) as client:
                    client.id()
                return
            except ClusterError as exc:
                last = exc.message
            time.sleep(0.2)
        self.stop()
        raise NodeError(f"ipfs-cluster-service did not answer within {timeout:.0f}s ({last})")

    def stop(self, timeout: float = 20.0) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            stop_child(process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._process = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
