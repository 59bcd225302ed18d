"""A real shim process offering given files without an index or a Portage host.

``python -m tests.integration.offer_shim SPEC PORT`` runs the production
app (:func:`ipfsbin.serve.app.create_app`), byte source
(:func:`ipfsbin.serve.run.byte_source`: the repo's block files when
``IPFSBIN_REPO`` names them, else the node's gateway) and uvicorn on the
shim's own loop, over a snapshot of offers made from SPEC (a JSON list of
``{"cid", "data_file", "path"}``: the binpkg's UnixFS CID, a file with its
bytes for the manifest's digests, the PATH it is offered under in the
subscription ``test``). A withdrawn build stops being offered, as the
publisher drops it from ``Packages``: its PATH answers 404.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from ipfsbin.catalog.build import Offer
from ipfsbin.catalog.cache import Build
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.model import Descriptor, Package
from ipfsbin.manifest import BuildHost, Manifest
from ipfsbin.serve.packages import PackagesFile
from tests.unit.maintainer.maintainer_helpers import PLATFORM

SUBSCRIPTION = "test"


def offer(i: int, cid: CID, data: bytes, path: str) -> Offer:
    cpv = f"app-misc/pkg{i}-1"
    desc = Descriptor(
        platform=PLATFORM.cid, cpv=cpv, slot="0", subslot="0", repository="test", eapi="8",
        use=(), iuse=(), deps=(), requires=(),
    )  # fmt: skip
    manifest = Manifest.create(
        descriptor=desc.cid, binpkg=cid, format="gpkg", size=len(data),
        sha256=hashlib.sha256(data).digest(), sha1=hashlib.sha1(data).digest(),  # noqa: S324
        md5=hashlib.md5(data).digest(),  # noqa: S324
        portage={"CPV": cpv, "EAPI": "8", "SLOT": "0", "BUILD_TIME": "1767225600"},
        build=BuildHost(chost=PLATFORM.chost),
    )  # fmt: skip
    build = Build(
        manifest_cid=manifest.to_block()[0], manifest=manifest,
        package=Package(descriptor=desc, platform=PLATFORM), agreeing=(),
    )  # fmt: skip
    return Offer(
        subscription=SUBSCRIPTION, build=build, rank=1, build_id=i + 1, build_time=1767225600,
        path=path,
    )  # fmt: skip


class _Snapshot:
    def __init__(self, files: dict[str, PackagesFile]) -> None:
        self.files = files


class OfferPublisher:
    """What the app asks of a publisher: the snapshot, and where a build is withdrawn."""

    def __init__(self, offers: list[Offer]) -> None:
        self.snapshot = _Snapshot({SUBSCRIPTION: PackagesFile.render(SUBSCRIPTION, offers, 1)})

    def mark_undeliverable(self, manifest: CID, reason: str) -> None:
        offers = self.snapshot.files[SUBSCRIPTION].offers
        for path in [p for p, o in offers.items() if o.build.manifest_cid == manifest]:
            del offers[path]
        sys.stderr.write(f"withdrawn {manifest}: {reason}\n")
        sys.stderr.flush()


def main(spec_path: str, port: int) -> None:
    import os

    import uvicorn

    from ipfsbin.kubo.client import KuboClient
    from ipfsbin.kubo.daemon import API_ENV
    from ipfsbin.serve.app import Downloads, create_app
    from ipfsbin.serve.run import LOOP, ServeOptions, byte_source, setup_logging

    setup_logging()
    spec = json.loads(Path(spec_path).read_text())
    offers = [
        offer(i, CID.from_text(f["cid"]), Path(f["data_file"]).read_bytes(), f["path"])
        for i, f in enumerate(spec)
    ]
    client = KuboClient.from_multiaddr(os.environ[API_ENV], timeout=60.0)
    source, where = byte_source(client, ServeOptions())
    sys.stderr.write(f"binpkg bytes from {where}\n")
    app = create_app(OfferPublisher(offers), source, Downloads())  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop=LOOP,
                http="httptools")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
