from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses

SINK = "https://events.sink.test"


@dataclass
class EventSink:
    """Captures what the simulator POSTs (our own webhook belongs to another app)."""

    url: str = f"{SINK}/beeline/events/s3cret"
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def bodies(self) -> list[bytes]:
        return [body for _headers, body in self.received]


@pytest.fixture
def event_sink(sandbox_http: responses.RequestsMock) -> EventSink:
    sink = EventSink()

    def capture(request: Any) -> tuple[int, dict[str, str], bytes]:
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        sink.received.append((dict(request.headers), body))
        return sink.status, {}, b""

    sandbox_http.add_callback("POST", re.compile(re.escape(SINK) + ".*"), callback=capture)
    return sink
