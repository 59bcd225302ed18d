"""`ipfsbin host` in words: every field the JSON carries reaches the reader."""

from __future__ import annotations

from ipfsbin.cli.client import _render_host
from tests.unit.catalog.catalog_helpers import host_info


def test_host_in_words_shows_cpu_features_and_normalized_flags() -> None:
    text = _render_host(host_info().to_json())
    cpu = next(line for line in text.splitlines() if line.startswith("CPU "))
    assert "x86_64_v3" in cpu and "avx2" in cpu.split()
    normalized = next(line for line in text.splitlines() if "normalized" in line)
    assert "-O2" in normalized and "ISA features" in normalized
    assert "stack protector strong, fortify 2" in normalized
    assert "dev-libs/libfoo  :0/1" in text
