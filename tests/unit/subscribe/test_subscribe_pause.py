"""Pause points: the marker file names the process, and removing it ends the wait."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ipfsbin.pause import pause_point


def test_no_pause_without_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("IPFSBIN_PAUSE_AT", raising=False)
    monkeypatch.setenv("IPFSBIN_PAUSE_FILE", str(tmp_path / "paused"))
    pause_point("before-keep")
    assert not (tmp_path / "paused").exists()


def test_removing_the_marker_ends_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    marker = tmp_path / "paused"
    monkeypatch.setenv("IPFSBIN_PAUSE_AT", "before-keep")
    monkeypatch.setenv("IPFSBIN_PAUSE_FILE", str(marker))
    monkeypatch.setenv("IPFSBIN_PAUSE_SECONDS", "60")
    seen: list[str] = []

    def release() -> None:
        while not marker.exists():
            time.sleep(0.01)
        seen.append(marker.read_text())
        marker.unlink()

    helper = threading.Thread(target=release)
    helper.start()
    start = time.monotonic()
    pause_point("before-keep")
    helper.join()
    assert seen == [f"{os.getpid()}\n"]
    assert time.monotonic() - start < 30


def test_the_pause_ends_after_its_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    marker = tmp_path / "paused"
    monkeypatch.setenv("IPFSBIN_PAUSE_AT", "after-record")
    monkeypatch.setenv("IPFSBIN_PAUSE_FILE", str(marker))
    monkeypatch.setenv("IPFSBIN_PAUSE_SECONDS", "0.2")
    start = time.monotonic()
    pause_point("after-record")
    assert time.monotonic() - start >= 0.2
    assert marker.exists()  # left for the test to read
