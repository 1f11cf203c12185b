"""Beeline's event webhook and the public recording proxy. Thin: the work is in services."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import requests
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from pbx.credentials import beeline_client_for
from pbx.errors import BeelineError, BeelineNotConfigured, BeelineNotFound
from pbx.intake import body_too_large, event_intake
from pbx.recording_links import RecordingRef, recording_ref_from_token

logger = logging.getLogger(__name__)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def beeline_events(request: HttpRequest, secret: str, extra: str = "") -> HttpResponse:
    """Store one XSI event and answer 200 before any processing (``pbx.intake``). In the web
    process the webhook is served by ``pbx.webhook_wsgi`` instead, without the middleware."""
    if body_too_large(request.META.get("CONTENT_LENGTH")):
        return _text(413, "event body too large")
    answer = event_intake(
        secret=secret,
        body=request.read(settings.PBX_WEBHOOK_MAX_BYTES + 1),
        content_type=request.content_type or "",
        charset=request.encoding,
    )
    return _text(answer.status, answer.message)


# Streams a web process serves at once. A player reading slowly holds its thread for the whole
# transfer, so recordings may take only this many of the process's threads (gunicorn
# ``WEB_THREADS``, config/gunicorn_conf.py): the rest stay free for the webhook and the cabinet.
_recording_slots = threading.BoundedSemaphore(settings.RECORDING_STREAMS_PER_PROCESS)


class _RecordingStream:
    """The upstream body, chunk by chunk; ``close()`` (called by the WSGI server when the
    response ends, finished or not) closes the upstream and frees the slot, once."""

    def __init__(self, upstream: requests.Response) -> None:
        self._upstream = upstream
        self._chunks = upstream.iter_content(chunk_size=64 * 1024)
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk: bytes = next(self._chunks)
        return chunk

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._upstream.close()
            _recording_slots.release()


@require_GET
def recording(request: HttpRequest, token: str) -> HttpResponse | StreamingHttpResponse:
    """Stream a call recording from Beeline, passing Range through (the player seeks)."""
    ref = recording_ref_from_token(token=token)
    not_found = _("Запись разговора не найдена.")
    if ref is None:
        return _text(404, not_found)
    if not _recording_slots.acquire(blocking=False):
        busy = _text(503, _("Сервер занят: попробуйте открыть запись через минуту."))
        busy["Retry-After"] = "30"
        return busy
    try:
        response = _recording_response(request, ref)
    except BaseException:
        _recording_slots.release()
        raise
    if not isinstance(response, StreamingHttpResponse):
        _recording_slots.release()  # an error page: nothing is streamed
    elif not connection.in_atomic_block:
        # A long transfer needs no database: give the connection back now rather than
        # keep one open per streaming thread.
        connection.close()
    return response


def _recording_response(
    request: HttpRequest, ref: RecordingRef
) -> HttpResponse | StreamingHttpResponse:
    not_found = _("Запись разговора не найдена.")
    try:
        _credentials, client = beeline_client_for(ref.organization_id)
    except BeelineNotConfigured:
        return _text(404, not_found)
    try:
        upstream = client.record_download(
            ext_tracking_id=ref.ext_tracking_id,
            user_id=ref.user_id,
            range_header=request.headers.get("Range", "")[:100],
        )
    except BeelineNotFound:
        return _text(
            404,
            _("Запись разговора ещё не готова: Beeline выкладывает её через несколько минут "
              "после звонка. Попробуйте позже."),
        )  # fmt: skip
    except BeelineError as exc:
        logger.warning("recording not fetched", extra={"error": exc.message, "status": exc.status})
        return _text(502, _("Beeline сейчас не отдаёт запись разговора. Попробуйте позже."))
    response = StreamingHttpResponse(
        _RecordingStream(upstream),
        status=upstream.status_code if upstream.status_code in (200, 206) else 200,
        content_type=upstream.headers.get("Content-Type", "audio/mpeg"),
    )
    for header in ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "ETag"):
        if header in upstream.headers:
            response[header] = upstream.headers[header]
    response.setdefault("Accept-Ranges", "bytes")
    response["Cache-Control"] = "private, max-age=3600"
    return response
