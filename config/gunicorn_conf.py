"""gunicorn settings of the Procfile's ``web`` process (``-c python:config.gunicorn_conf``).

The access log goes through the product's redactor (``config.logs``): webhook secrets, recording
tokens and credentials in paths, query strings, referers and headers never reach it.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from config.logs import SecretRedactingFilter, redact_value

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = 30
accesslog = "-"
# %(U)s is the path only (no query string); the logger class below redacts it all the same.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(L)ss'
logger_class = "config.gunicorn_conf.RedactingLogger"


class RedactingLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger with every access-log atom redacted, and a redacting error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.addFilter(SecretRedactingFilter())

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {key: redact_value(key, value) for key, value in atoms.items()}
