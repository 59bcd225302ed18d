"""Build Go commands from the module proxy once per version (Kubo, IPFS Cluster).

``go install pkg@version`` asks the proxy for the module's version list,
which some proxies refuse; a throwaway module that requires the exact
version as a tool and installs its commands needs only that version. The
commands land in a cache directory keyed by version, built under a lock so
that two first runs (tests and the demo) do not share one build module.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin.errors import KuboInstallError

__all__ = ["GO_HINT", "GoBuild", "Progress", "build_once", "find_go", "require_go", "script_main"]

_GO_FALLBACKS: Final = (Path("/usr/local/go/bin/go"),)
GO_HINT: Final = (
    "install Go >= 1.25 (https://go.dev/dl or your package manager, e.g. `emerge dev-lang/go`) "
    "and run `ipfsbin node install` again"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GoBuild:
    """Commands ``packages`` of one module version, installed into ``directory``.

    ``toolchain`` is the ``GOTOOLCHAIN`` of the build; ``ready`` says whether
    ``directory`` already holds working binaries of the wanted version.
    """

    label: str
    directory: Path
    packages: tuple[str, ...]
    version: str
    toolchain: str
    ready: Callable[[], bool]


def find_go() -> Path | None:
    """The ``go`` command: on PATH, else where the official tarball puts it."""
    found = shutil.which("go")
    if found:
        return Path(found)
    for candidate in _GO_FALLBACKS:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_go(what: str) -> Path:
    """``go``, or a ``KuboInstallError`` that says how to get it."""
    go = find_go()
    if go is None:
        raise KuboInstallError(
            f"cannot build {what}: the Go toolchain (`go`) is not on PATH nor in /usr/local/go/bin",
            hint=GO_HINT,
        )
    return go


def build_once(build: GoBuild, progress: Progress | None = None) -> None:
    """Build ``build`` unless it is ready, holding the directory's lock throughout."""
    say = progress or (lambda _line: None)
    go = require_go(build.label)
    build.directory.mkdir(parents=True, exist_ok=True)
    with (build.directory / "build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if build.ready():
            return
        module = build.directory / "module"
        module.mkdir(parents=True, exist_ok=True)
        for stale in ("go.mod", "go.sum"):
            (module / stale).unlink(missing_ok=True)
        env = {**os.environ, "GOTOOLCHAIN": build.toolchain, "GOBIN": str(build.directory)}
        say(f"building {build.label} with {go} (takes a few minutes the first time)")
        steps = [
            [str(go), "mod", "init", "ipfsbin.local/build"],
            *([str(go), "get", "-tool", f"{pkg}@{build.version}"] for pkg in build.packages),
            [str(go), "install", "-trimpath", *build.packages],
        ]
        for argv in steps:
            say(" ".join(argv[1:]))
            _run(argv, module, env, say)


def _run(argv: list[str], cwd: Path, env: dict[str, str], progress: Progress) -> None:
    try:
        proc = subprocess.Popen(  # noqa: S603 - the go command we located, no shell
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise KuboInstallError(f"cannot run {argv[0]}: {exc}", hint=GO_HINT) from exc
    tail: list[str] = []
    assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
    for line in proc.stdout:
        line = line.rstrip()
        progress(line)
        tail = [*tail[-19:], line]
    code = proc.wait()
    if code != 0:
        raise KuboInstallError(
            f"`go {' '.join(argv[1:])}` failed with exit status {code}:\n" + "\n".join(tail),
            hint="check network access to the Go module proxy (GOPROXY) and free disk space",
        )


def script_main(script: str, ensure: Callable[[Progress], Path]) -> int:
    """Build if needed and print the binary's path; what the install scripts run."""

    def report(line: str) -> None:
        print(f"{script}: {line}", file=sys.stderr)

    try:
        path = ensure(report)
    except KuboInstallError as exc:
        print(f"{script}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"{script}: hint: {exc.hint}", file=sys.stderr)
        return 1
    print(path)
    return 0
