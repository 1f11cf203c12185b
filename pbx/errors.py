"""Errors of the Beeline side. Every message is safe to show to a customer (no secrets).

The client's errors are ``core.transport.TransportError``s with the shared flags
(``permanent``, ``rate_limited``, ``auth``, ``retry_after``), plus Beeline's ``errorCode``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.transport import TransportError


class BeelineError(TransportError):
    """Beeline answered with an error or could not be reached. ``code``: Beeline's errorCode."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        permanent: bool | None = None,
        rate_limited: bool | None = None,
        auth: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status=status,
            permanent=permanent,
            rate_limited=rate_limited,
            auth=auth,
            retry_after=retry_after,
        )
        self.code = code


class BeelineUnavailable(BeelineError):
    """Network failure, timeout or a 5xx: worth retrying later."""


class BeelineNotFound(BeelineError):
    """404, or a record that does not exist (yet)."""

    permanent = True


class BeelineTokenRejected(BeelineError):
    """Beeline refused the API token (bad, revoked or never valid)."""

    permanent = True
    auth = True


class BeelineNotConfigured(Exception):
    """The organization has no saved Beeline token."""

    def __init__(self) -> None:
        super().__init__(str(_("Токен Beeline API не сохранён.")))


class ClickToCallError(Exception):
    """Click-to-call failed; ``status`` is the HTTP status the widget API should answer."""

    status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPhoneNumber(ClickToCallError):
    status = 400


class ClickToCallRefused(ClickToCallError):
    """Beeline refused the call; the message is Beeline's description."""

    status = 502
