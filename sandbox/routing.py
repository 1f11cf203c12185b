"""Route outbound HTTP (``requests``) into this Django process, for tests.

In unit tests no socket is opened: ``responses`` intercepts every request to a base URL and a
callback replays it through Django's test client against a URL prefix of ours. The same views
serve the emulators over real HTTP in the demo, so both modes run the same code.

- ``AMOCRM_API_BASE_URL`` → ``/sandbox/amocrm/…`` (the amoCRM emulator)
- ``BEELINE_API_URL``     → ``/sandbox/beeline/…`` (the Beeline emulator)
- ``PUBLIC_URL``          → ``/…`` (our own app: webhooks the emulators call back, recordings)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import requests
import responses
from django.test import Client

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
# Emulators answer their "timeout" fault with this header. Over real HTTP the client times out on
# its own while the emulator hangs; routed, the emulator skips the hang (it sees ROUTED_HEADER)
# and the routing raises what a real client would see.
FAULT_HEADER = "X-Sandbox-Fault"
ROUTED_HEADER = "X-Sandbox-Routed"


def _replay(prefix: str, request: Any) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(request.url)
    base_path = urlsplit(request._beetel_base).path.rstrip("/")
    path = parts.path[len(base_path) :] if parts.path.startswith(base_path) else parts.path
    target = prefix.rstrip("/") + (path if path.startswith("/") else "/" + path)
    if parts.query:
        target += "?" + parts.query
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in request.headers.items()
        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-type"
    }
    headers["HTTP_" + ROUTED_HEADER.upper().replace("-", "_")] = "1"
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    client = Client(raise_request_exception=False, SERVER_NAME=parts.hostname or "testserver")
    response = client.generic(
        request.method,
        target,
        data=body,
        content_type=request.headers.get("Content-Type", "application/octet-stream"),
        secure=parts.scheme == "https",
        **headers,
    )
    content = (
        b"".join(response.streaming_content)  # type: ignore[attr-defined]
        if response.streaming
        else response.content
    )
    out_headers = {k: v for k, v in response.items() if k.lower() not in _HOP_BY_HOP}
    return response.status_code, out_headers, content


def route_to_django(rsps: responses.RequestsMock, base_url: str, prefix: str) -> None:
    """Send every request under ``base_url`` to the Django URL ``prefix`` of this process."""
    pattern = re.compile("^" + re.escape(base_url.rstrip("/")) + r"(/.*)?(\?.*)?$")

    def callback(request: Any) -> tuple[int, dict[str, str], bytes] | requests.ReadTimeout:
        request._beetel_base = base_url
        status, headers, body = _replay(prefix, request)
        if headers.get(FAULT_HEADER) == "timeout":
            return requests.ReadTimeout(f"Read timed out (sandbox timeout fault at {base_url})")
        return status, headers, body

    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        rsps.add_callback(method, pattern, callback=callback)


def request_is_routed(request: Any) -> bool:
    """True when an emulator view is answering a routed (in-process) request."""
    return request.headers.get(ROUTED_HEADER) == "1"
