"""The CLI's error contract: one line (plus a hint) on stderr, exit 1 for failures, 2 for usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipfsbin.cli.main import main
from ipfsbin.errors import KuboUnavailableError
from ipfsbin.kubo.daemon import connect


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    monkeypatch.delenv("IPFSBIN_API", raising=False)
    monkeypatch.delenv("IPFSBIN_VERBOSE", raising=False)
    return tmp_path


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


def test_a_failure_is_one_error_line_and_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "log"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 2
    assert err[0].startswith("ipfsbin: error: no index named 'default'")
    assert err[1].startswith("ipfsbin: hint: ")


def test_no_daemon_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["index", "republish", "k51qzi5uqu5dhabw2t8s7j8fyjgos085fki9x6h2g9zpldw6hof21f376urkog"]
        )
        == 1
    )
    err = _lines(capsys.readouterr().err)
    assert err[0].startswith("ipfsbin: error: no Kubo daemon")
    assert "ipfsbin node start" in err[1]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["no-such-command"], "No such command 'no-such-command'"),
        (["sync", "--interval", "soon"], "'soon' is not a duration"),
        (["index", "commit"], "Missing option '-m' / '--message'"),
    ],
)
def test_a_bad_command_line_is_one_error_line_and_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 2
    assert err[0].startswith("ipfsbin: error: ") and fragment in err[0]
    assert err[1].startswith("ipfsbin: hint: see `ipfsbin") and err[1].endswith("--help`")


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ipfsbin ")
    assert main(["node", "--help"]) == 0


def test_json_output_is_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is False and status["pid"] is None
    assert main(["node", "stop", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": False}


def test_a_malformed_api_address_is_a_kubo_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPFSBIN_API", "localhost:5001")
    with pytest.raises(KuboUnavailableError, match="cannot use the Kubo API address") as caught:
        connect()
    assert caught.value.hint is not None and "IPFSBIN_API" in caught.value.hint


@pytest.mark.parametrize("url", ["ftp://mirror.example/", "mirror.example", "http://"])
def test_serve_refuses_a_gateway_that_is_not_an_http_url(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--gateway", url]) == 1
    err = _lines(capsys.readouterr().err)
    assert err[0] == f"ipfsbin: error: --gateway {url!r} is not an http(s) URL"
    assert err[1].startswith("ipfsbin: hint: give the trustless gateway's base URL")
