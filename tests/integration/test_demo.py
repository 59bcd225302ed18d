"""`scripts/demo`, the README's first command, run end to end as a user runs it.

It must keep telling the whole story: a builder's emerge, publishing,
the signed index over IPNS, a client that follows it, and the client's own
Portage installing the builder's binaries through `ipfsbin serve`, with
`ipfsbin explain` naming why other builds were refused.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).parents[2]


def test_demo_tells_the_whole_story() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPFSBIN_HOME")}
    done = subprocess.run(  # noqa: S603 - the project's own script
        [str(ROOT / "scripts/demo")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    steps = [line[4:] for line in out.splitlines() if line.startswith("==> ")]
    for expected in (
        "building small real ebuilds with emerge --buildpkg",
        "the builder makes a key and publishes its binpkgs",
        "the client subscribes under the pinned trust root and syncs",
        "ipfsbin serve: Portage's binhost protocol over the verified catalog",
        "emerge --getbinpkgonly installs the builder's binaries through the shim",
        "a USE refusal: the usetest built with USE=-bar is never listed",
    ):
        assert any(step.startswith(expected) for step in steps), (expected, steps)
    assert "sha256 matches" in out
    assert "Traceback" not in out + done.stderr
    # Portage fetched and merged the binaries the builder made, through the shim
    assert out.count(">>> Emerging binary") >= 3, out[-4000:]
    assert "sub-slot:" in out and "dev-libs/libfoo:0/1" in out
    assert "use:" in out
