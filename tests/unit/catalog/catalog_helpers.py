"""An in-memory followed index and a host, for the catalog and binhost unit tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from ipfsbin.catalog import FollowedHead
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.compat import UseConfig
from ipfsbin.descriptor.isa import target_cpu_features
from ipfsbin.descriptor.model import Descriptor, Platform
from ipfsbin.host.profile import HostInfo
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.freshness import check_freshness
from ipfsbin.trust.signing import Role
from tests.unit.maintainer.maintainer_helpers import (
    BUILDER_X,
    BUILDER_Y,
    PLATFORM,
    T0,
    make_manifest,
    publish,
)

__all__ = ["MUSL", "NOW", "V3", "V4", "Index", "host_info"]

NOW = T0 + 3600
V3 = dataclasses.replace(
    PLATFORM,
    cflags=dataclasses.replace(
        PLATFORM.cflags, features=tuple(sorted(target_cpu_features("x86_64_v3")))
    ),
)
V4 = dataclasses.replace(
    PLATFORM,
    cflags=dataclasses.replace(
        PLATFORM.cflags, features=tuple(sorted(target_cpu_features("x86_64_v4")))
    ),
)
MUSL = dataclasses.replace(PLATFORM, chost="x86_64-pc-linux-musl", libc="musl", libc_version="1.2")


def host_info(**change: Any) -> HostInfo:
    values: dict[str, Any] = {
        "chost": "x86_64-pc-linux-gnu",
        "accept_chosts": (),
        "arch": "amd64",
        "profile": "default/linux/amd64/23.0",
        "cflags_raw": "-O2",
        "cxxflags_raw": "-O2",
        "target": "x86_64_v3",
        "cpu_features": target_cpu_features("x86_64_v3"),
        "cflags": PLATFORM.cflags,
        "cxxflags": None,
        "libc": "glibc",
        "libc_version": "2.39",
        "compiler": "gcc",
        "compiler_version": "13.2.1",
        "use": (),
        "installed": {"dev-libs/libfoo": {"0": "1"}},
        "sources": {"libc": "vardb", "compiler": "vardb"},
        "use_reader": lambda cps: {
            cp: UseConfig(use=frozenset({"ssl"}), iuse=frozenset({"ssl"})) for cp in cps
        },
    }
    values.update(change)
    return HostInfo(**values)


def _descriptor(cpv: str, platform: Platform, **change: Any) -> Descriptor:
    values: dict[str, Any] = {
        "platform": platform.cid,
        "cpv": cpv,
        "slot": "0",
        "subslot": "0",
        "repository": "gentoo",
        "eapi": "8",
        "use": ("ssl",),
        "iuse": ("ssl",),
        "deps": (),
        "requires": (),
    }
    values.update(change)
    return Descriptor(**values)


class Index:
    def __init__(self) -> None:
        self.store = MemoryBlockStore()
        self.entries: dict[str, IndexEntry] = {}
        self.manifests: dict[str, CID] = {}

    def add(
        self,
        name: str,
        cpv: str,
        platform: Platform = PLATFORM,
        *,
        builders: tuple[Any, ...] = (BUILDER_X,),
        build_time: int = T0,
        state: str = "ok",
        **change: Any,
    ) -> str:
        self.store.put_many([platform.block])
        desc = _descriptor(cpv, platform, **change)
        data = f"{name} bytes".encode()
        manifest = make_manifest(desc, data)
        portage = {**manifest.portage, "BUILD_TIME": str(build_time)}
        manifest = dataclasses.replace(manifest, portage=portage)
        attestations = []
        for builder in builders:
            published = publish(self.store, cpv, data, builder, desc=desc, manifest=manifest)
            assert published.attestation is not None
            attestations.append(published.attestation.cid)
        if not builders:
            publish(self.store, cpv, data, None, desc=desc, manifest=manifest)
        key = index_key(platform.cid, cpv, desc.cid)
        entry = IndexEntry.new(manifest.to_block()[0], attestations)
        self.entries[key] = entry.yanked("bad") if state == "yanked" else entry
        self.manifests[name] = entry.manifest
        return key

    def head(
        self,
        *,
        now: int = NOW,
        commit_expires: int = T0 + 7 * 86400,
        root_expires: int = T0 + 365 * 86400,
        allow_stale: bool = False,
        **change: Any,
    ) -> FollowedHead:
        """The head as read by ``read_heads``: freshness is the follower's, at ``now``."""
        root = ProllyTree(self.store).build(
            sorted((k, e.to_dag()) for k, e in self.entries.items())
        )
        values: dict[str, Any] = {
            "name": "k51test",
            "head": root,
            "height": 3,
            "index_root": root,
            "commit_time": T0,
            "freshness": check_freshness(
                head_expires=commit_expires,
                root_expires=root_expires,
                now=now,
                allow_stale=allow_stale,
            ),
            "root_version": 1,
            "builders": Role.of("builders", [BUILDER_X.key_id, BUILDER_Y.key_id], 1),
            "accepted_at": T0,
            "checked_at": T0,
            "error": None,
        }
        values.update(change)
        return FollowedHead(**values)
