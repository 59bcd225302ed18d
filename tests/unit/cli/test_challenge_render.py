"""The challenge report as ``guix challenge`` prints it, and its verdicts."""

from __future__ import annotations

from ipfsbin.cli.challenge import render_challenge
from ipfsbin.maintainer.challenge import ChallengeItem, ChallengeReport

A, B = bytes(32), bytes([1]) * 32
KEY = "ynsb7bke27ac6nmawb6a7geh6a/dev-libs/foo/1.0/4oymiquy7qobjgx36tejs35zeq"


def _item(cpv: str, builders: dict[str, bytes], local: bytes | None = None) -> ChallengeItem:
    return ChallengeItem(cpv=cpv, key=KEY, builders=tuple(builders.items()), local=local)


def test_verdicts() -> None:
    assert _item("a/b-1", {"x": A, "y": A}).verdict == "identical"
    assert _item("a/b-1", {"x": A}, local=A).verdict == "identical"
    assert _item("a/b-1", {"x": A, "y": B}).verdict == "differing"
    assert _item("a/b-1", {"x": A}, local=B).verdict == "differing"
    assert _item("a/b-1", {"x": A}).verdict == "inconclusive"
    assert _item("a/b-1", {}, local=A).verdict == "inconclusive"


def test_exit_code_follows_differences() -> None:
    assert ChallengeReport.of([_item("a/b-1", {"x": A, "y": A})]).exit_code == 0
    assert ChallengeReport.of([_item("a/b-1", {"x": A, "y": B})]).exit_code == 2
    assert ChallengeReport.of([]).exit_code == 0


def test_text_lists_differing_items_then_the_summary() -> None:
    report = ChallengeReport.of(
        [
            _item("dev-libs/foo-1.0", {"k51x": A}, local=B),
            _item("dev-libs/bar-1.0", {"k51x": A, "k51y": A}),
            _item("dev-libs/baz-1.0", {"k51x": A}),
        ]
    )
    assert render_challenge(report.to_json()) == "\n".join(
        [
            "dev-libs/foo-1.0 contents differ:",
            f"  build: {KEY}",
            f"  local hash: {B.hex()}",
            f"  k51x: {A.hex()}",
            "",
            "3 items were analyzed:",
            "  - 1 (33.3%) were identical",
            "  - 1 (33.3%) differed",
            "  - 1 (33.3%) were inconclusive",
        ]
    )
    verbose = render_challenge(report.to_json(), verbose=True)
    assert "dev-libs/bar-1.0 contents identical:" in verbose
    assert "dev-libs/baz-1.0 inconclusive:" in verbose


def test_an_empty_report() -> None:
    assert render_challenge(ChallengeReport.of([]).to_json()) == "\n".join(
        [
            "0 items were analyzed:",
            "  - 0 (0.0%) were identical",
            "  - 0 (0.0%) differed",
            "  - 0 (0.0%) were inconclusive",
        ]
    )
