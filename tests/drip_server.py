"""A real HTTP server on loopback that answers slowly, byte by byte (slow-drip gateways).

Each connection gets ``head`` (the status line and headers) and then ``body``,
written ``step`` bytes at a time with ``pause`` seconds between writes, after
waiting ``delay`` seconds. ``drip_head=True`` drips the status line and
headers as well. The server runs in a thread; ``requests`` counts the
requests it read.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Drip:
    body: bytes = b"x" * 10_000
    status: str = "200 OK"
    content_type: str = "application/octet-stream"
    step: int = 1
    pause: float = 0.05
    delay: float = 0.0
    drip_head: bool = False
    requests: list[str] = field(default_factory=list)

    def head(self) -> bytes:
        return (
            f"HTTP/1.1 {self.status}\r\nContent-Type: {self.content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        ).encode()


@contextmanager
def drip_server(drip: Drip) -> Iterator[str]:
    """Serve ``drip`` on 127.0.0.1; yields the base URL. Slow writers stop at shutdown."""
    stopping = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            drip.requests.append(request.split(b"\r\n", 1)[0].decode())
            if stopping.wait(drip.delay):
                return
            head, body = drip.head(), drip.body
            if not drip.drip_head:
                conn.sendall(head)
                head = b""
            data = head + body
            try:
                for start in range(0, len(data), drip.step):
                    if stopping.is_set():
                        return
                    conn.sendall(data[start : start + drip.step])
                    time.sleep(drip.pause)
            except OSError:
                return  # the client gave up: what the tests expect

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            stopping.set()
            server.shutdown()
            thread.join()
