"""One error shape for every vendor API client (Beeline in pbx, amoCRM in crm).

Each client maps its vendor's answers to its own subclasses (``pbx.errors``, ``crm.errors``) and
sets the flags below, so the layers above — the call pipeline, the cabinet, the tasks — decide
what to do from the flags without knowing which vendor failed (in the spirit of healthchecks'
``hc/api/transports.py``, https://github.com/healthchecks/healthchecks).
"""

from __future__ import annotations

import math


class TransportError(Exception):
    """A request to a vendor API failed; ``message`` is safe to show a customer (no secrets).

    ``permanent``: repeating the same request will not help (refused input, missing object,
    rejected credentials); otherwise it is worth retrying later (timeouts, 5xx, 429).
    ``rate_limited``: the vendor asked us to slow down; ``retry_after`` is how long it asked us
    to wait, in seconds, when it said.
    ``auth``: the vendor refused our credentials; the customer must act (a new token, a new
    authorization) before anything else will work.

    Subclasses may set the flags as class attributes; an argument given here overrides them.
    """

    permanent: bool = False
    rate_limited: bool = False
    auth: bool = False
    retry_after: float | None = None
    status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        permanent: bool | None = None,
        rate_limited: bool | None = None,
        auth: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if permanent is not None:
            self.permanent = permanent
        if rate_limited is not None:
            self.rate_limited = rate_limited
        if auth is not None:
            self.auth = auth
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return not self.permanent


def retry_after_seconds(header: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (RFC 9110 §10.2.3), or None when it is missing or not
    a number (neither vendor is known to send the HTTP-date form)."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
