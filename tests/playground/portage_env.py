"""Run the real ``emerge`` inside a Portage ``ResolverPlayground`` on a non-Gentoo host.

The playground is Portage's own test fixture: a prefix (EPREFIX) holding a
repository, a profile, ``make.conf``, a PKGDIR and an empty installed-package
database. What it takes to run a real ``emerge`` there on a Debian-like host:

* GNU tar reachable as ``gtar``, and ``zstd``, ``bzip2``, ``flock`` on PATH;
* ``PORTAGE_USERNAME``/``PORTAGE_GRPNAME`` naming the current user and group
  before ``portage.data`` is (re)loaded, and ``portage._disable_legacy_globals()``;
* ``PORTAGE_GNUPGHOME`` naming a directory, and binpkg signing switched off in
  ``make.conf`` (``BINPKG_FORMAT=gpkg`` must not appear in ``make.conf``: the
  playground then turns signature requests back on; gpkg is the default);
* ``chown``/``chgrp`` that do nothing, first on PATH;
* ``var/cache/edb/counter`` present;
* emerge started as ``python -b <bin>/emerge`` with the environment made by
  :func:`emerge_env`.

Playgrounds of one process and its children share the metadata egencache
generates (Portage's ``ResolverPlayground.metadata_cache_dir``, the directory
named in ``IPFSBIN_TEST_PORTAGE_METADATA``), so only the first playground of
a given repository pays for it.

Use::

    prepare_process()                    # once per process, before any playground
    tools = make_tool_dir(tmp / "tools")
    pg = create_playground(ebuilds=..., user_config=..., tool_dir=tools)
    run_emerge(pg, "--buildpkg", "app-misc/hello", tool_dir=tools)
    ...
    pg.cleanup()

:func:`emerge_env` and :func:`emerge_command` are separate so that a client
host (``emerge --getbinpkgonly`` against a local binhost) can add its own
variables, e.g. ``emerge_env(pg, tools, {"PORTAGE_BINHOST": url})``.
"""

from __future__ import annotations

import atexit
import grp
import importlib
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SIGNING_OFF",
    "EmergeError",
    "create_playground",
    "emerge_command",
    "emerge_env",
    "make_tool_dir",
    "missing_host_tools",
    "prepare_process",
    "run_emerge",
]

# Signing needs a keyring the playground does not have (Portage from PyPI ships
# no test keys), and BINPKG_FORMAT=gpkg in make.conf turns signature requests
# back on. An empty signing command also stops the playground's GPG unlock.
SIGNING_OFF = (
    'FEATURES="${FEATURES} -binpkg-signing -gpg-keepalive -binpkg-request-signature"',
    'BINPKG_GPG_SIGNING_BASE_COMMAND=""',
)

_HOST_TOOLS = ("tar", "zstd", "bzip2", "flock", "gcc")
METADATA_CACHE_ENV = "IPFSBIN_TEST_PORTAGE_METADATA"
"""The directory of the metadata cache playgrounds share, for child processes too."""


class EmergeError(AssertionError):
    """emerge exited non-zero; the message carries the tail of its output."""


def missing_host_tools() -> list[str]:
    """Host programs the playground needs that are not on PATH (empty when all are there)."""
    return [tool for tool in _HOST_TOOLS if shutil.which(tool) is None]


def prepare_process() -> None:
    """Set the process-wide state Portage's playground expects; idempotent.

    Sets PORTAGE_USERNAME/PORTAGE_GRPNAME to the current user (Portage otherwise
    looks for a ``portage`` user), PORTAGE_GNUPGHOME to an empty private
    directory, and stops Portage from building its legacy global settings
    (which would read the host's /etc/portage).
    """
    import portage
    import portage.data

    os.environ.setdefault("PORTAGE_USERNAME", pwd.getpwuid(os.getuid()).pw_name)
    os.environ.setdefault("PORTAGE_GRPNAME", grp.getgrgid(os.getgid()).gr_name)
    if "PORTAGE_GNUPGHOME" not in os.environ:
        gnupg = tempfile.mkdtemp(prefix="ipfsbin-gnupg-")
        atexit.register(shutil.rmtree, gnupg, True)
        os.environ["PORTAGE_GNUPGHOME"] = gnupg
    importlib.reload(portage.data)
    portage._internal_caller = True
    portage._disable_legacy_globals()
    from portage.tests.resolver.ResolverPlayground import ResolverPlayground

    if ResolverPlayground.metadata_cache_dir is None:
        # As Portage's own test suite does: playgrounds share what egencache generates
        # (md5-cache, Manifests), keyed by the ebuilds' content, so a repository seen
        # before in this process (or its parent, e.g. the demo run by a test) is not run
        # through egencache again; Portage writes each entry atomically
        cache = os.environ.get(METADATA_CACHE_ENV, "")
        if not os.path.isdir(cache):
            cache = tempfile.mkdtemp(prefix="ipfsbin-portage-metadata-")
            atexit.register(shutil.rmtree, cache, True)
            os.environ[METADATA_CACHE_ENV] = cache
        ResolverPlayground.metadata_cache_dir = cache


