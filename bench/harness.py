"""What both benchmarks need: free loopback ports, waiting for a server, percentiles."""

from __future__ import annotations

import socket
import time

import requests

PG = "postgres://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, deadline: float) -> None:
    """Poll ``url`` until it answers at all, or raise once ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def percentile(data: list[float], p: float) -> float:
    ordered = sorted(data)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
