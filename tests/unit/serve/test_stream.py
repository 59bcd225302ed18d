"""Bytes checked against the signed manifest as they stream: nothing complete and wrong."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator

import pytest

from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import TrustError
from ipfsbin.manifest import BinpkgVerifier
from ipfsbin.serve.stream import ByteRange, Workers, parse_range, read_ahead, verified_range
from tests.unit.maintainer.maintainer_helpers import PLATFORM, make_manifest

DATA = bytes(range(256)) * 40  # 10240 bytes
DESCRIPTOR = Descriptor(
    platform=PLATFORM.cid, cpv="app-misc/foo-1", slot="0", subslot="0", repository="gentoo",
    eapi="8", use=(), iuse=(), deps=(), requires=(),
)  # fmt: skip
MANIFEST = make_manifest(DESCRIPTOR, DATA)
MANIFEST_CID = MANIFEST.to_block()[0]


def _verifier(*, portage_digests: bool = False) -> BinpkgVerifier:
    """The shim's check (sha256 and size); Portage checks MD5/SHA-1 itself."""
    return BinpkgVerifier(MANIFEST, MANIFEST_CID, portage_digests=portage_digests)


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _collect(stream: Iterator[bytes]) -> tuple[bytes, TrustError | None]:
    got = b""
    try:
        for piece in stream:
            got += piece
    except TrustError as exc:
        return got, exc
    return got, None


def test_whole_file_passes() -> None:
    got, error = _collect(verified_range(_chunks(DATA), _verifier()))
    assert error is None and got == DATA


@pytest.mark.parametrize("want", [ByteRange(start=0, end=9), ByteRange(start=2500, end=10239),
                                  ByteRange(start=999, end=1000)])  # fmt: skip
def test_ranges_are_sliced_and_checked(want: ByteRange) -> None:
    stream = verified_range(_chunks(DATA), _verifier(), want)
    got, error = _collect(stream)
    assert error is None and got == DATA[want.start : want.end + 1]


@pytest.mark.parametrize("portage_digests", [False, True])
@pytest.mark.parametrize("chunk", [1000, 10240, 7])
def test_altered_bytes_never_arrive_complete(chunk: int, portage_digests: bool) -> None:
    bad = bytearray(DATA)
    bad[5000] ^= 1
    verifier = _verifier(portage_digests=portage_digests)
    got, error = _collect(verified_range(_chunks(bytes(bad), chunk), verifier))
    assert isinstance(error, TrustError) and "do not match manifest" in error.message
    assert len(got) < len(DATA)


def test_altered_bytes_in_a_short_range_are_caught_too() -> None:
    bad = DATA[:-1] + b"\x00"
    want = ByteRange(start=0, end=99)
    got, error = _collect(verified_range(_chunks(bad), _verifier(), want))
    assert error is not None and len(got) < 100


