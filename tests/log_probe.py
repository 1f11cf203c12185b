"""A task for the stack test: logs and fails with a credential in the text, so the test can see
what the worker's log handler does with it (the product's tasks carry ids only)."""

from __future__ import annotations

import logging
import os

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tests.log_probe.secret_in_log")
def secret_in_log() -> None:
    secret = os.environ["STACK_PROBE_SECRET"]
    logger.warning("probe: refreshing with refresh_token=%s", secret)
    print(f"probe print: access_token={secret}")  # noqa: T201 (stdout is redirected to the log)
    raise ValueError(f"probe failure with token={secret}")
