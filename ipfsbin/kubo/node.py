"""Kubo daemons ipfsbin runs itself: test nodes, and the user's default node.

:class:`ManagedNode` owns one daemon process over one repo (``IPFS_PATH``):
it initializes the repo, starts the daemon, waits for its API, hands out
clients, and stops it. The user's default node lives under
``paths.data_dir()/kubo`` and runs detached, so ``ipfsbin node start`` can
return and ``ipfsbin node stop`` can stop it later.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from ipfsbin import paths
from ipfsbin.errors import KuboError, KuboUnavailableError, NodeError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.install import ensure_kubo

__all__ = [
    "API_ENV",
    "ManagedNode",
    "NodeStatus",
    "connect",
    "resolve_api",
    "start_user_node",
    "stop_user_node",
    "user_node_status",
    "user_repo_path",
]

API_ENV: Final = "IPFSBIN_API"
PID_FILE: Final = "ipfsbin-daemon.pid"
LOG_FILE: Final = "daemon.log"
_START_HINT: Final = "start the managed node with `ipfsbin node start`, or set IPFSBIN_API"
# The user node: API and gateway on loopback only, on ports the OS picks (the
# daemon writes them to $IPFS_PATH/api and /gateway), so it never collides
# with a Kubo the user runs on the default ports.
USER_NODE_CONFIG: Final[Mapping[str, Any]] = {
    "Addresses.API": "/ip4/127.0.0.1/tcp/0",
    "Addresses.Gateway": "/ip4/127.0.0.1/tcp/0",
}

JsonValue = Any


class ManagedNode:
    """One Kubo daemon over the repo at ``repo_path``, started and stopped by us.

    Use as a context manager (``init`` if needed, ``start``; ``stop`` on exit).
    ``profile="test"`` binds everything to random loopback ports with no
    bootstrap peers; ``extra_config`` maps dotted config keys to JSON values.
    """

    def __init__(
        self,
        repo_path: Path,
        *,
        binary: Path | None = None,
        profile: str | None = "test",
        routing: str | None = "dht",
        extra_config: Mapping[str, JsonValue] | None = None,
        daemon_args: Sequence[str] = (),
        detached: bool = False,
    ) -> None:
        self.repo_path = Path(repo_path)
        self._binary = binary
        self.profile = profile
        self.routing = routing
        self.extra_config = dict(extra_config or {})
        self.daemon_args = tuple(daemon_args)
        self.detached = detached
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None  # a detached daemon
        self._log: IO[bytes] | None = None
        self._peer_id: str | None = None

    # -- plumbing -----------------------------------------------------------

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = ensure_kubo()
        return self._binary

    @property
    def log_path(self) -> Path:
        return self.repo_path / LOG_FILE

    @property
    def pid_path(self) -> Path:
        return self.repo_path / PID_FILE

    def env(self) -> dict[str, str]:
        """The environment of every ``ipfs`` invocation on this repo."""
        return {**os.environ, "IPFS_PATH": str(self.repo_path), "IPFS_TELEMETRY": "off"}

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run the ``ipfs`` command line on this repo (through the daemon when it runs)."""
        argv = [str(self.binary), *args]
        try:
            done = subprocess.run(  # noqa: S603 - our binary, no shell
                argv, input=input, capture_output=True, env=self.env(), timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NodeError(f"`ipfs {' '.join(args)}` could not run: {exc}") from exc
        if check and done.returncode != 0:
            raise NodeError(
                f"`ipfs {' '.join(args)}` failed with exit status {done.returncode}: "
                f"{done.stderr.decode('utf-8', 'replace').strip()[-2000:]}"
            )
        return done

    @property
    def initialized(self) -> bool:
        return (self.repo_path / "config").is_file()

    def init(self) -> None:
        """Create the repo (``ipfs init -e``, the chosen profile) and apply our config."""
        if self.initialized:
            return
        self.repo_path.mkdir(parents=True, exist_ok=True)
        args = ["init", "-e"]
        if self.profile:
            args.append(f"--profile={self.profile}")
        self.run(*args)
        config: dict[str, JsonValue] = {}
        if self.routing is not None:
            config["Routing.Type"] = self.routing
        config.update(self.extra_config)
        for key, value in config.items():
            self.run("config", "--json", key, json.dumps(value))

    # -- the daemon ---------------------------------------------------------

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and _child_exit_status(self._pid) is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else self._pid

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemon and return once ``/api/v0/id`` answers.

        A detached daemon is spawned in its own session with no ``Popen``
        object, so it outlives this process without a resource warning.
        """
        if self.running:
            return
        self.init()
        # A daemon killed with SIGKILL leaves its api file behind.
        (self.repo_path / "api").unlink(missing_ok=True)
        argv = [str(self.binary), "daemon", "--migrate=false", *self.daemon_args]
        try:
            if self.detached:
                self._pid = _spawn_detached(argv, self.env(), self.log_path)
            else:
                self._log = self.log_path.open("ab")
                self._process = subprocess.Popen(  # noqa: S603 - our binary, no shell
                    argv,
                    env=self.env(),
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise NodeError(f"cannot start {argv[0]}: {exc}") from exc
        self.pid_path.write_text(f"{self.pid}\n")
        try:
            self._wait_ready(timeout)
        except NodeError:
            self.kill()
            raise

    def _exit_status(self) -> str | None:
        """How the daemon ended, or None while it runs."""
        if self._process is not None:
            code = self._process.poll()
            return None if code is None else f"exit status {code}"
        if self._pid is not None:
            return _child_exit_status(self._pid)
        return "not started"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        api_file = self.repo_path / "api"
        last_error = "the daemon wrote no api file"
        while time.monotonic() < deadline:
            ended = self._exit_status()
            if ended is not None:
                raise NodeError(
                    f"the Kubo daemon stopped while starting ({ended}):\n{self.log_tail()}",
                    hint=f"see {self.log_path}",
                )
            if api_file.is_file():
                try:
                    with self.client(timeout=2.0) as client:
                        self._peer_id = client.id().peer_id
                    return
                except KuboError as exc:
                    last_error = exc.message
            time.sleep(0.05)
        raise NodeError(
            f"the Kubo daemon did not answer within {timeout:.0f}s ({last_error}):\n"
            f"{self.log_tail()}",
            hint=f"see {self.log_path}",
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        elif self._pid is not None:
            _terminate(self._pid, timeout)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the daemon at once (for tests of failures); leaves a stale api file."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        elif self._pid is not None and _child_exit_status(self._pid) is None:
            os.kill(self._pid, signal.SIGKILL)
            _wait_gone(self._pid, 10.0)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._process is not None or self._pid is not None:
            self.pid_path.unlink(missing_ok=True)
        self._process = None
        self._pid = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no daemon log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- what callers use ---------------------------------------------------

    @property
    def api_multiaddr(self) -> str:
        try:
            return (self.repo_path / "api").read_text().strip()
        except OSError as exc:
            raise KuboUnavailableError(
                f"no Kubo API address in {self.repo_path}/api (is the daemon running?)",
                hint=_START_HINT,
            ) from exc

    @property
    def gateway_url(self) -> str:
        try:
            return (self.repo_path / "gateway").read_text().strip()
        except OSError as exc:
            raise KuboUnavailableError(
                f"no gateway address in {self.repo_path}/gateway", hint=_START_HINT
            ) from exc

    @property
    def peer_id(self) -> str:
        if self._peer_id is None:
            with self.client() as client:
                self._peer_id = client.id().peer_id
        return self._peer_id

    def swarm_addrs(self) -> tuple[str, ...]:
        """Full multiaddrs (with ``/p2p/<peer id>``) other nodes can dial."""
        with self.client() as client:
            return client.id().addresses

    def client(self, *, timeout: float | None = None) -> KuboClient:
        """A new client for this daemon's API (close it, or use it as a context manager)."""
        if timeout is None:
            return KuboClient.from_multiaddr(self.api_multiaddr)
        return KuboClient.from_multiaddr(self.api_multiaddr, timeout=timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the user's default node ------------------------------------------------


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


def _alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) ipfs daemon process."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        # a reused pid must not pass: our daemons run as `<kubo> daemon ...`
        return cmdline.split(b"\0")[1:2] == [b"daemon"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        node = ManagedNode(
            repo,
            binary=binary,
            profile=profile,
            routing=None,
            extra_config=USER_NODE_CONFIG,
            detached=True,
        )
        node.start(timeout)
        return user_node_status()


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
    if pid is None or not _alive(pid):
        (repo / PID_FILE).unlink(missing_ok=True)
        return False
    _terminate(pid, timeout)
    (repo / PID_FILE).unlink(missing_ok=True)
    return True


def _spawn_detached(argv: list[str], env: Mapping[str, str], log_path: Path) -> int:
    """Start ``argv`` in a new session, output appended to ``log_path``; returns its pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], argv, dict(env), file_actions=actions, setsid=True)


def _child_exit_status(pid: int) -> str | None:
    """How a daemon this process spawned ended, or None while it runs.

    Asks ``waitpid``, not ``/proc``: between spawn and exec the child's
    command line is still ours.
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if _alive(pid) else "exited"
    if done == 0:
        return None
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if this process started it (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, timeout):
            return
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not _wait_gone(pid, 10.0):
        raise NodeError(f"the Kubo daemon (pid {pid}) did not stop after SIGKILL")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def user_node_status() -> NodeStatus:
    """Whether the default node runs, and its API, peer id and Kubo version.

    The CLI prints "running" with the fields, or "not running (repo <path>)".
    """
    repo = user_repo_path()
    pid = _read_pid(repo)
    if pid is None or not _alive(pid):
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
    if pid is not None and not _alive(pid):
        raise KuboUnavailableError(
            f"the managed Kubo node (pid {pid}) is not running any more", hint=_START_HINT
        )
    try:
        return (repo / "api").read_text().strip()
    except OSError:
        raise KuboUnavailableError(
            f"no Kubo daemon: {API_ENV} is not set and the managed node in {repo} is not running",
            hint=_START_HINT,
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
