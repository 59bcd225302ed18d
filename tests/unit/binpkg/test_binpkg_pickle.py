"""Binpkg values cross process boundaries (share checks builds in worker processes)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import MappingProxyType

from ipfsbin.binpkg import BinpkgInfo, BinpkgMetadata, Compiler, FileIdentity


def _metadata() -> BinpkgMetadata:
    words = ("use", "iuse", "iuse_effective", "keywords", "features")
    text = {
        f.name: ""
        for f in BinpkgMetadata.__dataclass_fields__.values()
        if f.type == "str" and f.name not in ("cpv", "chost")
    }
    return BinpkgMetadata(
        path=Path("/var/cache/binpkgs/app-misc/hello/hello-1-1.gpkg.tar"),
        format="gpkg",
        cpv="app-misc/hello-1",
        chost="x86_64-pc-linux-gnu",
        **text,
        **{name: ("a", "b") for name in words},
        build_time=1700000000,
        build_id=1,
        built_from_source=True,
        bindist_restricted=False,
        fetch_restricted=False,
        metadata={"CHOST": "x86_64-pc-linux-gnu", "PF": "hello-1"},
        identity=FileIdentity(device=1, inode=2, size=3, mtime_ns=4, ctime_ns=5),
    )


def test_metadata_and_info_survive_pickling_with_a_read_only_mapping() -> None:
    meta = _metadata()
    info = BinpkgInfo(
        **{f: getattr(meta, f) for f in BinpkgMetadata.__dataclass_fields__},
        size=3,
        sha256="0" * 64,
        md5="1" * 32,
        sha1="2" * 40,
        compiler=Compiler(family="gcc", version="14.2.0"),
        compilers_seen=(),
        elf_comments=(),
    )
    for value in (meta, info):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and type(copy) is type(value)
        assert isinstance(copy.metadata, MappingProxyType)
        assert dict(copy.metadata) == dict(value.metadata)
        assert copy.identity == value.identity
