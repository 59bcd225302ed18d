"""``setup-portage --share``: the bashrc trigger block, kept apart from the user's own bashrc."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ipfsbin.serve.setup_portage import PortageSetup, setup_share, undo_setup_portage


def test_hook_block_keeps_the_users_own_bashrc(tmp_path: Path) -> None:
    bashrc = tmp_path / "etc/portage/bashrc"
    bashrc.parent.mkdir(parents=True)
    own = "post_pkg_postinst() { echo mine; }\n"
    bashrc.write_text(own)
    setup = PortageSetup(
        root=tmp_path, base_url="", subscriptions=(), user="ipfsbin", group="ipfsbin",
        home=Path("/var/lib/ipfsbin"), ipfsbin="/usr/bin/ipfsbin", listen="",
    )  # fmt: skip
    assert [c.action for c in setup_share(setup)] == ["updated", "skipped", "skipped"]
    text = bashrc.read_text()
    assert text.startswith(own) and 'runuser -u "ipfsbin"' in text
    assert setup_share(setup)[0].action == "skipped"  # nothing new the second time
    subprocess.run(["bash", "-n", str(bashrc)], check=True)  # noqa: S607
    undone = undo_setup_portage(tmp_path)
    assert [(c.path, c.action) for c in undone] == [(bashrc, "updated")]
    assert bashrc.read_text() == own
