"""A real HTTP proxy on loopback in front of a real gateway, lying about CAR answers on demand.

Every request is forwarded to ``upstream`` (path, query and ``Accept``);
raw blocks and IPNS records pass unchanged. A CAR answer is changed
according to ``proxy.mode`` (settable between requests):

- ``pass``: unchanged;
- ``flip``: one byte of the last block flipped (its bytes no longer hash to its CID);
- ``swap``: the last block replaced by the first (a valid block, in the wrong place);
- ``truncate``: the body cut off after 60 % (the connection just closes);
- ``drip``: the body sent 1 KiB every 0.1 s (about 10 KiB/s);
- ``unordered``: the ``order``/``dups`` parameters dropped from ``Content-Type``.

``requests`` lists each forwarded request line as ``(path, changed)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from ipfsbin.codec.varint import decode_varint


@dataclass
class TamperProxy:
    upstream: str
    mode: str = "pass"
    requests: list[tuple[str, bool]] = field(default_factory=list)
    url: str = ""


def _sections(body: bytes) -> list[tuple[int, int, int]]:
    """(start of the section's length, start of its bytes, end) of each CAR section."""
    header_len, pos = decode_varint(body, 0)
    pos += header_len
    found = []
    while pos < len(body):
        size, start = decode_varint(body, pos)
        found.append((pos, start, start + size))
        pos = start + size
    return found


def tamper_car(body: bytes, mode: str) -> bytes:
    sections = _sections(body)
    first, last = sections[0], sections[-1]
    if mode == "flip":
        data = bytearray(body)
        data[last[2] - 1] ^= 0xFF
        return bytes(data)
    if mode == "swap":
        if len(sections) < 2:
            raise AssertionError("swap needs a CAR of at least two blocks")
        return body[: last[0]] + body[first[0] : first[2]]
    if mode == "truncate":
        return body[: len(body) * 6 // 10]
    return body


@contextmanager
def tamper_proxy(upstream: str) -> Iterator[TamperProxy]:
    proxy = TamperProxy(upstream=upstream.rstrip("/"))
    stopping = threading.Event()
    client = httpx.Client(timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            headers = {"Accept": self.headers.get("Accept", "*/*")}
            answer = client.get(proxy.upstream + self.path, headers=headers)
            kind = answer.headers.get("content-type", "")
            body = answer.content
            mode = proxy.mode
            changed = kind.startswith("application/vnd.ipld.car") and mode != "pass"
            proxy.requests.append((self.path, changed))
            if changed:
                body = tamper_car(body, mode)
                if mode == "unordered":
                    kind = "application/vnd.ipld.car; version=1"
            self.send_response(answer.status_code)
            self.send_header("Content-Type", kind)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                if changed and mode == "drip":
                    for start in range(0, len(body), 1024):
                        if stopping.is_set():
                            return
                        self.wfile.write(body[start : start + 1024])
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.wfile.write(body)
            except OSError:
                return  # the client gave up: what the drip case expects

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
        client.close()
