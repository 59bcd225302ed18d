# ruff: noqa: E402
"""Wrote the state files next to it with the code of commit 76b841b, before one schema scheme.

Kept as the record of how they were made; it imports that commit's module
paths, so it runs only in a checkout of it:
``git worktree add /tmp/old 76b841b && cd /tmp/old && python generate.py DIR``.
tests/unit/test_sqlite.py opens the files with today's code.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

out = Path(sys.argv[1])
home = Path(tempfile.mkdtemp())
os.environ["IPFSBIN_HOME"] = str(home)

from ipfsbin.maintainer.pins import NoPins
from ipfsbin.subscribe.gateway import SqliteBlockStore

from ipfsbin.codec import dagcbor
from ipfsbin.maintainer import chain
from ipfsbin.store.base import MemoryBlockStore
from ipfsbin.subscribe.state import AcceptedHead, SubscriptionStore
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.state import RootPin

key = SigningKey.from_seed(bytes([7]) * 32)
store = MemoryBlockStore()
ws, _ = chain.init_index(
    "default",
    store=store,
    pins=NoPins(),
    keys=[("m0", key)],
    maintainers=(),
    threshold=1,
    builders=[SigningKey.from_seed(bytes([8]) * 32).key_id],
    now=1_700_000_000,
)
root = ws.root
ws.close()
shutil.copy(home / "index" / "default" / "state.sqlite", out / "workspace-before-versions.sqlite")


def cid(n):
    return dagcbor.encode_block({"n": n})[0]


subs = SubscriptionStore(home / "subs.sqlite")
name = key.key_id
subs.add(name, RootPin(cid=root), root, now=1_700_000_000.0)
blocks = [cid(1), cid(2), cid(3)]
subs.add_pending(name, blocks)
subs.record_accepted(
    name,
    AcceptedHead(
        head=cid(1), head_envelope=cid(2), height=1, index_root=cid(3), sequence=1, roots=(root,)
    ),
    expect_head=None,
    now=1_700_000_100.0,
    keep=blocks,
    release=[],
)
subs.close()
shutil.copy(home / "subs.sqlite", out / "subscriptions-v2.sqlite")

local = SqliteBlockStore(home / "blocks.sqlite")
local.put(b"\xa1an\x01")
local.close()
shutil.copy(home / "blocks.sqlite", out / "gateway-blocks-before-versions.sqlite")
print(name, root, [str(c) for c in blocks])
