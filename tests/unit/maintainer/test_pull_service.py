"""``ipfsbin index pull --follow`` as a service: the dist/ files and the loop itself."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipfsbin.cli.main import main
from ipfsbin.maintainer.pull import PullPolicy

DIST = Path(__file__).resolve().parents[3] / "dist"


def _pull_args() -> list[str]:
    (line,) = [
        line
        for line in (DIST / "systemd" / "pull.env").read_text().splitlines()
        if line.startswith("IPFSBIN_PULL_ARGS=")
    ]
    return shlex.split(shlex.split(line.split("=", 1)[1])[0])


def test_both_service_files_run_the_loop_unprivileged_with_the_same_arguments() -> None:
    unit = (DIST / "systemd" / "ipfsbin-pull.service").read_text()
    openrc = (DIST / "openrc" / "ipfsbin-pull").read_text()
    assert "ExecStart=/usr/bin/ipfsbin index pull --follow $IPFSBIN_PULL_ARGS" in unit
    assert "User=ipfsbin" in unit and "CapabilityBoundingSet=\n" in unit
    assert 'command_args="index pull --follow ${IPFSBIN_PULL_ARGS}"' in openrc
    assert 'command_user="${IPFSBIN_USER}:${IPFSBIN_USER}"' in openrc
    checked = subprocess.run(["sh", "-n", str(DIST / "openrc" / "ipfsbin-pull")], check=False)  # noqa: S603, S607
    assert checked.returncode == 0


def test_the_service_command_line_and_the_example_policy_parse() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["index", "pull", "--follow", *_pull_args(), "--help"])
    assert code == 0 and "--policy" in out.getvalue()
    policy = PullPolicy.from_file(DIST / "pull.toml")
    assert policy == PullPolicy(min_builders=2, on_disagreement="majority")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "ipfsbin-pull.service"
    unit.write_text(
        (DIST / "systemd" / "ipfsbin-pull.service")
        .read_text()
        .replace("/usr/bin/ipfsbin", str(Path(sys.executable).with_name("ipfsbin")))
        .replace("/etc/ipfsbin/pull.env", str(DIST / "systemd" / "pull.env"))
    )
    done = subprocess.run(  # noqa: S603 - fixed tool, our file
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
