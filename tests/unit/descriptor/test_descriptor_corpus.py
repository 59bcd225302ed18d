"""Every real make.conf line of tests/data/makeconf normalizes or is refused helpfully."""

from __future__ import annotations

from pathlib import Path

import archspec.cpu
import pytest

from ipfsbin.descriptor import chost_family, normalize_cflags
from ipfsbin.errors import DescriptorError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "makeconf" / "cflags.tsv"
ROWS = [
    tuple(line.split("\t"))
    for line in CORPUS.read_text().splitlines()
    if line and not line.startswith("#")
]
# Names a hint for one architecture must not suggest to users of another.
FOREIGN = {
    "x86_64": ("cortex", "armv8", "power9", "G4"),
    "x86": ("cortex", "armv8", "power9", "G4"),
    "aarch64": ("haswell", "znver", "x86-64", "power9", "G4"),
    "ppc64le": ("haswell", "znver", "x86-64", "cortex", "armv8"),
    "ppc64": ("haswell", "znver", "x86-64", "cortex", "armv8"),
    "ppc": ("haswell", "znver", "x86-64", "cortex", "armv8"),
}


def test_corpus_is_real_and_sourced() -> None:
    assert len(ROWS) >= 200
    assert all(len(row) == 3 and all(row) for row in ROWS)
    sources = {row[0].split(" ", 1)[0] for row in ROWS}
    assert any("gentoo/catalyst" in s for s in sources)
    assert any("wiki.gentoo.org" in s for s in sources)


def _outcome(source: str, chost: str, flags: str) -> tuple[bool, DescriptorError | None]:
    try:
        family = chost_family(chost)
    except DescriptorError as exc:
        return False, exc
    host = archspec.cpu.host()
    # -march=native is resolved when normalizing on the builder itself.
    builder = str(host.name) if family == host.family.name else None
    try:
        # Lines from Clang set-ups (marked in their source) mean what Clang makes of them.
        compiler = "clang" if "(clang" in source else "gcc"
        normalize_cflags(flags, chost=chost, host_target=builder, compiler=compiler)
    except DescriptorError as exc:
        return False, exc
    return True, None


@pytest.mark.parametrize(("source", "chost", "flags"), ROWS, ids=lambda v: str(v)[:60])
def test_line_normalizes_or_is_refused_naming_the_users_flag(
    source: str, chost: str, flags: str
) -> None:
    normalized, error = _outcome(source, chost, flags)
    if normalized:
        return
    assert error is not None
    words = set(flags.split()) | {chost}
    assert any(word in error.message for word in words), (source, error.message)
    assert error.hint, (source, error.message)
    try:
        family = chost_family(chost)
    except DescriptorError:
        return
    for name in FOREIGN[family]:
        assert name not in error.hint, (source, error.hint)


def test_most_lines_of_described_architectures_normalize() -> None:
    described = []
    for source, chost, flags in ROWS:
        try:
            chost_family(chost)
        except DescriptorError:
            continue
        described.append(_outcome(source, chost, flags)[0])
    assert sum(described) / len(described) > 0.9
