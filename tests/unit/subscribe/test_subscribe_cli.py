"""The follow commands, wired into a Typer app the way ``ipfsbin.cli.main`` registers them."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from subscribe_helpers import MAINTAINER, PUBLISHER, SECOND_PUBLISHER
from typer.testing import CliRunner

from ipfsbin.cli import follow
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboUnavailableError, SubscriptionError
from ipfsbin.store.sqlite import SqliteBlockStore, default_block_path
from ipfsbin.subscribe import AcceptedHead, SubscriptionStore
from ipfsbin.trust.state import RootPin
from tests.drip_server import Drip, drip_server

ROOT_CID = str(dagcbor.encode_block({"root": 1})[0])


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path))
    app = typer.Typer()
    app.command("subscribe")(follow.subscribe)
    app.command("unsubscribe")(follow.unsubscribe)
    app.command("status")(follow.status)
    app.command("sync")(follow.sync)
    return app


def test_subscribe_then_status(app: typer.Typer) -> None:
    runner = CliRunner()
    done = runner.invoke(
        app, ["subscribe", PUBLISHER.key_id, "--root", ROOT_CID, "--root-key", MAINTAINER.key_id]
    )
    assert done.exit_code == 0, done.output
    assert f"following {PUBLISHER.key_id} under maintainer key" in done.output

    done = runner.invoke(app, ["status", "--json"])
    (row,) = json.loads(done.output)
    assert row["name"] == PUBLISHER.key_id and row["head"] is None and row["roots"] == [ROOT_CID]

    text = runner.invoke(app, ["status"]).output
    assert "head:     none yet" in text and "checked:  never" in text


def test_subscribe_without_a_root_says_why(app: typer.Typer) -> None:
    done = CliRunner().invoke(app, ["subscribe", PUBLISHER.key_id])
    assert isinstance(done.exception, SubscriptionError)
    assert "--root CID" in done.exception.message
    assert "--root-key KEYID" in done.exception.message


def test_subscribe_by_maintainer_key_alone(app: typer.Typer) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["subscribe", PUBLISHER.key_id, "--root-key", MAINTAINER.key_id])
    assert done.exit_code == 0, done.output
    assert f"under maintainer key {MAINTAINER.key_id}" in done.output
    (row,) = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert row["roots"] == [] and row["pin"] == f"maintainer key {MAINTAINER.key_id}"
    again = runner.invoke(app, ["subscribe", PUBLISHER.key_id, "--root-key", MAINTAINER.key_id])
    assert again.exit_code == 0, again.output


def test_unsubscribe_keep_pins_forgets_only_the_subscription(app: typer.Typer) -> None:
    runner = CliRunner()
    runner.invoke(app, ["subscribe", PUBLISHER.key_id, "--root", ROOT_CID])

    done = runner.invoke(app, ["unsubscribe", PUBLISHER.key_id, "--keep-pins", "--json"])

    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["kept_pins"] is True
    assert json.loads(runner.invoke(app, ["status", "--json"]).output) == []


def test_unsubscribe_without_a_node_refuses_and_keeps_the_subscription(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPFSBIN_API", raising=False)
    runner = CliRunner()
    runner.invoke(app, ["subscribe", PUBLISHER.key_id, "--root", ROOT_CID])

    done = runner.invoke(app, ["unsubscribe", PUBLISHER.key_id])

    assert isinstance(done.exception, KuboUnavailableError)
    assert f"cannot unpin the blocks of {PUBLISHER.key_id}" in done.exception.message
    assert "--keep-pins" in (done.exception.hint or "")
    assert len(json.loads(runner.invoke(app, ["status", "--json"]).output)) == 1


def test_daemonless_unsubscribe_deletes_the_blocks_only_it_held(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPFSBIN_API", raising=False)
    runner = CliRunner()
    for name in (PUBLISHER.key_id, MAINTAINER.key_id):
        runner.invoke(app, ["subscribe", name, "--root", ROOT_CID])
    blocks = SqliteBlockStore(default_block_path())
    mine, shared = blocks.put(b"\xa1amx"), blocks.put(b"\xa1asx")
    with SubscriptionStore() as state:
        state.adopt_held(PUBLISHER.key_id, [mine, shared])
        state.adopt_held(MAINTAINER.key_id, [shared])

    done = runner.invoke(app, ["unsubscribe", PUBLISHER.key_id])

    assert done.exit_code == 0, done.output
    assert "released 1 blocks" in done.output and "gateway block file only" in done.output
    assert not blocks.has(mine) and blocks.has(shared)
    blocks.close()


def test_sync_without_subscriptions_is_an_error(app: typer.Typer) -> None:
    done = CliRunner().invoke(app, ["sync"])
    assert isinstance(done.exception, SubscriptionError)
    assert done.exception.message == "no subscriptions"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("48h", 172800), ("1h30m", 5400)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert follow.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "m5", "5x", "-5s", "0s"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a duration"):
        follow.parse_duration(text)


def test_index_publish_commands_register_and_document_their_options() -> None:
    from ipfsbin.cli.index.ipns import publish_cmd, republish_cmd

    index = typer.Typer()
    index.command("publish")(publish_cmd)
    index.command("republish")(republish_cmd)
    text = CliRunner().invoke(index, ["publish", "--help"]).output
    for option in ("--index", "--key", "--lifetime", "--ttl", "--allow-offline", "--json"):
        assert option in text
    assert "NAME" in CliRunner().invoke(index, ["republish", "--help"]).output


@pytest.mark.timeout(60)
def test_sync_through_a_slow_drip_gateway_gives_up_and_carries_on(app: typer.Typer) -> None:
    # a gateway that sends the record at 20 bytes/s: 8.5 minutes per subscription with
    # only the per-read --timeout; the minimum rate ends each sync after its grace
    runner = CliRunner()
    for name in (PUBLISHER.key_id, SECOND_PUBLISHER.key_id):
        assert runner.invoke(app, ["subscribe", name, "--root", ROOT_CID]).exit_code == 0
    drip = Drip(body=b"x" * 10240, pause=0.05)
    started = time.monotonic()
    with drip_server(drip) as url:
        done = runner.invoke(app, ["sync", "--gateway", url, "--timeout", "3s", "--json"])
    elapsed = time.monotonic() - started
    assert done.exit_code == 1, done.output
    results = json.loads(done.output)
    assert [r["outcome"] for r in results] == ["failed", "failed"]
    assert all("below the minimum rate" in r["error"] for r in results)
    assert len(drip.requests) == 2  # the second subscription was tried after the first gave up
    assert elapsed < 20


@pytest.mark.timeout(60)
def test_sync_deadline_bounds_each_subscription(app: typer.Typer) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["subscribe", PUBLISHER.key_id, "--root", ROOT_CID]).exit_code == 0
    # 2 KiB/s: above the minimum rate, so only the whole-sync deadline stops it
    drip = Drip(body=b"x" * 10240, step=100, pause=0.05)
    started = time.monotonic()
    with drip_server(drip) as url:
        done = runner.invoke(app, ["sync", "--gateway", url, "--deadline", "1s", "--json"])
    assert done.exit_code == 1, done.output
    (result,) = json.loads(done.output)
    assert "deadline passed after" in result["error"]
    assert time.monotonic() - started < 4


def _accept(name: str, *, head_expires: int, root_expires: int) -> None:
    with SubscriptionStore() as state:
        state.add(name, RootPin(cid=CID.from_text(ROOT_CID)), CID.from_text(ROOT_CID), now=0.0)
        state.record_accepted(
            name,
            AcceptedHead(
                head=CID.from_text(ROOT_CID),
                head_envelope=CID.from_text(ROOT_CID),
                height=3,
                index_root=CID.from_text(ROOT_CID),
                sequence=3,
                roots=(CID.from_text(ROOT_CID),),
                head_expires=head_expires,
                root_expires=root_expires,
            ),
            expect_head=None,
            now=0.0,
        )


def test_status_shows_expiry_and_time_left_and_warns_before(app: typer.Typer) -> None:
    now = int(time.time())
    _accept(PUBLISHER.key_id, head_expires=now + 86400 + 120, root_expires=now + 200 * 86400 + 7170)
    _accept(SECOND_PUBLISHER.key_id, head_expires=now - 7200 - 120, root_expires=now + 86400 * 9)
    runner = CliRunner()
    text = runner.invoke(app, ["status"]).output
    assert "  expires:  head commit " in text and "(in 1 day)" in text
    assert "            trust root " in text and "(in 200 days 1 hour)" in text
    assert "  warning:  head commit expires at " in text
    assert "  STALE:    head commit expired at " in text and "its packages are not offered" in text

    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["status", "--json"]).output)}
    fresh, stale = rows[PUBLISHER.key_id], rows[SECOND_PUBLISHER.key_id]
    assert fresh["head_expires"] == now + 86400 + 120
    assert fresh["root_expires"] == now + 200 * 86400 + 7170
    assert fresh["freshness"]["state"] == "expiring"
    assert 86400 < fresh["freshness"]["seconds_left"] <= 86400 + 120
    assert stale["freshness"]["state"] == "expired" and stale["freshness"]["seconds_left"] < 0


def test_replica_policy_from_subscribe_or_the_configuration(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_SYSTEM_CONFIG", str(tmp_path / "none.toml"))
    runner = CliRunner()
    names = (PUBLISHER.key_id, SECOND_PUBLISHER.key_id)
    done = runner.invoke(app, ["subscribe", names[0], "--root", ROOT_CID, "--replica", "full"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["subscribe", names[1], "--root", ROOT_CID]).exit_code == 0

    def policies() -> dict[str, str]:
        rows = json.loads(runner.invoke(app, ["status", "--json"]).output)
        return {row["name"]: row["held"]["policy"] for row in rows}

    # a client keeps what its host could use unless told otherwise
    assert policies() == {names[0]: "full", names[1]: "host"}
    (tmp_path / "config").mkdir()
    (tmp_path / "config/ipfsbin.toml").write_text('[host]\nreplica = "full"\n')
    assert policies() == {names[0]: "full", names[1]: "full"}
    assert "all of it (replica policy full)" in runner.invoke(app, ["status"]).output


@pytest.mark.parametrize("command", ["subscribe", "sync"])
def test_unknown_replica_policy_is_a_usage_error(app: typer.Typer, command: str) -> None:
    args = [command, *([PUBLISHER.key_id, "--root", ROOT_CID] if command == "subscribe" else [])]
    done = CliRunner().invoke(app, [*args, "--replica", "most"])
    assert done.exit_code == 2
    assert "'most' is not one of host, full" in done.output
