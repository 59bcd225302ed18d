"""Network bounds against a real slow HTTP server on loopback (``tests/drip_server.py``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ipfsbin.errors import SubscriptionError
from ipfsbin.kubo.netlimits import (
    NO_LIMITS,
    TransferLimits,
    limited_transport,
    operation_deadline,
    within_operation,
)
from ipfsbin.store.gateway import gateway_client
from ipfsbin.subscribe.sources import GatewayRecordSource
from ipfsbin.trust.keys import SigningKey
from tests.drip_server import Drip, drip_server

NAME = SigningKey.from_seed(bytes([7]) * 32).key_id


def client(limits: TransferLimits, read_timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(timeout=read_timeout, transport=limited_transport(limits))


def timed_get(http: httpx.Client, url: str) -> tuple[float, Exception | None]:
    started = time.monotonic()
    try:
        http.get(url).read()
    except httpx.HTTPError as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_a_gateway_dripping_the_body_is_cut_off_at_the_minimum_rate() -> None:
    # 10 KiB (an IPNS record's limit) at 20 bytes/s: eight and a half minutes without a bound
    drip = Drip(body=b"x" * 10240, pause=0.05)
    limits = TransferLimits(deadline=60.0, min_rate=1000, grace=1.0)
    with drip_server(drip) as url, gateway_client(3.0, limits) as http:
        started = time.monotonic()
        with pytest.raises(SubscriptionError, match="below the minimum rate of 1000 bytes/s"):
            GatewayRecordSource(http, url).fetch_record(NAME)
        assert time.monotonic() - started < 3.0
    assert drip.requests == [f"GET /ipns/{NAME}?format=ipns-record HTTP/1.1"]


def test_dripping_the_status_line_and_headers_is_cut_off_too() -> None:
    drip = Drip(drip_head=True, pause=0.05)
    with (
        drip_server(drip) as url,
        client(TransferLimits(deadline=60.0, min_rate=1000, grace=1.0)) as http,
    ):
        elapsed, error = timed_get(http, url)
    assert isinstance(error, httpx.ReadTimeout) and "below the minimum rate" in str(error)
    assert elapsed < 3.0


def test_a_request_ends_at_its_deadline_even_at_a_good_rate() -> None:
    # 2000 bytes/s for 5 s: above the minimum rate, but past the 1 s deadline
    drip = Drip(body=b"x" * 10_000, step=100, pause=0.05)
    with drip_server(drip) as url, client(TransferLimits(deadline=1.0, min_rate=100)) as http:
        elapsed, error = timed_get(http, url)
    assert isinstance(error, httpx.ReadTimeout) and "deadline passed after" in str(error)
    assert 0.9 < elapsed < 2.5


def test_the_operation_deadline_spans_requests_and_silent_servers() -> None:
    # each answer waits 0.4 s and then comes at once; the read timeout (30 s) never trips
    drip = Drip(body=b"ok", step=2, pause=0, delay=0.4)
    with drip_server(drip) as url, client(NO_LIMITS) as http:
        with operation_deadline(1.0):
            outcomes = [timed_get(http, url) for _ in range(4)]
        assert [error is None for _, error in outcomes] == [True, True, False, False]
        assert "deadline passed" in str(outcomes[2][1])
        assert outcomes[3][0] < 0.1  # nothing left of the operation: refused at once
        assert timed_get(http, url)[1] is None  # outside the operation: no bound but the client's


def test_pool_workers_carry_the_operation_deadline() -> None:
    drip = Drip(body=b"ok", step=2, pause=0, delay=5.0)
    with drip_server(drip) as url, client(NO_LIMITS) as http:
        started = time.monotonic()
        with operation_deadline(0.5), ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(within_operation(lambda _: timed_get(http, url)), range(4)))
        assert all(isinstance(error, httpx.ReadTimeout) for _, error in outcomes)
        assert time.monotonic() - started < 2.0


def test_a_fast_answer_passes_every_bound() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB in 16 KiB writes
    drip = Drip(body=body, step=16384, pause=0)
    with drip_server(drip) as url, client(TransferLimits(deadline=10.0, min_rate=1 << 20)) as http:
        with operation_deadline(10.0):
            answer = http.get(url)
    assert answer.content == body


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"deadline": 0, "min_rate": None}, "deadline must be positive"),
        ({"deadline": None, "min_rate": 0}, "min_rate must be positive"),
        ({"deadline": None, "min_rate": None, "grace": -1}, "grace must not be negative"),
    ],
)
def test_limits_refuse_nonsense(kwargs: dict[str, float | None], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        TransferLimits(**kwargs)  # type: ignore[arg-type]
