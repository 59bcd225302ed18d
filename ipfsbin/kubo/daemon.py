"""The daemon commands talk to: the user's own (``IPFSBIN_API``), or the default node.

The user's default node lives under ``paths.data_dir()/kubo`` and runs
detached, so ``ipfsbin node start`` can return and ``ipfsbin node stop`` can
stop it later; :func:`connect` gives a client for whichever daemon applies.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ipfsbin import paths
from ipfsbin.errors import KuboError, KuboUnavailableError, NodeError
from ipfsbin.kubo._process import alive, terminate
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import LOG_FILE, PID_FILE, START_HINT, ManagedNode

__all__ = [
    "API_ENV",
    "NodeStatus",
    "connect",
    "make_user_node_private",
    "resolve_api",
    "start_user_node",
    "stop_user_node",
    "user_node_status",
    "user_repo_path",
]

API_ENV: Final = "IPFSBIN_API"
# The user node: API and gateway on loopback only, on ports the OS picks (the
# daemon writes them to $IPFS_PATH/api and /gateway), so it never collides
# with a Kubo the user runs on the default ports.
USER_NODE_CONFIG: Final[Mapping[str, Any]] = {
    "Addresses.API": "/ip4/127.0.0.1/tcp/0",
    "Addresses.Gateway": "/ip4/127.0.0.1/tcp/0",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeStatus:
    """What ``ipfsbin node status`` reports."""

    running: bool
    repo_path: Path
    api: str | None = None
    peer_id: str | None = None
    kubo_version: str | None = None
    pid: int | None = None


def user_repo_path() -> Path:
    """The default node's repo: ``<data dir>/kubo``."""
    return paths.data_dir() / "kubo"


def _read_pid(repo: Path) -> int | None:
    try:
        text = (repo / PID_FILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def start_user_node(
    *, binary: Path | None = None, profile: str | None = None, timeout: float = 120.0
) -> NodeStatus:
    """Start the default node detached (initializing its repo the first time).

    Returns the status once the API answers; at once when the node already
    runs. Starts are serialized by a lock file, and a daemon that runs but
    does not answer yet (another start under way) is waited for, not joined
    by a second daemon on the same repo.
    """
    repo = user_repo_path()
    repo.parent.mkdir(parents=True, exist_ok=True)
    with _start_lock(repo):
        status = user_node_status()
        if status.running:
            return status
        if status.pid is not None:
            return _wait_answering(status.pid, timeout)
        _user_node(binary, profile).start(timeout)
        return user_node_status()


def make_user_node_private(
    swarm_key: bytes, bootstrap: Sequence[str] = (), *, binary: Path | None = None
) -> Path:
    """Put the default node into the private swarm of ``swarm_key``; returns its repo.

    Initializes the repo the first time; refuses while the node runs (Kubo
    reads the key only at start).
    """
    repo = user_repo_path()
    repo.parent.mkdir(parents=True, exist_ok=True)
    with _start_lock(repo):
        if user_node_status().pid is not None:
            raise NodeError(
                "the managed node runs; it reads its swarm key only at start",
                hint="stop it with `ipfsbin node stop`, run this again, then `ipfsbin node start`",
            )
        _user_node(binary, None).make_private(swarm_key, bootstrap)
    return repo


def _user_node(binary: Path | None, profile: str | None) -> ManagedNode:
    return ManagedNode(
        user_repo_path(),
        binary=binary,
        profile=profile,
        routing=None,
        extra_config=USER_NODE_CONFIG,
        detached=True,
    )


@contextmanager
def _start_lock(repo: Path) -> Iterator[None]:
    # Beside the repo, not in it: `ipfs init` wants the repo to itself.
    with (repo.parent / f"{repo.name}.start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _wait_answering(pid: int, timeout: float) -> NodeStatus:
    deadline = time.monotonic() + timeout
    status = user_node_status()
    while not status.running and status.pid is not None and time.monotonic() < deadline:
        time.sleep(0.1)
        status = user_node_status()
    if not status.running:
        raise NodeError(
            f"the managed Kubo daemon (pid {pid}) runs but its API did not answer "
            f"within {timeout:.0f}s",
            hint=f"see {user_repo_path() / LOG_FILE}; `ipfsbin node stop` stops it",
        )
    return status


def stop_user_node(timeout: float = 30.0) -> bool:
    """Stop the default node: SIGTERM, wait, SIGKILL. False when it was not running.

    The CLI prints "node stopped" or "node was not running".
    """
    repo = user_repo_path()
    pid = _read_pid(repo)
    if pid is None or not alive(pid):
        (repo / PID_FILE).unlink(missing_ok=True)
        return False
    terminate(pid, timeout)
    (repo / PID_FILE).unlink(missing_ok=True)
    return True


def user_node_status() -> NodeStatus:
    """Whether the default node runs, and its API, peer id and Kubo version.

    The CLI prints "running" with the fields, or "not running (repo <path>)".
    """
    repo = user_repo_path()
    pid = _read_pid(repo)
    if pid is None or not alive(pid):
        return NodeStatus(running=False, repo_path=repo)
    try:
        api = (repo / "api").read_text().strip()
        with KuboClient.from_multiaddr(api, timeout=5.0) as client:
            identity = client.id()
            version = client.version().version
    except (OSError, KuboError):
        return NodeStatus(running=False, repo_path=repo, pid=pid)
    return NodeStatus(
        running=True,
        repo_path=repo,
        api=api,
        peer_id=identity.peer_id,
        kubo_version=version,
        pid=pid,
    )


def resolve_api() -> str:
    """The API multiaddr (or URL) to use: ``IPFSBIN_API``, else the default node's.

    Raises ``KuboUnavailableError`` (hint: ``ipfsbin node start``) when no
    override is set and the default node does not run.
    """
    override = os.environ.get(API_ENV, "").strip()
    if override:
        return override
    repo = user_repo_path()
    pid = _read_pid(repo)
    if pid is not None and not alive(pid):
        raise KuboUnavailableError(
            f"the managed Kubo node (pid {pid}) is not running any more", hint=START_HINT
        )
    try:
        return (repo / "api").read_text().strip()
    except OSError:
        raise KuboUnavailableError(
            f"no Kubo daemon: {API_ENV} is not set and the managed node in {repo} is not running",
            hint=START_HINT,
        ) from None


def connect() -> KuboClient:
    """A client for the API :func:`resolve_api` picks."""
    api = resolve_api()
    try:
        return KuboClient.from_multiaddr(api)
    except ValueError as exc:
        raise KuboUnavailableError(
            f"cannot use the Kubo API address {api!r}: {exc}",
            hint=f"set {API_ENV} to the daemon's API multiaddr (e.g. /ip4/127.0.0.1/tcp/5001) "
            "or to an http:// URL",
        ) from exc