@pytest.mark.parametrize(
    ("data", "fragment"), [(DATA[:-1], "found 10239 bytes"), (DATA + b"x", "more than 10240")]
)
def test_wrong_length(data: bytes, fragment: str) -> None:
    got, error = _collect(verified_range(_chunks(data), _verifier()))
    assert error is not None and fragment in str(error) and len(got) < len(DATA)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(start=0, end=99)),
        ("bytes=100-", ByteRange(start=100, end=999)),
        ("bytes=-10", ByteRange(start=990, end=999)),
        ("bytes=900-5000", ByteRange(start=900, end=999)),
        ("bytes=0-1,5-9", None),
        ("items=0-1", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(ValueError):
        parse_range(header, 1000)


def _collect_async(stream: AsyncIterator[bytes]) -> tuple[bytes, TrustError | None]:
    async def run() -> tuple[bytes, TrustError | None]:
        got = b""
        try:
            async for piece in stream:
                got += piece
        except TrustError as exc:
            return got, exc
        return got, None

    return asyncio.run(run())


def test_pieces_go_out_as_they_are_read_until_the_last() -> None:
    read: list[int] = []

    def counted(data: bytes) -> Iterator[bytes]:
        for i, chunk in enumerate(_chunks(data)):
            read.append(i)
            yield chunk

    stream = verified_range(counted(DATA), _verifier())
    assert next(stream) == DATA[:1000] and read == [0]
    assert next(stream) == DATA[1000:2000] and read == [0, 1]


@pytest.mark.parametrize("chunk", [1000, 10239, 10240])
def test_a_mismatch_in_the_final_piece_sends_everything_but_that_piece(chunk: int) -> None:
    bad = bytearray(DATA)
    bad[-1] ^= 1
    got, error = _collect(verified_range(_chunks(bytes(bad), chunk), _verifier()))
    assert isinstance(error, TrustError)
    last = len(DATA) % chunk or chunk
    assert got == DATA[: len(DATA) - last]


def test_a_range_ending_mid_file_holds_its_last_piece_for_the_whole_check() -> None:
    bad = bytearray(DATA)
    bad[-1] ^= 1
    want = ByteRange(start=1500, end=4499)
    got, error = _collect(verified_range(_chunks(bytes(bad)), _verifier(), want))
    assert isinstance(error, TrustError)
    assert got == DATA[1500:4000]  # the piece with byte 4499 never left


def test_read_ahead_passes_pieces_in_order_then_the_error() -> None:
    bad = bytearray(DATA)
    bad[-1] ^= 1
    got, error = _collect_async(read_ahead(verified_range(_chunks(bytes(bad), 1000), _verifier())))
    assert isinstance(error, TrustError) and got == DATA[:10000]  # the last piece held back
    good, none = _collect_async(read_ahead(verified_range(_chunks(DATA, 7), _verifier())))
    assert none is None and good == DATA


def _endless(read: list[int]) -> Iterator[bytes]:
    while True:
        read.append(1)
        yield b"x" * 10


def test_read_ahead_stops_reading_when_the_client_goes_away() -> None:
    read: list[int] = []

    async def take_one() -> None:
        stream = read_ahead(_endless(read), depth=2)
        assert await anext(stream) == b"x" * 10
        await stream.aclose()

    asyncio.run(take_one())
    time.sleep(1.2)
    settled = len(read)
    time.sleep(0.6)
    assert len(read) == settled <= 5


def test_read_ahead_holds_at_most_depth_pieces_counting_the_one_being_read() -> None:
    read: list[int] = []

    async def take_one_and_wait() -> int:
        stream = read_ahead(_endless(read), depth=2)
        await anext(stream)  # held by the sender: the thread may read one more, no further
        await asyncio.sleep(0.5)
        held = len(read)
        await stream.aclose()
        return held

    assert asyncio.run(take_one_and_wait()) == 2


def test_workers_reuse_an_idle_thread_and_start_one_for_each_busy_job() -> None:
    workers = Workers(idle=5.0)
    seen: list[int] = []
    done = threading.Event()

    def note() -> None:
        seen.append(threading.get_ident())
        done.set()

    for _ in range(3):
        done.clear()
        workers.run(note)
        assert done.wait(5)
        time.sleep(0.05)  # the thread is back waiting for the next job
    assert len(seen) == 3 and len(set(seen)) == 1
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        seen.append(threading.get_ident())
        started.release()
        release.wait(5)

    for _ in range(3):
        workers.run(hold)
    # three jobs that do not end run at once: none waits for another's thread
    assert all(started.acquire(timeout=5) for _ in range(3))
    release.set()
    assert len(set(seen[3:])) == 3


def test_workers_leave_after_their_idle_time_and_still_run_later_jobs() -> None:
    workers = Workers(idle=0.2)
    first: list[int] = []
    ran = threading.Event()
    workers.run(lambda: first.append(threading.get_ident()))
    time.sleep(0.6)
    assert first and first[0] not in {t.ident for t in threading.enumerate()}
    workers.run(ran.set)
    assert ran.wait(5)


def test_a_waiting_worker_keeps_nothing_of_its_last_job() -> None:
    class Pieces:
        pass

    workers = Workers(idle=5.0)
    held = Pieces()
    gone = weakref.ref(held)
    done = threading.Event()

    def job(pieces: Pieces = held) -> None:
        done.set()

    workers.run(job)
    assert done.wait(5)
    del job, held
    time.sleep(0.1)
    gc.collect()
    assert gone() is None
