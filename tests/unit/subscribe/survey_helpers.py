"""An index whose entries link real manifests, descriptors and platforms, and a host for it.

Two platforms fit :data:`HOST`; each of :data:`REFUSED` is refused on the axis it is keyed by.
"""

from __future__ import annotations

import dataclasses
import random

from ipfsbin.codec import dagcbor
from ipfsbin.descriptor.compat import Compatibility, HostProfile, check_platform
from ipfsbin.descriptor.model import Platform
from ipfsbin.index import IndexEntry, ProllyTree
from ipfsbin.index.keys import index_key
from ipfsbin.store.memory import MemoryBlockStore
from tests.unit.maintainer.maintainer_helpers import PLATFORM, descriptor, make_manifest

HOST = HostProfile(
    chost=PLATFORM.chost,
    cpu_features=frozenset({"mmx", "sse", "sse2", "sse3"}),
    libc="glibc",
    libc_version="2.40",
    compiler="gcc",
    compiler_version="14.2",
    cflags=PLATFORM.cflags,
    cxxflags=None,
)
FITTING = [PLATFORM, dataclasses.replace(PLATFORM, profile="default/linux/amd64/23.0/split-usr")]
REFUSED = {
    "chost": dataclasses.replace(PLATFORM, chost="aarch64-unknown-linux-gnu", arch="arm64"),
    "isa": dataclasses.replace(
        PLATFORM, cflags=dataclasses.replace(PLATFORM.cflags, features=("avx512f", "sse2"))
    ),
    "compiler": dataclasses.replace(PLATFORM, compiler="clang"),
    "libc": dataclasses.replace(PLATFORM, libc="musl", libc_version="1.2.5"),
}


def fits(platform: Platform) -> Compatibility:
    return check_platform(platform, HOST)


class PlatformIndex:
    """An index whose entries link real manifests, descriptors and platforms.

    ``shared``: the entries of one platform link one manifest (fewer blocks to upload).
    """

    def __init__(
        self, platforms: list[Platform], entries: int, seed: int = 1, *, shared: bool = False
    ) -> None:
        self.store = MemoryBlockStore()
        self.tree = ProllyTree(self.store)
        self.items: dict[str, dagcbor.Value] = {}
        self.manifests: dict[Platform, dagcbor.Value] = {}
        self.shared = shared
        rng = random.Random(seed)
        self.platforms = platforms
        for platform in platforms:
            self.store.put(platform.block[1])
        for i in range(entries):
            self.add(rng.choice(platforms), f"dev-libs/pkg{i:06d}-1.0")
        self.root = self.tree.build(sorted(self.items.items()))

    def add(self, platform: Platform, cpv: str) -> str:
        desc = dataclasses.replace(descriptor(cpv), platform=platform.cid)
        key = index_key(platform.cid, cpv, desc.cid)
        if self.shared and platform in self.manifests:
            self.items[key] = self.manifests[platform]
            return key
        self.store.put(desc.block[1])
        manifest = make_manifest(desc, cpv.encode())
        manifest_cid = self.store.put(manifest.to_block()[1])
        self.items[key] = self.manifests[platform] = IndexEntry.new(manifest_cid).to_dag()
        return key


MORE_REFUSED = [
    dataclasses.replace(PLATFORM, chost="riscv64-unknown-linux-gnu", arch="riscv"),
    dataclasses.replace(PLATFORM, chost="powerpc64le-unknown-linux-gnu", arch="ppc64"),
    dataclasses.replace(
        PLATFORM, cflags=dataclasses.replace(PLATFORM.cflags, features=("avx", "avx2", "sse2"))
    ),
    dataclasses.replace(PLATFORM, libc_version="2.41"),
]
"""Four more refused platforms: with :data:`REFUSED`, eight of ten refused (the benchmark mix)."""
