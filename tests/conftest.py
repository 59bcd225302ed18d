"""Fixtures every test module may use, and the sweep of processes a session leaves running."""

pytest_plugins = ["tests.playground.fixtures", "tests.leftovers"]
