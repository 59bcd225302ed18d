"""A client host for end-to-end installs: ``ipfsbin`` in a playground's Portage, ``serve``, emerge.

:class:`ClientHost` runs the ``ipfsbin`` command line as one host (its own
``IPFSBIN_HOME``; its Kubo's API, or a dead address for a host without
Kubo) inside a client playground's Portage environment, runs ``ipfsbin
serve`` as a real process, points Portage's ``binrepos.conf`` at it with
``setup-portage``, and installs with the real ``emerge``.
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.playground.builder import BuilderPlayground, parse_packages_index

IPFSBIN = str(Path(sys.executable).with_name("ipfsbin"))
NO_KUBO = "/ip4/127.0.0.1/tcp/9"
"""An API address where nothing listens: any use of a daemon fails."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ClientHost:
    home: Path
    playground: BuilderPlayground
    api: str = NO_KUBO

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.playground.env(),
            "PATH": os.environ["PATH"],
            "IPFSBIN_HOME": str(self.home),
            "IPFSBIN_API": self.api,
            "IPFSBIN_SYSTEM_CONFIG": str(self.home / "none.toml"),
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [IPFSBIN, *args], env=self.env(), capture_output=True, text=True, timeout=300
        )
        assert (done.returncode == 0) == ok, f"{' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def configure(self, text: str = '[host]\ntarget = "x86_64_v2"\n') -> None:
        """The per-user configuration (default: the CPU target the playground builds fit)."""
        (self.home / "config").mkdir(parents=True, exist_ok=True)
        (self.home / "config/ipfsbin.toml").write_text(text)

    @contextmanager
    def serving(self, *args: str, portage: bool = True) -> Iterator[Served]:
        """``ipfsbin serve ARGS`` on a free port, with Portage's binrepos.conf pointing at it.

        ``portage`` False leaves the playground's Portage configuration alone.
        """
        port = free_port()
        log = self.home / f"serve-{port}.log"
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [IPFSBIN, "serve", *args, "--listen", f"127.0.0.1:{port}", "--interval", "0.5"],
                env=self.env(), stdout=subprocess.DEVNULL, stderr=log_file, text=True,
            )  # fmt: skip
            try:
                wait_serving(process, port, log)
                if not portage:
                    yield Served(port=port, log=log)
                    return
                self.run("setup-portage", "--root", str(self.playground.eprefix),
                         "--user", "nobody")  # fmt: skip
                conf = self.playground.eprefix / "etc/portage/binrepos.conf/ipfsbin.conf"
                conf.write_text(conf.read_text().replace("127.0.0.1:7711", f"127.0.0.1:{port}"))
                yield Served(port=port, log=log)
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def emerge(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.playground.emerge(
            *args, env={"FEATURES": "-binpkg-request-signature"}, timeout=900
        )

    def installed(self) -> set[str]:
        vdb = self.playground.eprefix / "var/db/pkg"
        return {f"{c.name}/{p.name}" for c in vdb.iterdir() if c.is_dir() for p in c.iterdir()}

    def downloaded(self) -> list[Path]:
        """Binpkg files in PKGDIR and in the binrepos.conf entries' download cache."""
        places = (self.playground.pkgdir, self.playground.eprefix / "var/cache/binhost")
        return [p for d in places for p in d.rglob("*") if p.is_file() and p.name != "Packages"]


@dataclass
class Served:
    port: int
    log: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def packages(self, name: str) -> list[dict[str, str]]:
        text = gzip.decompress(httpx.get(f"{self.root}/{name}/Packages.gz", timeout=10).content)
        return parse_packages_index(text.decode())

    def listed(self, name: str) -> set[str]:
        return {p["CPV"] for p in self.packages(name)}

    def status(self) -> Any:
        return httpx.get(f"{self.root}/status", timeout=10).json()

    def wait_listed(self, name: str, cpv: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while cpv not in self.listed(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"{cpv} was not listed within {timeout:.0f}s")
            time.sleep(0.5)


def wait_serving(process: subprocess.Popen[str], port: int, log: Path) -> None:
    """Until ``ipfsbin serve`` answers ``/status`` on ``port``; its log in the failure."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ipfsbin serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"ipfsbin serve did not come up:\n{log.read_text()}")