def make_tool_dir(path: Path) -> Path:
    """Create a bin directory with ``gtar`` (GNU tar), no-op ``chown``/``chgrp``
    and a ``python`` that imports portage.

    Portage resolves its interpreter to the real file, which outside a
    virtualenv's own path does not see the virtualenv's packages; the
    ``python`` here is a script that execs this process's interpreter by the
    path it was started with.
    """
    path.mkdir(parents=True, exist_ok=True)
    python = path / "python"
    if not python.exists():
        python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        python.chmod(0o755)
    tar = shutil.which("gtar") or shutil.which("tar")
    if tar is None:
        raise RuntimeError("GNU tar is needed on PATH (as tar or gtar)")
    true = shutil.which("true") or "/bin/true"
    for name, target in (("gtar", tar), ("chown", true), ("chgrp", true)):
        link = path / name
        if not link.exists():
            link.symlink_to(target)
    return path


def create_playground(
    *,
    ebuilds: Mapping[str, Mapping[str, str]],
    user_config: Mapping[str, Sequence[str]],
    tool_dir: Path,
    eprefix: Path | None = None,
) -> Any:
    """Create a ResolverPlayground ready for a real emerge; signing is switched off.

    ``tool_dir`` comes from :func:`make_tool_dir`; it is put first on PATH while
    the playground links its essential binaries, so ``gtar`` is found and the
    playground's ``chown``/``chgrp`` do nothing.
    """
    import portage
    import portage.const
    from portage.tests.resolver.ResolverPlayground import ResolverPlayground
    from portage.util import ensure_dirs

    config = {key: list(value) for key, value in user_config.items()}
    config["make.conf"] = [*config.get("make.conf", []), *SIGNING_OFF]
    saved_path = os.environ.get("PATH", "")
    saved_eprefix = portage.const.EPREFIX
    saved_python = portage._python_interpreter
    os.environ["PATH"] = f"{tool_dir}:{saved_path}"
    # The playground links EPREFIX/usr/bin/python to this interpreter.
    portage._python_interpreter = str(tool_dir / "python")
    try:
        playground = ResolverPlayground(
            ebuilds={k: dict(v) for k, v in ebuilds.items()},
            user_config=config,
            eprefix=None if eprefix is None else str(eprefix),
        )
    finally:
        os.environ["PATH"] = saved_path
        portage._python_interpreter = saved_python
        # The playground points the process-wide EPREFIX at itself; emerge runs
        # in a child, so put it back at once for everything else in this process.
        portage.const.EPREFIX = saved_eprefix

    eprefix_path = Path(playground.eprefix)
    for sub in ("var/cache/edb", "var/tmp/portage", "etc/portage/env"):
        ensure_dirs(str(eprefix_path / sub))
    ensure_dirs(playground.distdir)
    counter = eprefix_path / "var/cache/edb/counter"
    if not counter.exists():
        counter.write_text("100")
    return playground


def emerge_env(
    playground: Any, tool_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for an emerge child process of this playground."""
    from portage.const import PORTAGE_PYM_PATH

    settings = playground.settings
    pythonpath = PORTAGE_PYM_PATH
    inherited = os.environ.get("PYTHONPATH", "").strip()
    if inherited:
        pythonpath = f"{pythonpath}:{inherited}"
    env = {
        "PATH": f"{tool_dir}:{settings['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NOCOLOR": "true",
        "PORTAGE_OVERRIDE_EPREFIX": playground.eprefix,
        "PORTAGE_PYTHON": str(tool_dir / "python"),
        "PORTAGE_REPOSITORIES": settings.repositories.config_string(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": pythonpath,
        "PORTAGE_INST_GID": str(os.getgid()),
        "PORTAGE_INST_UID": str(os.getuid()),
        "PORTAGE_USERNAME": os.environ["PORTAGE_USERNAME"],
        "PORTAGE_GRPNAME": os.environ["PORTAGE_GRPNAME"],
        "PORTAGE_GNUPGHOME": os.environ["PORTAGE_GNUPGHOME"],
    }
    if extra:
        env.update(extra)
    return env


def emerge_command(*args: str) -> list[str]:
    """The command line that runs the real emerge with this process's Python."""
    from portage.const import PORTAGE_BIN_PATH

    return [sys.executable, "-b", os.path.join(PORTAGE_BIN_PATH, "emerge"), *args]


def run_emerge(
    playground: Any,
    *args: str,
    tool_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run emerge in the playground; raise :class:`EmergeError` when it fails."""
    cmd = emerge_command(*args)
    proc = subprocess.run(  # noqa: S603 - fixed interpreter and script
        cmd,
        env=emerge_env(playground, tool_dir, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-60:])
        raise EmergeError(f"emerge {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return proc
