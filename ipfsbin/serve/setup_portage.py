"""``ipfsbin setup-portage``: point Portage at the local binhost, and undo it.

Writes one ``binrepos.conf`` entry per served subscription into
``<config root>/etc/portage/binrepos.conf/ipfsbin.conf`` (or, when
``binrepos.conf`` is a file, a marked block at its end), with
``verify-signature = false`` for those entries only: ipfsbin carries the
trust (signed index under a pinned root, bytes checked against the signed
manifest as they stream), and Portage's own SIZE/MD5/SHA1 checks still run.
Installs systemd and OpenRC service files for ``serve`` and ``sync
--follow`` that run as an unprivileged user, where those init systems keep
them, and a daily ``ipfsbin gc`` (a systemd timer; for OpenRC, a
``cron.daily`` job). Changes nothing else; every file it writes carries a marker, and
``--undo`` removes exactly what carries it.

``setup-portage --share`` (:func:`setup_share`) installs the sharing side
instead: a marked block in ``/etc/portage/bashrc`` that starts ``ipfsbin
share`` (as the service's user) in the background after each merge, a fast
trigger beside the ``share --watch`` service, whose unit files it installs
too. The block tests ``EBUILD_PHASE`` where the bashrc is sourced and defines
no function, so a ``post_pkg_postinst`` of the user's own stays theirs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from ipfsbin.errors import ServeError

__all__ = ["SetupChange", "PortageSetup", "setup_portage", "setup_share", "undo_setup_portage"]

MARKER: Final = "Written by `ipfsbin setup-portage`"
_BEGIN: Final = f"# BEGIN ipfsbin: {MARKER.lower()}; undo: `ipfsbin setup-portage --undo`"
_END: Final = "# END ipfsbin"
_HOOK_BEGIN: Final = (
    f"# BEGIN ipfsbin share: {MARKER.lower()}; undo: `ipfsbin setup-portage --undo`"
)
_HOOK_END: Final = "# END ipfsbin share"
# (template, target, mode, the directory that says this init system is installed)
_UNITS: Final = (
    ("ipfsbin-serve.service", "etc/systemd/system/ipfsbin-serve.service", 0o644, "etc/systemd"),
    ("ipfsbin-follow.service", "etc/systemd/system/ipfsbin-follow.service", 0o644, "etc/systemd"),
    ("ipfsbin-serve.initd", "etc/init.d/ipfsbin-serve", 0o755, "etc/init.d"),
    ("ipfsbin-follow.initd", "etc/init.d/ipfsbin-follow", 0o755, "etc/init.d"),
    ("ipfsbin-gc.service", "etc/systemd/system/ipfsbin-gc.service", 0o644, "etc/systemd"),
    ("ipfsbin-gc.timer", "etc/systemd/system/ipfsbin-gc.timer", 0o644, "etc/systemd"),
    # OpenRC has no timers: a daily cron job instead
    ("ipfsbin-gc.cron", "etc/cron.daily/ipfsbin-gc", 0o755, "etc/cron.daily"),
)
_SHARE_UNITS: Final = (
    ("ipfsbin-share.service", "etc/systemd/system/ipfsbin-share.service", 0o644, "etc/systemd"),
    ("ipfsbin-share.initd", "etc/init.d/ipfsbin-share", 0o755, "etc/init.d"),
)


@dataclass(frozen=True, kw_only=True)
class SetupChange:
    path: Path
    action: str
    """``created``, ``updated``, ``removed`` or ``skipped`` (with why in ``note``)."""
    note: str = ""

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "action": self.action, "note": self.note}


@dataclass(frozen=True, kw_only=True)
class PortageSetup:
    root: Path
    """The config root (EPREFIX for a prefix, ``/`` for the host)."""
    base_url: str
    subscriptions: tuple[str, ...]
    user: str
    group: str
    home: Path
    ipfsbin: str
    listen: str
    priority: int = 10


def _entries(setup: PortageSetup) -> str:
    lines = [
        f"# {MARKER}; undo with `ipfsbin setup-portage --undo`.",
        "# ipfsbin carries the trust for these entries: it lists only builds of an index",
        "# whose commits are signed under the trust root you pinned, and checks every byte",
        "# against the signed manifest as it streams, so Portage's gpkg signature check is",
        "# switched off here (verify-signature = false) and nowhere else. Portage's own",
        "# SIZE/MD5/SHA1 checks still run.",
    ]
    for name in setup.subscriptions:
        lines += [
            "",
            f"[ipfsbin-{name[-12:]}]",
            f"sync-uri = {setup.base_url.rstrip('/')}/{name}",
            f"priority = {setup.priority}",
            "verify-signature = false",
        ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, mode: int, changes: list[SetupChange]) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.ipfsbin-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)
    changes.append(SetupChange(path=path, action="created" if old is None else "updated"))


def _binrepos(root: Path) -> Path:
    return root / "etc/portage/binrepos.conf"


def _without_block(text: str, begin: str = _BEGIN, end_mark: str = _END) -> str:
    start = text.find(begin)
    if start < 0:
        return text
    end = text.find(end_mark, start)
    end = len(text) if end < 0 else end + len(end_mark)
    return (text[:start].rstrip("\n") + "\n" + text[end:].lstrip("\n")).lstrip("\n")


def setup_portage(setup: PortageSetup) -> list[SetupChange]:
    """Write the binrepos.conf entries and the service files; returns what changed."""
    if not setup.subscriptions:
        raise ServeError(
            "no subscription to point Portage at",
            hint="subscribe first: `ipfsbin subscribe NAME --root CID`",
        )
    changes: list[SetupChange] = []
    conf = _binrepos(setup.root)
    entries = _entries(setup)
    if conf.is_file():
        current = _without_block(conf.read_text(encoding="utf-8"))
        text = f"{current.rstrip()}\n\n{_BEGIN}\n{entries}{_END}\n".lstrip("\n")
        _write(conf, text, 0o644, changes)
    else:
        _write(conf / "ipfsbin.conf", entries, 0o644, changes)
    _install_units(setup, _UNITS, changes)
    return changes


def _filled(setup: PortageSetup, source: str) -> str:
    values = {
        "@IPFSBIN@": setup.ipfsbin,
        "@USER@": setup.user,
        "@GROUP@": setup.group,
        "@HOME@": str(setup.home),
        "@LISTEN@": setup.listen,
    }
    text = resources.files("ipfsbin.serve").joinpath("units").joinpath(source).read_text("utf-8")
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _install_units(
    setup: PortageSetup, units: tuple[tuple[str, str, int, str], ...], changes: list[SetupChange]
) -> None:
    for source, target, mode, marker in units:
        path = setup.root / target
        if not (setup.root / marker).is_dir():
            changes.append(
                SetupChange(path=path, action="skipped", note=f"no {setup.root / marker} here")
            )
            continue
        _write(path, _filled(setup, source), mode, changes)


def _bashrc(root: Path) -> Path:
    return root / "etc/portage/bashrc"


def setup_share(setup: PortageSetup) -> list[SetupChange]:
    """The bashrc trigger and the ``share --watch`` service files; returns what changed."""
    changes: list[SetupChange] = []
    bashrc = _bashrc(setup.root)
    current = ""
    if bashrc.is_file():
        current = _without_block(bashrc.read_text(encoding="utf-8"), _HOOK_BEGIN, _HOOK_END)
    block = f"{_HOOK_BEGIN}\n{_filled(setup, 'bashrc-share')}{_HOOK_END}\n"
    _write(bashrc, f"{current.rstrip()}\n\n{block}".lstrip("\n"), 0o644, changes)
    _install_units(setup, _SHARE_UNITS, changes)
    return changes


def _remove_marked(path: Path, changes: list[SetupChange]) -> None:
    if path.is_file() and MARKER in path.read_text(encoding="utf-8", errors="replace"):
        path.unlink()
        changes.append(SetupChange(path=path, action="removed"))


def undo_setup_portage(root: Path) -> list[SetupChange]:
    """Remove what :func:`setup_portage` wrote (files carrying its marker) and nothing else."""
    changes: list[SetupChange] = []
    conf = _binrepos(root)
    if conf.is_file():
        text = conf.read_text(encoding="utf-8")
        if _BEGIN in text:
            _write(conf, _without_block(text), 0o644, changes)
    else:
        _remove_marked(conf / "ipfsbin.conf", changes)
        if conf.is_dir() and not any(conf.iterdir()):
            conf.rmdir()
            changes.append(SetupChange(path=conf, action="removed", note="empty directory"))
    bashrc = _bashrc(root)
    if bashrc.is_file():
        text = bashrc.read_text(encoding="utf-8")
        if _HOOK_BEGIN in text:
            rest = _without_block(text, _HOOK_BEGIN, _HOOK_END)
            if rest.strip():
                _write(bashrc, rest, 0o644, changes)
            else:
                bashrc.unlink()
                changes.append(SetupChange(path=bashrc, action="removed", note="sharing trigger"))
    for _, target, _, _ in _UNITS + _SHARE_UNITS:
        _remove_marked(root / target, changes)
    return changes
