"""A Kubo daemon ipfsbin runs itself (test nodes, and the user's default node).

:class:`ManagedNode` owns one daemon process over one repo (``IPFS_PATH``):
it initializes the repo, starts the daemon, waits for its API, hands out
clients, and stops it. Which daemon a command talks to, and the user's
default node, are :mod:`ipfsbin.kubo.daemon`'s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from ipfsbin.errors import KuboError, KuboUnavailableError, NodeError
from ipfsbin.kubo._process import (
    child_exit_status,
    spawn_detached,
    stop_child,
    terminate,
    wait_gone,
)
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.install import ensure_kubo
from ipfsbin.kubo.private import is_private, private_config, write_private

__all__ = ["LOG_FILE", "PID_FILE", "START_HINT", "ManagedNode"]

PID_FILE: Final = "ipfsbin-daemon.pid"
LOG_FILE: Final = "daemon.log"
START_HINT: Final = "start the managed node with `ipfsbin node start`, or set IPFSBIN_API"

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
        env = {**os.environ, "IPFS_PATH": str(self.repo_path), "IPFS_TELEMETRY": "off"}
        if is_private(self.repo_path):
            env["LIBP2P_FORCE_PNET"] = "1"
        return env

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

    def make_private(self, swarm_key: bytes, bootstrap: Sequence[str] = ()) -> None:
        """Join the private swarm of ``swarm_key``, bootstrapping only from ``bootstrap``.

        The daemon must be stopped: Kubo reads the key and its config at start.
        """
        if self.running:
            raise NodeError(
                f"the Kubo daemon of {self.repo_path} runs; it reads its swarm key only at start",
                hint="stop it first (`ipfsbin node stop`), then run this again",
            )
        config = private_config(bootstrap)
        self.init()
        write_private(self.repo_path, swarm_key)
        for key, value in config.items():
            self.run("config", "--json", key, json.dumps(value))

    # -- the daemon ---------------------------------------------------------

    @property
    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and child_exit_status(self._pid) is None

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
                self._pid = spawn_detached(argv, self.env(), self.log_path)
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
            return child_exit_status(self._pid)
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
            stop_child(process, timeout)
        elif self._pid is not None:
            terminate(self._pid, timeout)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL the daemon at once (for tests of failures); leaves a stale api file."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)
        elif self._pid is not None and child_exit_status(self._pid) is None:
            os.kill(self._pid, signal.SIGKILL)
            wait_gone(self._pid, 10.0)
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
                hint=START_HINT,
            ) from exc

    @property
    def gateway_url(self) -> str:
        try:
            return (self.repo_path / "gateway").read_text().strip()
        except OSError as exc:
            raise KuboUnavailableError(
                f"no gateway address in {self.repo_path}/gateway", hint=START_HINT
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
