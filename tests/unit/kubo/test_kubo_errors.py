"""How the Kubo client maps HTTP failures and incomplete answers (no daemon needed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest

import ipfsbin.kubo
from ipfsbin.codec.cid import DAG_CBOR, RAW, cid_for
from ipfsbin.errors import (
    BlockMismatchError,
    BlockNotFoundError,
    KuboCommandError,
    KuboError,
    KuboStreamError,
    KuboUnavailableError,
)
from ipfsbin.kubo._rpc import base_url_from_multiaddr
from ipfsbin.kubo.client import KuboClient, go_duration
from ipfsbin.store.kubo import KuboBlockStore

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler) -> KuboClient:
    http = httpx.Client(base_url="http://127.0.0.1:5001", transport=httpx.MockTransport(handler))
    return KuboClient(http, owns_http=True)


def kubo_error(message: str, status: int = 500) -> httpx.Response:
    return httpx.Response(status, json={"Message": message, "Code": 0, "Type": "error"})


def ndjson(*objects: object, headers: dict[str, str] | None = None) -> httpx.Response:
    body = b"".join(json.dumps(o).encode() + b"\n" for o in objects)
    return httpx.Response(200, content=body, headers=headers)


class BrokenStream(httpx.SyncByteStream):
    """A body that breaks off after some bytes, as when the daemon dies mid-answer."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_public_names_are_pinned() -> None:
    assert sorted(ipfsbin.kubo.__all__) == [
        "KUBO_VERSION",
        "KuboClient",
        "ManagedNode",
        "NodeStatus",
        "connect",
        "ensure_kubo",
        "find_kubo",
        "resolve_api",
        "start_user_node",
        "stop_user_node",
        "user_node_status",
    ]


def test_kubo_error_json_becomes_a_command_error_with_kubos_message() -> None:
    client = client_for(lambda request: kubo_error('invalid path "x"', status=400))
    with pytest.raises(KuboCommandError, match='kubo block/stat: invalid path "x"') as caught:
        client.block_stat(cid_for(RAW, b"x"))
    assert caught.value.kubo_message == 'invalid path "x"'
    assert caught.value.status == 400
    assert caught.value.command == "block/stat"


def test_a_non_json_error_body_is_kept_as_the_message() -> None:
    client = client_for(lambda request: httpx.Response(404, text="404 page not found"))
    with pytest.raises(KuboCommandError, match="404 page not found") as caught:
        client.version()
    assert caught.value.status == 404


def test_connection_refused_is_unavailable_with_a_hint() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(KuboUnavailableError, match="cannot reach the Kubo API") as caught:
        client_for(refuse).id()
    assert caught.value.hint == "is the daemon running? try `ipfsbin node start`"


def test_a_timeout_is_unavailable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(KuboUnavailableError, match="no answer in time"):
        client_for(slow).repo_stat()


def test_other_httpx_failures_stay_in_the_kubo_family() -> None:
    def bad(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("bad gzip", request=request)

    with pytest.raises(KuboError, match="HTTP failure"):
        client_for(bad).id()


def test_a_stream_that_breaks_off_is_a_stream_error() -> None:
    client = client_for(
        lambda request: httpx.Response(
            200, stream=BrokenStream(b"abc"), headers={"X-Content-Length": "10"}
        )
    )
    with pytest.raises(KuboStreamError, match="broke off"):
        client.cat_bytes(cid_for(RAW, b"x"))


def test_cat_that_ends_early_without_an_error_is_refused() -> None:
    # Kubo's late error went into a trailer httpx dropped: only the count tells.
    client = client_for(
        lambda request: httpx.Response(200, content=b"abc", headers={"X-Content-Length": "10"})
    )
    with pytest.raises(KuboStreamError, match="ended after 3 of 10 bytes"):
        client.cat_bytes(cid_for(RAW, b"x"))


def test_cat_sends_offset_and_length_and_checks_the_expected_size() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=b"cde", headers={"X-Content-Length": "3"})

    client = client_for(answer)
    assert client.cat_bytes(cid_for(RAW, b"x"), offset=2, length=3, expected_size=3) == b"cde"
    params = seen[0].params
    assert (params["offset"], params["length"], params["progress"]) == ("2", "3", "false")
    with pytest.raises(KuboStreamError, match="announces 3 bytes, expected 4"):
        client.cat_bytes(cid_for(RAW, b"x"), expected_size=4)


def test_add_without_the_final_hash_is_refused() -> None:
    client = client_for(lambda request: ndjson({"Name": "f", "Bytes": 5}))
    with pytest.raises(KuboStreamError, match="without the root CID after 5 bytes"):
        client.add(b"hello")


