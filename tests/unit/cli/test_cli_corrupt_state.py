"""A damaged state file gives one error line and a hint, and nothing else is touched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ipfsbin.cli.main import main
from ipfsbin.codec import dagcbor
from ipfsbin.subscribe import SubscriptionStore
from ipfsbin.trust.keys import KeyStore
from ipfsbin.trust.state import RootPin

NAME = "k51qzi5uqu5dhabw2t8s7j8fyjgos085fki9x6h2g9zpldw6hof21f376urkog"
ROOT = dagcbor.encode_block({"root": 1})[0]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    monkeypatch.setenv("IPFSBIN_API", "/ip4/127.0.0.1/tcp/9")  # nothing listens there
    monkeypatch.delenv("IPFSBIN_VERBOSE", raising=False)
    KeyStore(tmp_path / "keys").generate("m")
    workspace = tmp_path / "index" / "default"
    workspace.mkdir(parents=True)
    (workspace / "notes").write_text("a maintainer's files\n")
    return tmp_path


def garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database, just bytes\n" * 200)


def truncated_subscriptions(path: Path) -> None:
    with SubscriptionStore(path) as state:
        for i in range(200):  # enough rows for several pages
            name = f"k51qzi5uqu5dhabw2t8s7j8fyjgos085fki9x6h2g9zpldw6hof21f376ur{i:04d}"
            try:
                state.add(name, RootPin(cid=ROOT), ROOT, now=float(i))
            except Exception:  # noqa: BLE001 - not every made-up name is a valid key
                continue
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def subscribed_then(damage: Callable[[Path], None], what: str) -> Callable[[Path], Path]:
    def prepare(home: Path) -> Path:
        with SubscriptionStore(home / "subscriptions.sqlite") as state:
            state.add(NAME, RootPin(cid=ROOT), ROOT, now=0.0)
        damage(home / what)
        return home / what

    return prepare


def state_file(damage: Callable[[Path], None], what: str) -> Callable[[Path], Path]:
    def prepare(home: Path) -> Path:
        damage(home / what)
        return home / what

    return prepare


def snapshot(home: Path, damaged: Path) -> dict[str, str]:
    """Every file but the damaged one (and SQLite's side files), by content hash."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith(damaged.name)
    }


CASES = [
    ("status", state_file(garbage, "subscriptions.sqlite"), ["status"], "subscription state"),
    ("sync", state_file(garbage, "subscriptions.sqlite"), ["sync"], "subscription state"),
    (
        "status-truncated",
        state_file(truncated_subscriptions, "subscriptions.sqlite"),
        ["status"],
        "subscription state",
    ),
    (
        "subscribe",
        state_file(garbage, "subscriptions.sqlite"),
        ["subscribe", NAME, "--root", str(ROOT)],
        "subscription state",
    ),
    (
        "gateway-blocks",
        subscribed_then(garbage, "gateway-blocks.sqlite"),
        ["sync", "--gateway", "http://127.0.0.1:9"],
        "gateway block file",
    ),
    (
        "unsubscribe-blocks",
        subscribed_then(garbage, "gateway-blocks.sqlite"),
        ["unsubscribe", NAME],
        "gateway block file",
    ),
    (
        "workspace",
        state_file(garbage, "index/default/state.sqlite"),
        ["index", "status"],
        "index state",
    ),
]


@pytest.mark.parametrize(
    ("prepare", "argv", "what"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_damaged_state_file_is_one_line_and_a_hint(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    prepare: Callable[[Path], Path],
    argv: list[str],
    what: str,
) -> None:
    damaged = prepare(home)
    before = snapshot(home, damaged)
    damaged_bytes = damaged.read_bytes()
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 2, captured.err
    assert err[0].startswith(f"ipfsbin: error: {what} {damaged} is damaged"), err[0]
    assert err[1].startswith("ipfsbin: hint: move it aside"), err[1]
    assert "Traceback" not in captured.err + captured.out
    # nothing is repaired, moved or deleted behind the user's back: keys and workspace stay
    assert snapshot(home, damaged) == before
    assert damaged.read_bytes() == damaged_bytes
