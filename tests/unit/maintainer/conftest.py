"""Every maintainer unit test gets its own ipfsbin home."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