def test_add_sends_every_option_it_relies_on() -> None:
    cid = cid_for(RAW, b"hello")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        return ndjson({"Name": "f", "Bytes": 5}, {"Name": "f", "Hash": str(cid), "Size": "5"})

    progress: list[int] = []
    result = client_for(answer).add(b"hello", progress=progress.append)
    assert (result.cid, result.size, progress) == (cid, 5, [5])
    params = seen[0].url.params
    expected = {
        "cid-version": "1",
        "raw-leaves": "true",
        "hash": "sha2-256",
        "chunker": "size-262144",
        "pin": "true",
        "fast-provide-root": "false",
    }
    assert {k: params[k] for k in expected} == expected


def test_add_whose_byte_count_disagrees_is_refused() -> None:
    cid = cid_for(RAW, b"hello")
    client = client_for(
        lambda request: ndjson({"Name": "f", "Bytes": 4}, {"Name": "f", "Hash": str(cid)})
    )
    with pytest.raises(KuboStreamError, match="confirmed 4 bytes, 5 were sent"):
        client.add(b"hello")


def test_block_put_that_stores_fewer_blocks_is_refused() -> None:
    client = client_for(lambda request: ndjson({"Key": str(cid_for(RAW, b"a")), "Size": 1}))
    with pytest.raises(KuboStreamError, match="stored 1 of 2 blocks"):
        client.block_put_many([b"a", b"b"])


def test_dag_import_without_statistics_is_refused() -> None:
    root = cid_for(DAG_CBOR, b"\xa0")
    client = client_for(lambda request: ndjson({"Root": {"Cid": {"/": str(root)}}}))
    with pytest.raises(KuboStreamError, match="before the import statistics"):
        client.dag_import(b"car bytes")


def test_dag_import_reports_a_failed_root_pin() -> None:
    root = cid_for(DAG_CBOR, b"\xa0")
    client = client_for(
        lambda request: ndjson(
            {"Root": {"Cid": {"/": str(root)}, "PinErrorMsg": "block not found"}},
            {"Stats": {"BlockCount": 0, "BlockBytesCount": 0}},
        )
    )
    with pytest.raises(KuboCommandError, match="pinning root .* failed: block not found"):
        client.dag_import(b"car bytes")


def test_block_store_refuses_bytes_that_do_not_match_the_cid() -> None:
    store = KuboBlockStore(client_for(lambda request: httpx.Response(200, content=b"evil")))
    with pytest.raises(BlockMismatchError, match="do not hash to"):
        store.get(cid_for(DAG_CBOR, b"\xa0"))


def test_block_store_maps_a_missing_block_and_asks_offline() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return kubo_error("block was not found locally (offline): ipld: could not find x")

    store = KuboBlockStore(client_for(answer))
    with pytest.raises(BlockNotFoundError, match="not in the local repo"):
        store.get(cid_for(DAG_CBOR, b"\xa0"))
    assert seen[0].params["offline"] == "true"
    assert store.has(cid_for(DAG_CBOR, b"\xa0")) is False


def test_block_store_checks_the_cid_kubo_reports() -> None:
    wrong = cid_for(RAW, b"\xa0")
    store = KuboBlockStore(client_for(lambda request: ndjson({"Key": str(wrong), "Size": 1})))
    with pytest.raises(BlockMismatchError, match="expected"):
        store.put(b"\xa0")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=48), "172800s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (0, "0s"),
        (2.5, "2500ms"),
    ],
)
def test_durations_always_carry_units(value: timedelta | float, text: str) -> None:
    assert go_duration(value) == text


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        go_duration(-1)


@pytest.mark.parametrize(
    ("addr", "url", "uds"),
    [
        ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001", None),
        ("/ip6/::1/tcp/5001", "http://[::1]:5001", None),
        ("/dns4/localhost/tcp/5001/http", "http://localhost:5001", None),
        ("/unix/run/ipfs/api.sock", "http://kubo", "/run/ipfs/api.sock"),
        ("http://127.0.0.1:5001/", "http://127.0.0.1:5001", None),
    ],
)
def test_api_multiaddrs_become_urls(addr: str, url: str, uds: str | None) -> None:
    assert base_url_from_multiaddr(addr) == (url, uds)


@pytest.mark.parametrize(
    "addr", ["127.0.0.1:5001", "/ip4/127.0.0.1/udp/5001", "/ip4/1.2.3.4/tcp/x"]
)
def test_bad_api_addresses_are_refused(addr: str) -> None:
    with pytest.raises(ValueError, match="API multiaddr"):
        base_url_from_multiaddr(addr)
