"""What ``/status`` counts as served and as failed, however the client ends a download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ipfsbin.errors import TrustError
from ipfsbin.serve.app import Downloads, stream_counted

PIECES = [b"a" * 100, b"b" * 100, b"c" * 56]
SIZE = sum(map(len, PIECES))


async def _pieces(end: asyncio.Event) -> AsyncIterator[bytes]:
    for piece in PIECES:
        yield piece
    await end.wait()  # the source's end takes a while to be seen


def _download(read: int) -> tuple[Downloads, dict[str, Any]]:
    """Stream ``PIECES`` to a client that reads ``read`` pieces and then hangs up."""
    downloads = Downloads()
    record: dict[str, Any] = {"path": "app-misc/foo/foo-1-1.gpkg.tar"}
    refused: list[str] = []

    async def run() -> None:
        downloads.start()
        stream = stream_counted(_pieces(asyncio.Event()), SIZE, downloads, record, refused.append)
        try:
            for _ in range(read):
                await anext(stream)
            if read == len(PIECES):
                # the server asks for the next piece once the last went out
                pending = asyncio.ensure_future(anext(stream))
                await asyncio.sleep(0.01)
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        finally:
            await stream.aclose()

    asyncio.run(run())
    assert not refused
    return downloads, record


def test_a_client_that_hangs_up_after_every_byte_was_served() -> None:
    downloads, record = _download(len(PIECES))
    assert (downloads.served, downloads.failed, downloads.active) == (1, 0, 0)
    assert record["bytes"] == SIZE and "error" not in record


def test_a_client_that_hangs_up_early_is_a_failure() -> None:
    downloads, record = _download(2)
    assert (downloads.served, downloads.failed, downloads.active) == (0, 1, 0)
    assert record["error"] == "the client went away" and record["bytes"] == 100


def test_a_mismatch_is_a_failure_and_marks_the_build() -> None:
    downloads = Downloads()
    record: dict[str, Any] = {}
    refused: list[str] = []

    async def run() -> None:
        downloads.start()

        async def pieces() -> AsyncIterator[bytes]:
            yield PIECES[0]
            raise TrustError("sha256 mismatch")

        stream = stream_counted(pieces(), SIZE, downloads, record, refused.append)
        assert await anext(stream) == PIECES[0]
        try:
            await anext(stream)
        except TrustError:
            return
        raise AssertionError("the mismatch was not raised")

    asyncio.run(run())
    assert (downloads.served, downloads.failed) == (0, 1)
    assert refused == ["sha256 mismatch"] and record["error"].startswith("TrustError")
