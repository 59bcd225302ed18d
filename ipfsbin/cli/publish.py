"""``ipfsbin publish PKG...``: add binpkgs to IPFS with descriptor, manifest and attestation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.binpkg import SETUID_PACKAGES
from ipfsbin.builder.publish import PublishProgress, detect_host_facts, publish_binpkgs
from ipfsbin.cli.key import signing_key
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.kubo import connect

__all__ = ["publish"]

# Below this a progress bar would only flicker.
_BAR_MIN_BYTES = 8 * 1024 * 1024


def _split_pair(value: str | None, option: str, example: str) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, version = value.rpartition("-")
    if not sep or not name or not version or not version[0].isdigit():
        raise typer.BadParameter(f"expected NAME-VERSION such as {example}", param_hint=option)
    return name, version


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[PublishProgress | None]:
    """A rich progress bar on stderr for large files, when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    tasks: dict[Path, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def update(path: Path, done: int, total: int) -> None:
            if total < _BAR_MIN_BYTES:
                return
            if path not in tasks:
                tasks[path] = bar.add_task(path.name, total=total)
            bar.update(tasks[path], completed=done)

        yield update


def _render(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines += [
            r["cpv"],
            f"  binpkg       {r['binpkg']}",
            f"  descriptor   {r['descriptor']}",
            f"  manifest     {r['manifest']}",
            f"  attestation  {r['attestation']}",
        ]
    return "\n".join(lines)


def publish(
    packages: Annotated[
        list[Path],
        typer.Argument(
            help="Binary packages (.gpkg.tar, .xpak, .tbz2) to publish.", show_default=False
        ),
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", help="Signing key name (default: the only key there is)."),
    ] = None,
    allow_restricted: Annotated[
        bool,
        typer.Option(
            "--allow-restricted",
            help="Switch off the refusal of RESTRICT=bindist/fetch packages (only if you "
            "may redistribute them).",
        ),
    ] = False,
    allow_quickpkg: Annotated[
        bool,
        typer.Option(
            "--allow-quickpkg",
            help="Switch off the refusal of packages not built from source (quickpkg).",
        ),
    ] = False,
    allow_setuid: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-setuid",
            help="CATEGORY/NAME of a package whose setuid/setgid files may be published, "
            "besides the packages known to ship them.",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Portage profile, e.g. default/linux/amd64/23.0 (default: read from "
            "$PORTAGE_CONFIGROOT/etc/portage/make.profile).",
        ),
    ] = None,
    libc: Annotated[
        str | None,
        typer.Option("--libc", help="C library as NAME-VERSION (default: detected)."),
    ] = None,
    compiler: Annotated[
        str | None,
        typer.Option(
            "--compiler",
            help="Compiler as FAMILY-VERSION for packages whose files name none "
            "(default: gcc on PATH).",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Publish binpkgs: file, platform, descriptor, manifest and a signed attestation.

    Prints per package its CPV and the CIDs of binpkg, descriptor, manifest and
    attestation. Bad input anywhere publishes nothing.
    """
    signing = signing_key(key)
    host = detect_host_facts(
        profile=profile,
        libc=_split_pair(libc, "--libc", "glibc-2.40"),
        compiler=_split_pair(compiler, "--compiler", "gcc-14.2.1"),
    )
    with connect() as client, _progress_bar(progress and not as_json) as bar:
        results = publish_binpkgs(
            packages,
            client=client,
            key=signing,
            host=host,
            allow_restricted=allow_restricted,
            allow_quickpkg=allow_quickpkg,
            setuid_packages=SETUID_PACKAGES | frozenset(allow_setuid or ()),
            progress=bar,
        )
    emit([r.to_json() for r in results], as_json, _render)
