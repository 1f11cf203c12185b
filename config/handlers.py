"""A lean WSGI path for machine-to-machine endpoints that are posted to at high rates.

Beeline's event webhook needs none of the cabinet's middleware (sessions, locale, CSRF,
authentication, messages, CORS, static files, HTMX): each of them costs CPU on every event.
``LeanWSGIHandler`` is Django's own handler (request signals, URL resolution, exception-to-
response conversion) with ``settings.LEAN_MIDDLEWARE`` instead; ``path_router`` sends the
paths in ``settings.LEAN_PATH_PREFIXES`` to it and everything else to the full handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LeanWSGIHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # Synchronous, new-style middleware only (no process_view hooks), so the chain is
        # simply each middleware wrapped around the next.
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(settings.LEAN_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler


def path_router(full: WSGIApp, lean: WSGIApp, prefixes: tuple[str, ...]) -> WSGIApp:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "POST" and path.startswith(prefixes):
            return lean(environ, start_response)
        return full(environ, start_response)

    return application
