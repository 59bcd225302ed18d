"""What ``ipfsbin share`` refuses to share by default, each refusal with its reason.

Sharing is automatic, so its defaults are conservative (DESIGN.md, "Defaults
for sharing"); each filter is switched off by one key of ``[sharing]`` in
``ipfsbin.toml`` (``schema/config.md``):

- ``origin`` (``allow_quickpkg``): only binpkgs built from source on this
  host. ``quickpkg`` output is refused: it is made from the installed files,
  which may carry local changes (edited configuration files, files touched
  after install). Portage marks it by the installed-package files CONTENTS
  and COUNTER, which ``emerge --buildpkg`` never writes
  (:attr:`~ipfsbin.binpkg.BinpkgMetadata.origin`).
- ``restricted`` (``allow_restricted``): RESTRICT=bindist or fetch: the
  licence or the distribution terms do not allow passing the binary on.
- ``user-patches`` (``allow_user_patches``): a build with the user's own
  patches is not the ebuild's build. Portage ≥ 3.0.66 records a hash over the
  patches ``eapply_user`` applied as the binpkg's ``USER_PATCHES`` metadata
  (phase-helpers.sh writes ``build-info/USER_PATCHES``); for builds by older
  Portage, and for ``epatch_user`` (EAPI < 6) that records nothing, the
  builder's own ``/etc/portage/patches`` is looked at too: a patch there for
  the package (the directories ``eapply_user`` reads) refuses it.
- ``indexed`` (``skip_indexed = false`` turns it off): a followed index
  already has these very bytes; publishing them again adds nothing. Checked
  after the file is hashed, by :mod:`ipfsbin.builder.share`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin.binpkg import BinpkgMetadata
from ipfsbin.config import ShareConfig
from ipfsbin.descriptor.cpv import split_cpv

__all__ = ["FILTERS", "Skip", "check_filters", "switched_off", "user_patch_files"]

FILTERS: Final = {
    "origin": "allow_quickpkg",
    "restricted": "allow_restricted",
    "user-patches": "allow_user_patches",
    "indexed": "skip_indexed = false",
}
"""Filter name -> the ``[sharing]`` setting that switches it off."""
_PATCH_SUFFIXES: Final = (".patch", ".diff")


@dataclass(frozen=True, kw_only=True)
class Skip:
    """A filter's refusal: its name (a key of :data:`FILTERS`) and why, in words."""

    filter: str
    reason: str

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ValueError(f"unknown filter {self.filter!r}")


def switched_off(config: ShareConfig) -> list[str]:
    """The filters ``config`` switches off."""
    off = {
        "origin": config.allow_quickpkg,
        "restricted": config.allow_restricted,
        "user-patches": config.allow_user_patches,
        "indexed": not config.skip_indexed,
    }
    return [name for name in FILTERS if off[name]]


def _patch_dirs(meta: BinpkgMetadata, config_root: Path) -> Iterator[Path]:
    """The directories ``eapply_user`` reads for this package, most specific first."""
    category, package, version = split_cpv(meta.cpv)
    plain = version.rsplit("-r", 1)[0] if "-r" in version else version
    base = config_root / "etc/portage/patches" / category
    slot = meta.slot
    for name in (f"{package}-{version}", f"{package}-{plain}", package):
        if slot:
            yield base / f"{name}:{slot}"
        yield base / name


def user_patch_files(meta: BinpkgMetadata, config_root: Path) -> list[Path]:
    """The user patches this host's ``/etc/portage/patches`` holds for the package."""
    found: list[Path] = []
    for directory in dict.fromkeys(_patch_dirs(meta, config_root)):
        if directory.is_dir():
            found += sorted(
                f for f in directory.iterdir() if f.suffix in _PATCH_SUFFIXES and f.is_file()
            )
    return found


def check_filters(meta: BinpkgMetadata, config: ShareConfig, *, config_root: Path) -> Skip | None:
    """The first filter that refuses ``meta`` (in the order of :data:`FILTERS`), or None."""
    if not config.allow_quickpkg and meta.origin != "built":
        return Skip(
            filter="origin",
            reason=f"made by quickpkg from the installed {meta.cpv}, not built from source here",
        )
    if not config.allow_restricted and (meta.bindist_restricted or meta.fetch_restricted):
        words = [w for w, on in (("bindist", meta.bindist_restricted),
                                 ("fetch", meta.fetch_restricted)) if on]  # fmt: skip
        return Skip(
            filter="restricted",
            reason=f"RESTRICT={' '.join(words)}: its terms do not allow passing the binary on",
        )
    if not config.allow_user_patches:
        recorded = meta.metadata.get("USER_PATCHES", "").strip()
        if recorded:
            return Skip(
                filter="user-patches",
                reason=f"built with user patches (Portage recorded USER_PATCHES {recorded[:16]}…)",
            )
        patches = user_patch_files(meta, config_root)
        if patches:
            return Skip(
                filter="user-patches",
                reason=f"{patches[0].parent} holds user patches for it ({patches[0].name})",
            )
    return None
