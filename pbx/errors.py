"""Errors of the Beeline side. Every message is safe to show to a customer (no secrets)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class BeelineError(Exception):
    """Beeline answered with an error or could not be reached.

    ``permanent``: retrying the same request will not help (bad token, bad input).
    ``rate_limited``: Beeline asked us to slow down (429).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        permanent: bool = False,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.permanent = permanent
        self.rate_limited = rate_limited


class BeelineUnavailable(BeelineError):
    """Network failure, timeout or a 5xx: worth retrying later."""


class BeelineNotFound(BeelineError):
    """404, or a record that does not exist (yet)."""


class BeelineTokenRejected(BeelineError):
    """Beeline refused the API token (bad, revoked or never valid)."""


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
