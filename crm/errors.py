"""Errors of the amoCRM half. The client's errors are ``core.transport.TransportError``s: each
carries the shared flags (``permanent``, ``rate_limited``, ``auth``, ``retry_after``) and a
message a person can read (it ends up in Диагностика and on pages), never a secret."""

from __future__ import annotations

from core.transport import TransportError


class AmoError(TransportError):
    """Base class: something went wrong talking to amoCRM."""


class AmoTransientError(AmoError):
    """Timeout, connection error or 5xx: try again later."""


class AmoRateLimited(AmoTransientError):
    """429 after our own backoff was exhausted."""

    rate_limited = True
    retry_after: float

    def __init__(self, message: str, *, retry_after: float = 1.0, status: int | None = 429) -> None:
        super().__init__(message, status=status, retry_after=retry_after)


class AmoPermanentError(AmoError):
    """A request amoCRM refuses for good (validation error, not found, …)."""

    permanent = True

    def __init__(
        self, message: str, *, status: int | None = None, body: object | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.body = body


class AmoAuthError(AmoError):
    """The tokens are revoked or invalid: the account must be authorized again."""

    permanent = True
    auth = True


class AmoPaused(AmoError):
    """Traffic to this account is stopped (unpaid, banned or revoked) until support resumes it."""

    permanent = True


class AmoUnpaid(AmoPaused):
    """402: the amoCRM account is not paid."""

    status = 402


class AmoBanned(AmoPaused):
    """403 on an endpoint we have rights for: amoCRM restricted us (IP/account ban)."""

    status = 403


class AmoInstallError(Exception):
    """The install callback cannot complete; ``message`` tells the admin what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AmoSignatureInvalid(Exception):
    """The disconnect hook's signature or client id does not match ours."""


# --- Widget API: the telephony port (crm knows nothing of Beeline) ---------------------------


class WidgetError(Exception):
    """Base of the errors a telephony backend raises to the widget API."""

    http_status = 400
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class WidgetBadNumber(WidgetError):
    http_status = 400
    code = "bad_number"


class WidgetNoMapping(WidgetError):
    http_status = 404
    code = "no_mapping"


class WidgetNumberDisabled(WidgetError):
    http_status = 409
    code = "number_disabled"


class WidgetTelephonyRefused(WidgetError):
    """The PBX refused the call; ``message`` is its description."""

    http_status = 502
    code = "telephony_refused"
