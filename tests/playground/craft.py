"""Make hostile or broken binpkgs from a good one, for bad-input tests.

``rewrite_gpkg`` rebuilds a GPKG with a valid Manifest (so Portage's own
checks pass) but with metadata keys dropped or extra image members added;
the rewritten parts keep their compression (Portage 3.0.83 decompresses an
uncompressed ``metadata.tar`` with BINPKG_COMPRESS's program and fails).
``drop_xpak_keys`` does the same for an XPAK file.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "drop_xpak_keys",
    "gpkg_parts",
    "replace_signed_metadata",
    "rewrite_gpkg",
    "write_gpkg",
]


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".tar"):
        return data
    if name.endswith(".tar.zst"):
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    mode = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}
    for suffix, module in mode.items():
        if name.endswith(".tar" + suffix):
            return __import__(module).decompress(data)  # type: ignore[no-any-return]
    raise ValueError(f"unsupported compression: {name}")


def _compress(name: str, data: bytes) -> bytes:
    if name.endswith(".tar"):
        return data
    if name.endswith(".tar.zst"):
        return subprocess.run(["zstd", "-cq"], input=data, capture_output=True, check=True).stdout
    mode = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}
    for suffix, module in mode.items():
        if name.endswith(".tar" + suffix):
            return __import__(module).compress(data)  # type: ignore[no-any-return]
    raise ValueError(f"unsupported compression: {name}")


def gpkg_parts(path: Path) -> tuple[str, dict[str, bytes]]:
    """The container's directory name and its members by base name."""
    parts: dict[str, bytes] = {}
    prefix = ""
    with tarfile.open(path, "r:") as tar:
        for member in tar.getmembers():
            prefix, _, base = member.name.rpartition("/")
            handle = tar.extractfile(member)
            parts[base] = handle.read() if handle else b""
    return prefix, parts


def write_gpkg(path: Path, prefix: str, parts: dict[str, bytes]) -> Path:
    """Write a GPKG container: ``gpkg-1`` first, the parts, then a fresh Manifest."""
    lines = []
    for name in ["gpkg-1", *[n for n in parts if n not in ("gpkg-1", "Manifest")]]:
        data = parts.get(name, b"")
        lines.append(
            f"DATA {name} {len(data)} BLAKE2B {hashlib.blake2b(data).hexdigest()} "
            f"SHA512 {hashlib.sha512(data).hexdigest()}"
        )
    manifest = ("\n".join(lines) + "\n").encode()
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in ["gpkg-1", *[n for n in parts if n not in ("gpkg-1", "Manifest")]]:
            _add(tar, f"{prefix}/{name}", parts.get(name, b""))
        _add(tar, f"{prefix}/Manifest", manifest)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _retar(
    data: bytes,
    drop: Iterable[str],
    extra: Iterable[tuple[str, bytes]],
    replace: Mapping[str, bytes] | None = None,
    members: Iterable[tarfile.TarInfo] = (),
) -> bytes:
    dropped = set(drop)
    replacing = dict(replace or {})
    folder = "metadata"
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as dst,
    ):
        for member in src.getmembers():
            if member.name.rpartition("/")[2] in dropped:
                continue
            folder, _, base = member.name.rpartition("/")
            if member.isreg() and base in replacing:
                _add(dst, member.name, replacing.pop(base))
                continue
            handle = src.extractfile(member) if member.isreg() else None
            dst.addfile(member, handle)
        for name, content in extra:
            _add(dst, name, content)
        for base, content in replacing.items():  # keys the package did not have
            _add(dst, f"{folder}/{base}", content)
        for member in members:
            dst.addfile(member, io.BytesIO(b"\0" * member.size) if member.isreg() else None)
    return out.getvalue()


def rewrite_gpkg(
    src: Path,
    dst: Path,
    *,
    drop_metadata: Iterable[str] = (),
    extra_image: Iterable[tuple[str, bytes]] = (),
    set_metadata: Mapping[str, bytes] | None = None,
    extra_members: Iterable[tarfile.TarInfo] = (),
) -> Path:
    """A copy of ``src`` without some metadata keys, with others set, and/or with extra
    image members.

    ``extra_image`` adds regular files; ``extra_members`` adds tar headers as
    given (links, device nodes, FIFOs, modes), regular ones filled with zeros.
    """
    prefix, parts = gpkg_parts(src)
    new: dict[str, bytes] = {}
    for name, data in parts.items():
        if name.startswith("metadata.tar"):
            tar = _retar(_decompress(name, data), drop_metadata, (), set_metadata)
            new[name] = _compress(name, tar)
        elif name.startswith("image.tar"):
            tar = _retar(_decompress(name, data), (), extra_image, members=extra_members)
            new[name] = _compress(name, tar)
        elif name not in ("gpkg-1", "Manifest"):
            new[name] = data
    return write_gpkg(dst, prefix, new)


def drop_xpak_keys(src: Path, dst: Path, keys: Iterable[str]) -> Path:
    """A copy of the XPAK binpkg ``src`` whose xpak segment lacks ``keys``."""
    import portage.xpak

    shutil.copyfile(src, dst)
    tbz2 = portage.xpak.tbz2(str(dst))
    data = tbz2.get_data()
    for key in keys:
        data.pop(key.encode(), None)
    tbz2.recompose_mem(portage.xpak.xpak_mem(data))
    return dst


def replace_signed_metadata(src: Path, dst: Path, key: str, value: str) -> Path:
    """A copy of the signed gpkg ``src`` whose metadata ``key`` now says ``value``.

    The clear-signed Manifest keeps its signature but its digest line of the
    metadata part is fixed to match: every size and digest checks, only the
    signature no longer verifies (what a tamperer without the key can do).
    """
    prefix, parts = gpkg_parts(src)
    name = next(n for n in parts if n.startswith("metadata.tar") and not n.endswith(".sig"))
    tar = _retar(_decompress(name, parts[name]), (), (), {key: value.encode()})
    data = _compress(name, tar)
    line = (
        f"DATA {name} {len(data)} BLAKE2B {hashlib.blake2b(data).hexdigest()} "
        f"SHA512 {hashlib.sha512(data).hexdigest()}"
    )
    manifest = "\n".join(
        line if old.startswith(f"DATA {name} ") else old
        for old in parts["Manifest"].decode().split("\n")
    )
    parts = {**parts, name: data, "Manifest": manifest.encode()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as out:
        for part, content in parts.items():
            _add(out, f"{prefix}/{part}", content)
    return dst
