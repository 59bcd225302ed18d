"""The systemd unit and OpenRC script of ``ipfsbin mirror`` (dist/): valid, and their
command line is one the CLI accepts."""

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

DIST = Path(__file__).resolve().parents[3] / "dist"
UNIT = DIST / "systemd" / "ipfsbin-mirror.service"
ENV = DIST / "systemd" / "mirror.env"
OPENRC = DIST / "openrc" / "ipfsbin-mirror"


def _env_args() -> list[str]:
    for line in ENV.read_text().splitlines():
        if line.startswith("IPFSBIN_MIRROR_ARGS="):
            return shlex.split(shlex.split(line.split("=", 1)[1])[0])
    raise AssertionError("mirror.env sets no IPFSBIN_MIRROR_ARGS")


def test_the_unit_runs_the_mirror_loop_unprivileged() -> None:
    text = UNIT.read_text()
    assert "ExecStart=/usr/bin/ipfsbin mirror --follow $IPFSBIN_MIRROR_ARGS" in text
    assert "User=ipfsbin" in text and "NoNewPrivileges=yes" in text
    assert "CapabilityBoundingSet=\n" in text
    assert 'command_args="mirror --follow ${IPFSBIN_MIRROR_ARGS}"' in OPENRC.read_text()
    assert 'command_user="${IPFSBIN_USER}:${IPFSBIN_USER}"' in OPENRC.read_text()


def test_the_command_line_of_the_services_parses() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["mirror", "--follow", *_env_args(), "--help"])
    assert code == 0 and "--cluster" in out.getvalue()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    ipfsbin = Path(sys.executable).with_name("ipfsbin")
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text()
        .replace("/usr/bin/ipfsbin", str(ipfsbin))
        .replace("/etc/ipfsbin/mirror.env", str(ENV))
    )
    done = subprocess.run(  # noqa: S603 - fixed tool, our file
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_openrc_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n", str(OPENRC)], capture_output=True, text=True, check=False)  # noqa: S603, S607
    assert done.returncode == 0, done.stderr
