"""A builder host: a playground whose real ``emerge --buildpkg`` fills a PKGDIR."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portage.const import PORTAGE_BIN_PATH

from tests.playground import ebuilds as repo
from tests.playground.portage_env import (
    EmergeError,
    create_playground,
    emerge_command,
    emerge_env,
    make_tool_dir,
    prepare_process,
    run_emerge,
)

__all__ = ["BuilderPlayground", "parse_packages_index"]


def parse_packages_index(text: str) -> list[dict[str, str]]:
    """The package stanzas of a PKGDIR ``Packages`` file (the header stanza left out)."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    return [s for s in stanzas[1:] if "CPV" in s]


@dataclass
class BuilderPlayground:
    """A playground with the test repository; see :meth:`create`.

    ``binpkgs`` maps CPV to the binpkg path Portage wrote (``.gpkg.tar`` or
    ``.tbz2``); ``build_seconds`` maps each emerge invocation to its duration.
    """

    playground: Any
    tool_dir: Path
    workdir: Path
    binpkgs: dict[str, Path] = field(default_factory=dict)
    build_seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        ebuilds: Mapping[str, Mapping[str, str]] | None = None,
        user_config: Mapping[str, Sequence[str]] | None = None,
        env_files: Mapping[str, str] | None = None,
        eprefix: Path | None = None,
    ) -> BuilderPlayground:
        """Create the playground (no build yet); defaults are the repository in ``ebuilds``.

        ``eprefix``: where the prefix goes (it must not exist yet); a new
        temporary directory by default.
        """
        prepare_process()
        workdir = Path(tempfile.mkdtemp(prefix="ipfsbin-builder-"))
        tool_dir = make_tool_dir(workdir / "tools")
        playground = create_playground(
            ebuilds=repo.EBUILDS if ebuilds is None else ebuilds,
            user_config=repo.user_config(repo.host_chost()) if user_config is None else user_config,
            tool_dir=tool_dir,
            eprefix=eprefix,
        )
        env_dir = Path(playground.eprefix) / "etc/portage/env"
        for name, content in (repo.ENV_FILES if env_files is None else env_files).items():
            (env_dir / name).write_text(content)
        return cls(playground=playground, tool_dir=tool_dir, workdir=workdir)

    @property
    def eprefix(self) -> Path:
        return Path(self.playground.eprefix)

    @property
    def pkgdir(self) -> Path:
        return Path(self.playground.pkgdir)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment an emerge child of this playground runs with."""
        return emerge_env(self.playground, self.tool_dir, extra)

    def command(self, *args: str) -> list[str]:
        """The emerge command line (run it with :meth:`env`)."""
        return emerge_command(*args)

    def emerge(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real emerge here; raises ``EmergeError`` with its output on failure."""
        start = time.monotonic()
        try:
            return run_emerge(
                self.playground, *args, tool_dir=self.tool_dir, env=env, timeout=timeout
            )
        finally:
            self.build_seconds[" ".join(args)] = time.monotonic() - start

    def build_all(self) -> dict[str, Path]:
        """Build the test repository's packages into PKGDIR and return ``binpkgs``."""
        for atoms in repo.BUILD_ORDER:
            self.emerge("--oneshot", "--buildpkg", "--quiet-build=y", *atoms)
        for atom in repo.XPAK_PACKAGES:
            self.emerge(
                "--oneshot",
                "--buildpkg",
                "--quiet-build=y",
                atom,
                env={"BINPKG_FORMAT": "xpak"},
            )
        return self.refresh()

    def build_binpkg(self, atom: str, pkgdir: Path, env: Mapping[str, str] | None = None) -> Path:
        """``emerge --oneshot --buildpkg atom`` into ``pkgdir``; returns the one binpkg written.

        ``env`` adds to the environment (``FEATURES``, ``BINPKG_COMPRESS``...).
        """
        self.emerge(
            "--oneshot",
            "--buildpkg",
            "--quiet-build=y",
            atom,
            env={**(env or {}), "PKGDIR": str(pkgdir)},
        )
        written = [p for p in pkgdir.rglob("*") if p.suffix in (".tar", ".xpak", ".tbz2")]
        if len(written) != 1:
            raise EmergeError(f"emerge --buildpkg {atom} wrote {written}, expected one binpkg")
        return written[0]

    def quickpkg(self, atom: str, pkgdir: Path, env: Mapping[str, str] | None = None) -> Path:
        """Run the real quickpkg on an installed package, writing into ``pkgdir``.

        Returns the one binpkg it wrote there. ``pkgdir`` is separate so the
        shared PKGDIR stays as :meth:`build_all` left it; ``env`` adds to the
        environment (``BINPKG_FORMAT``, ``BINPKG_COMPRESS``...).
        """
        pkgdir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-b", os.path.join(PORTAGE_BIN_PATH, "quickpkg"), atom]
        proc = subprocess.run(  # noqa: S603 - fixed interpreter and script
            cmd,
            env=self.env({**(env or {}), "PKGDIR": str(pkgdir)}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        written = sorted(p for p in pkgdir.rglob("*") if p.suffix in (".tar", ".xpak", ".tbz2"))
        if proc.returncode != 0 or len(written) != 1:
            raise EmergeError(
                f"quickpkg {atom} exited {proc.returncode}, wrote {written}:\n"
                f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            )
        return written[0]

    def build_only(self, *atoms: str, pkgdir: Path, timeout: float = 300.0) -> dict[str, Path]:
        """``emerge --buildpkgonly atoms`` into ``pkgdir``; CPV → binpkg of what it holds.

        Nothing is merged here. A binpkg made under the EPREFIX of the host that
        installs it is installed as on real hosts (both "/"); one from another
        playground is adjusted to this one's prefix by Portage's chpathtool, one
        read(2) per byte (about a second per MB).
        """
        self.emerge("--oneshot", "--buildpkgonly", "--quiet-build=y", *atoms,
                    env={"PKGDIR": str(pkgdir)}, timeout=timeout)  # fmt: skip
        return binpkgs_in(pkgdir)

    def refresh(self) -> dict[str, Path]:
        """Re-read PKGDIR/Packages into ``binpkgs`` (newest build of each CPV wins)."""
        self.binpkgs = binpkgs_in(self.pkgdir)
        return self.binpkgs

    def cleanup(self) -> None:
        """Remove the playground and the tool directory."""
        self.playground.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


def binpkgs_in(pkgdir: Path) -> dict[str, Path]:
    """CPV → binpkg of ``pkgdir/Packages`` (newest build of each CPV wins; none without it)."""
    index = pkgdir / "Packages"
    found: dict[str, Path] = {}
    if index.exists():
        for stanza in parse_packages_index(index.read_text()):
            cpv = stanza["CPV"]
            found[cpv] = pkgdir / (stanza.get("PATH") or f"{cpv}.tbz2")
    return found
