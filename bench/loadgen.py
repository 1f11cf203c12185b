"""A small HTTP/1.1 load generator on raw keep-alive sockets (one thread, a selector).

Cheap enough per request that on a 2-core machine the servers under test, not the sender,
are what runs out of CPU. Two modes:

- ``closed_loop``: N connections, each posting the next body as soon as the previous answer
  arrived (maximum sustained throughput);
- ``open_loop``: requests due at a fixed rate, each sent on an idle connection (opened on
  demand); latency counts from the moment a request was due, so a slow server cannot hide
  its queueing (no coordinated omission).
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # seconds into the run, per latency
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def request_bytes(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"X-Forwarded-Proto: https\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Conn:
    __slots__ = ("sock", "buffer", "started", "busy")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = b""
        self.started = 0.0
        self.busy = False

    def response(self) -> tuple[int, bool] | None:
        """(status, server closes) once a whole response is buffered, else None."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buffer[:end].decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(self.buffer) < end + 4 + length:
            return None
        self.buffer = self.buffer[end + 4 + length :]
        return int(head.split(" ", 2)[1]), "connection: close" in head


def _run(
    port: int,
    requests: Iterator[bytes],
    *,
    connections: int,
    seconds: float,
    due: Callable[[int], float] | None,
) -> Tally:
    tally = Tally()
    selector = selectors.DefaultSelector()
    idle: list[_Conn] = []
    pending_due: list[float] = []  # due times of requests waiting for a connection

    def open_conn() -> _Conn:
        conn = _Conn(port)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        return conn

    def send(conn: _Conn, started: float) -> None:
        conn.started, conn.busy = started, True
        conn.sock.setblocking(True)
        conn.sock.sendall(next(requests))
        conn.sock.setblocking(False)
        tally.sent += 1

    start = time.perf_counter()
    stop = start + seconds
    index = 0
    if due is None:
        for _ in range(connections):
            send(open_conn(), time.perf_counter())
    else:
        idle = [open_conn() for _ in range(connections)]
    while True:
        now = time.perf_counter()
        if due is not None and now < stop:
            while start + due(index) <= now:
                pending_due.append(start + due(index))
                index += 1
            while pending_due:
                conn = idle.pop() if idle else open_conn()
                send(conn, pending_due.pop(0))
        in_flight = tally.sent - sum(tally.statuses.values())
        if now >= stop and in_flight == 0:
            break
        if now > stop + 10:  # a server that stopped answering: give up, counted as not ok
            break
        timeout = 0.05 if due is None else max(0.0, min(0.05, start + due(index) - now))
        for key, _ in selector.select(timeout):
            conn = key.data
            try:
                chunk = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                selector.unregister(conn.sock)
                conn.sock.close()
                if conn in idle:  # the server closed an idle keep-alive connection
                    idle.remove(conn)
                if conn.busy:
                    tally.statuses[0] = tally.statuses.get(0, 0) + 1
                if due is None and time.perf_counter() < stop:
                    send(open_conn(), time.perf_counter())
                continue
            conn.buffer += chunk
            answer = conn.response()
            if answer is None:
                continue
            status, closes = answer
            done = time.perf_counter()
            conn.busy = False
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            tally.latencies_ms.append((done - conn.started) * 1000)
            tally.sent_at.append(conn.started - start)
            tally.ok += status == 200
            if closes:
                selector.unregister(conn.sock)
                conn.sock.close()
                conn = open_conn()
            if due is None:
                if done < stop:
                    send(conn, done)
            else:
                idle.append(conn)
    tally.seconds = min(time.perf_counter(), stop) - start
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    return tally


def closed_loop(port: int, requests: Iterator[bytes], *, connections: int, seconds: float) -> Tally:
    return _run(port, requests, connections=connections, seconds=seconds, due=None)


def open_loop(port: int, requests: Iterator[bytes], *, rate: float, seconds: float) -> Tally:
    return _run(port, requests, connections=4, seconds=seconds, due=lambda i: i / rate)
