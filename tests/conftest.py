"""Fixtures every test module may use, the sweep of processes a session leaves running,
and the session's own ipfsbin home."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["tests.playground.fixtures", "tests.leftovers"]

_OWN_HOME = "IPFSBIN_TEST_OWN_HOME"


def pytest_configure(config: pytest.Config) -> None:
    # Code under test that falls back to the user's data directory (the pin
    # ledger, subscriptions, keys) must not read or write the machine's real
    # one: a session that upgraded its format would break ipfsbin outside the
    # tests and every other session running at the same time.
    # Each pytest-xdist worker makes its own as well (it inherits the controller's):
    # two workers sharing one would see each other's keys and subscriptions.
    inherited = os.environ.get(_OWN_HOME)
    if "IPFSBIN_HOME" not in os.environ or (
        hasattr(config, "workerinput") and os.environ["IPFSBIN_HOME"] == inherited
    ):
        home = tempfile.mkdtemp(prefix="ipfsbin-test-home-")
        os.environ["IPFSBIN_HOME"] = home
        os.environ[_OWN_HOME] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home = os.environ.pop(_OWN_HOME, None)
    if home is not None:
        os.environ.pop("IPFSBIN_HOME", None)
        shutil.rmtree(home, ignore_errors=True)
