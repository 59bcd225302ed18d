"""The Packages file the binhost serves: Portage's own reader, TIMESTAMP rules, stanzas."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from portage.getbinpkg import PackageIndex

from ipfsbin.catalog import BuildCache, Offer, build_catalog
from ipfsbin.config import ClientPolicy
from ipfsbin.serve.packages import (
    MIN_STEP,
    GzipMembers,
    PackagesFile,
    TimestampBook,
    render_body,
)
from tests.unit.catalog.catalog_helpers import NOW, V3, Index, host_info


def _offers(index: Index) -> tuple[Offer, ...]:
    catalog = build_catalog(
        [index.head()], host=host_info(), policy=ClientPolicy(), cache=BuildCache(index.store),
        now=NOW,
    )  # fmt: skip
    return catalog.offers["k51test"]


def test_portage_reads_what_is_served() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    index.add("b", "app-misc/foo-1", V3)
    index.add("c", "dev-libs/bar-2")
    offers = _offers(index)
    file = PackagesFile.render("k51test", offers, 1_800_000_000)
    assert gzip.decompress(file.gz) == file.text
    assert PackagesFile.render("k51test", offers, 1_800_000_000).gz == file.gz  # stable bytes
    read = PackageIndex(
        allowed_pkg_keys=None,
        default_header_data={},
        default_pkg_data={},
        inherited_keys=["CHOST"],
        translated_keys=[("DESCRIPTION", "DESC"), ("repository", "REPO")],
    )
    read.read(io.StringIO(file.text.decode()))
    assert read.header["TIMESTAMP"] == "1800000000" and read.header["VERSION"] == "0"
    assert "TTL" not in read.header and read.header["PACKAGES"] == "3"
    by_path = {p["PATH"]: p for p in read.packages}
    assert set(by_path) == set(file.offers)
    for offer in offers:
        entry = by_path[offer.path]
        manifest = offer.build.manifest
        assert entry["CPV"] == offer.cpv
        assert entry["SIZE"] == str(manifest.size)
        assert entry["MD5"] == manifest.md5.hex() and entry["SHA1"] == manifest.sha1.hex()
        assert entry["BUILD_ID"] == str(offer.build_id)
        assert entry["BUILD_TIME"] == str(offer.build_time)
        assert entry["MTIME"] == str(offer.build.build_time)
        assert entry["CHOST"] == "x86_64-pc-linux-gnu"


def test_timestamp_kept_for_the_same_list_and_rises_for_a_new_one(tmp_path: Path) -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    first = render_body(_offers(index))
    book = TimestampBook(tmp_path / "stamps.json")
    t1 = book.timestamp("k51test", first, now=1000)
    assert book.timestamp("k51test", first, now=5000) == t1 == 1000
    # a restarted server keeps it
    assert TimestampBook(tmp_path / "stamps.json").timestamp("k51test", first, now=9000) == 1000
    index.add("b", "dev-libs/bar-2")
    second = render_body(_offers(index))
    # a change within Portage's 5-second window still moves TIMESTAMP past it
    t2 = book.timestamp("k51test", second, now=1001)
    assert t2 == 1000 + MIN_STEP
    assert book.timestamp("k51test", first, now=1002) == t2 + MIN_STEP
    assert book.timestamp("k51other", b"", now=3000) == 3000


def test_the_rendered_file_is_header_then_body(tmp_path: Path) -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    offers = _offers(index)
    body = render_body(offers)
    file = PackagesFile.render("k51test", offers, 1000, body=body)
    assert file.text == PackagesFile.render("k51test", offers, 1000).text
    assert file.text.endswith(body) and file.text.startswith(b"IPFSBIN_SUBSCRIPTION: k51test\n")
    assert gzip.decompress(file.gz) == file.text


GOLDEN = Path(__file__).parents[3] / "schema/examples/binhost/Packages"


def golden_packages() -> bytes:
    """The worked example in schema/binhost.md: two builds of one CPV and one other package."""
    index = Index()
    index.add("a", "app-misc/foo-1")
    index.add("b", "app-misc/foo-1", V3)
    index.add("c", "dev-libs/bar-2")
    return PackagesFile.render("k51test", _offers(index), 1_767_229_200).text


def test_golden_example() -> None:
    assert golden_packages() == GOLDEN.read_bytes()


if __name__ == "__main__":  # regenerate: PYTHONPATH=. python tests/unit/serve/test_packages.py
    GOLDEN.write_bytes(golden_packages())


def test_gzip_members_compress_only_the_runs_that_changed() -> None:
    stanzas = [f"CPV: app-misc/p{i}-1\nSIZE: {i}\n\n".encode() for i in range(400)]
    members = GzipMembers()
    gz = members.compress(b"VERSION: 0\n\n", stanzas)
    # Portage reads Packages.gz with GzipFile, which reads every member
    with gzip.GzipFile(fileobj=io.BytesIO(gz)) as read:
        assert read.read() == b"VERSION: 0\n\n" + b"".join(stanzas)
    before = {id(m) for m in members._runs.values()}
    assert len(before) > 5
    stanzas[200] = b"CPV: app-misc/p200-1\nSIZE: 7\n\n"
    gz = members.compress(b"VERSION: 0\n\n", stanzas)
    assert gzip.decompress(gz) == b"VERSION: 0\n\n" + b"".join(stanzas)
    assert len({id(m) for m in members._runs.values()} - before) == 1
    assert GzipMembers().compress(b"VERSION: 0\n\n", []) == gzip.compress(
        b"VERSION: 0\n\n", compresslevel=1, mtime=0
    )


def test_gzip_members_kept_across_files_give_the_bytes_of_a_fresh_compression() -> None:
    header = b"VERSION: 0\n\n"
    stanzas = [f"CPV: app-misc/p{i}-1\nSIZE: {i}\n\n".encode() for i in range(400)]
    members = GzipMembers()
    for step in range(5):
        assert members.compress(header, stanzas) == GzipMembers().compress(header, stanzas)
        # fewer stanzas, some new: what is kept of the old ones is dropped on the way
        stanzas = stanzas[::2] + [f"CPV: app-misc/s{step}-1\n\n".encode()]
    assert len(members._ends) <= 2 * len(stanzas) + 2


def test_file_rendered_from_stanzas_is_the_same_text() -> None:
    index = Index()
    index.add("a", "app-misc/foo-1")
    index.add("b", "app-misc/foo-1", V3)
    index.add("c", "dev-libs/bar-2")
    offers = _offers(index)
    stanzas = [render_body(offers[:2]), render_body(offers[2:])]
    file = PackagesFile.render("k51test", offers, 1000, stanzas=stanzas, body=b"".join(stanzas))
    assert file.text == PackagesFile.render("k51test", offers, 1000).text
    assert gzip.decompress(file.gz) == file.text
