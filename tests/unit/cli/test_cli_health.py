"""Bad input to ``weather`` and ``index commit --lifetime``: one line, exit 2, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.cli.main import main


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["weather", "not an atom"], "'not an atom' is not a Portage atom"),
        (["weather", "@world", "dev-libs/"], "'dev-libs/' is not a Portage atom"),
        (["weather", "--provider-timeout", "0"], "must be above 0"),
    ],
)
def test_weather_refuses_bad_input_before_any_work(
    argv: list[str], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    monkeypatch.delenv("IPFSBIN_API", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipfsbin: error: ") and fragment in err
    assert "ipfsbin: hint: see `ipfsbin weather --help`" in err
    assert list(tmp_path.iterdir()) == []


def test_commit_lifetime_must_be_a_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    argv = ["index", "commit", "-m", "x", "--key", "k", "--lifetime", "forever"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipfsbin: error: ")
    assert "--lifetime is 'forever', expected a duration" in err
    assert list(tmp_path.iterdir()) == []
