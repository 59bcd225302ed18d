"""The end-to-end demo behind ``scripts/demo`` (run that; it prepares the machine)."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import DAG_CBOR
from ipfsbin.kubo.node import connect, start_user_node, stop_user_node


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


@contextmanager
def demo_home(keep: bool) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="ipfsbin-demo-"))
    os.environ["IPFSBIN_HOME"] = str(home)
    try:
        yield home
    finally:
        if keep:
            print(f"demo home kept at {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def store_and_read_back() -> None:
    with connect() as client:
        step("storing a DAG-CBOR object and reading it back")
        value = {"type": "ipfsbin/demo/1", "hello": "gentoo", "sizes": [1, 2, 3]}
        local_cid, data = dagcbor.encode_block(value)
        kubo_cid = client.block_put(data, codec=DAG_CBOR)
        assert kubo_cid == local_cid, f"Kubo computed {kubo_cid}, we computed {local_cid}"
        back = dagcbor.decode_block(local_cid, client.block_get(local_cid))
        assert back == value
        print(f"    {local_cid} (same CID computed locally and by Kubo)")

        step("adding a file (CIDv1, raw leaves) and reading it back")
        payload = os.urandom(3 * 1024 * 1024 + 17)
        added = client.add(payload, name="demo.bin")
        fetched = client.cat_bytes(added.cid)
        assert hashlib.sha256(fetched).digest() == hashlib.sha256(payload).digest()
        print(f"    {added.cid}: {added.size} bytes back intact")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo's ipfsbin home")
    args = parser.parse_args()
    with demo_home(args.keep) as home:
        step(f"starting a managed Kubo node in {home}")
        status = start_user_node()
        print(f"    API {status.api}, peer {status.peer_id}, Kubo {status.kubo_version}")
        try:
            store_and_read_back()
        finally:
            step("stopping the node")
            stop_user_node()
    step("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
