"""Error reporting to Sentry without secrets.

Local variables are never captured (a frame of the token refresh holds the OAuth pair, a frame of
the webhook its secret), request bodies are never sent, and every event and breadcrumb goes
through the product's redactor (``config.logs.redact_value``) before it leaves the process.
"""

from __future__ import annotations

from typing import Any

from config.logs import redact_value


def sentry_event_scrub(event: Any, hint: Any = None) -> Any:
    """Sentry's ``before_send``: the event with secret-named fields and credential-shaped text
    redacted (URLs with a webhook secret or recording token included)."""
    return redact_value("event", event)


def sentry_breadcrumb_scrub(crumb: Any, hint: Any = None) -> Any:
    return redact_value("breadcrumb", crumb)


def sentry_init(*, dsn: str, **options: Any) -> None:
    """Start the Sentry SDK with the product's privacy settings (``options`` for tests: a
    transport that captures events instead of sending them)."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=sentry_event_scrub,
        before_breadcrumb=sentry_breadcrumb_scrub,
        traces_sample_rate=0.0,
        **options,
    )
