"""setup-portage writes one binrepos.conf entry and the service files; --undo removes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ipfsbin.errors import ServeError
from ipfsbin.serve.setup_portage import PortageSetup, setup_portage, undo_setup_portage

NAME = "k51qzi5uqu5dk17tf3l1dj0f2uznh7t7kmb6p8lyjihvnfen3pwbt54bwyb64c"


def _setup(root: Path, subscriptions: tuple[str, ...] = (NAME,)) -> PortageSetup:
    return PortageSetup(
        root=root,
        base_url="http://127.0.0.1:7711",
        subscriptions=subscriptions,
        user="nobody",
        group="nogroup",
        home=Path("/var/lib/ipfsbin"),
        ipfsbin="/usr/bin/ipfsbin",
        listen="127.0.0.1:7711",
    )


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_directory_layout_and_undo(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/portage/binrepos.conf").mkdir(parents=True)
    (tmp_path / "etc/portage/binrepos.conf/gentoobinhost.conf").write_text("[gentoo]\n")
    before = _tree(tmp_path)
    changes = setup_portage(_setup(tmp_path))
    actions = {str(c.path.relative_to(tmp_path)): c.action for c in changes}
    assert actions == {
        "etc/portage/binrepos.conf/ipfsbin.conf": "created",
        "etc/systemd/system/ipfsbin-serve.service": "created",
        "etc/systemd/system/ipfsbin-follow.service": "created",
        "etc/init.d/ipfsbin-serve": "skipped",
        "etc/init.d/ipfsbin-follow": "skipped",
        "etc/systemd/system/ipfsbin-gc.service": "created",
        "etc/systemd/system/ipfsbin-gc.timer": "created",
        "etc/cron.daily/ipfsbin-gc": "skipped",
    }
    conf = (tmp_path / "etc/portage/binrepos.conf/ipfsbin.conf").read_text()
    assert f"sync-uri = http://127.0.0.1:7711/{NAME}" in conf
    assert conf.count("\nverify-signature = false") == 1 and "ipfsbin carries the trust" in conf
    unit = (tmp_path / "etc/systemd/system/ipfsbin-serve.service").read_text()
    assert "User=nobody" in unit and "ExecStart=/usr/bin/ipfsbin serve" in unit
    assert "@" not in unit.replace("multi-user", "")
    again = setup_portage(_setup(tmp_path))  # nothing to change the second time
    assert {c.action for c in again} == {"skipped"}
    undo_setup_portage(tmp_path)
    assert _tree(tmp_path) == before


def test_openrc_scripts_are_executable(tmp_path: Path) -> None:
    (tmp_path / "etc/init.d").mkdir(parents=True)
    setup_portage(_setup(tmp_path))
    script = tmp_path / "etc/init.d/ipfsbin-follow"
    assert script.stat().st_mode & 0o111
    text = script.read_text()
    assert text.startswith("#!/sbin/openrc-run") and 'command_user="nobody:nogroup"' in text


def test_gc_runs_daily_by_a_systemd_timer_or_cron(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    (tmp_path / "etc/cron.daily").mkdir(parents=True)
    setup_portage(_setup(tmp_path))
    timer = (tmp_path / "etc/systemd/system/ipfsbin-gc.timer").read_text()
    assert "OnCalendar=daily" in timer and "WantedBy=timers.target" in timer
    service = (tmp_path / "etc/systemd/system/ipfsbin-gc.service").read_text()
    assert "Type=oneshot" in service and "ExecStart=/usr/bin/ipfsbin gc\n" in service
    assert "User=nobody" in service and "@" not in service
    job = tmp_path / "etc/cron.daily/ipfsbin-gc"
    assert job.stat().st_mode & 0o111 and '/usr/bin/ipfsbin" gc' in job.read_text()
    assert "@" not in job.read_text().replace("cron", "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_gc_timer_and_service(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    setup_portage(_setup(tmp_path))
    units = tmp_path / "etc/systemd/system"
    service = units / "ipfsbin-gc.service"
    ipfsbin = Path(sys.executable).with_name("ipfsbin")
    service.write_text(service.read_text().replace("/usr/bin/ipfsbin", str(ipfsbin)))
    done = subprocess.run(  # noqa: S603 - fixed tool, our files
        ["systemd-analyze", "verify", str(units / "ipfsbin-gc.timer"), str(service)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_binrepos_file_gets_a_marked_block(tmp_path: Path) -> None:
    conf = tmp_path / "etc/portage/binrepos.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[mine]\nsync-uri = https://example.org/bin\n")
    setup_portage(_setup(tmp_path))
    text = conf.read_text()
    assert text.startswith("[mine]\n") and "# BEGIN ipfsbin" in text and "# END ipfsbin" in text
    setup_portage(_setup(tmp_path, (NAME, "k51second")))
    assert conf.read_text().count("# BEGIN ipfsbin") == 1
    undo_setup_portage(tmp_path)
    assert conf.read_text() == "[mine]\nsync-uri = https://example.org/bin\n"


def test_undo_leaves_foreign_files(tmp_path: Path) -> None:
    unit = tmp_path / "etc/systemd/system/ipfsbin-serve.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/my/own\n")
    assert undo_setup_portage(tmp_path) == []
    assert unit.exists()


def test_nothing_to_serve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="no subscription"):
        setup_portage(_setup(tmp_path, ()))
