"""Bad input to ``feed``, ``index pull`` and ``challenge``: one line, nothing done."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from ipfsbin.cli.main import main


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path / "home"))
    # no daemon answers here: a command that got past its input checks would say so
    monkeypatch.setenv("IPFSBIN_API", "/ip4/127.0.0.1/tcp/9")
    return tmp_path / "home"


def _run(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


def test_feed_append_refuses_what_is_not_a_cid() -> None:
    code, err = _run("feed", "append", "not-a-cid")
    assert code == 1
    assert (
        err.splitlines()[0]
        == "ipfsbin: error: 'not-a-cid' is not a CID: " + err.split(": ", 3)[3].splitlines()[0]
    )
    assert len(err.splitlines()) <= 2


def test_index_pull_refuses_a_bad_policy_before_reading_any_feed(tmp_path: Path) -> None:
    policy = tmp_path / "pull.toml"
    policy.write_text('on_disagreement = "flip-a-coin"\n')
    code, err = _run("index", "pull", "k51whatever", "--policy", str(policy))
    assert code == 1
    assert err.startswith("ipfsbin: error: on_disagreement is 'flip-a-coin', expected one of ")
    policy.write_text("min_builders = [\n")
    code, err = _run("index", "pull", "k51whatever", "--policy", str(policy))
    assert code == 1 and "is not valid TOML" in err


def test_challenge_refuses_a_bad_atom() -> None:
    code, err = _run("challenge", "not an atom", "--pkgdir", "/nonexistent")
    assert code == 2
    assert "is not an atom" in err
