"""Validation of required environment variables for production settings.

Each helper returns the parsed value or raises ImproperlyConfigured naming the variable, so a
misconfigured deployment fails at start instead of at the first request that needs the value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured


def _raw(env: environ.Env, name: str) -> str:
    value: str = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is required but not set.")
    return value


def required_str(env: environ.Env, name: str) -> str:
    return _raw(env, name)


def secret_key(env: environ.Env, name: str) -> str:
    value = _raw(env, name)
    if len(value) < 50 or len(set(value)) < 5:
        raise ImproperlyConfigured(f"{name} must be at least 50 random characters.")
    return value


def fernet_keys(env: environ.Env, name: str) -> list[str]:
    keys = [k.strip() for k in _raw(env, name).split(",") if k.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 32:
            raise ImproperlyConfigured(
                f"{name}: key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)."
            )
    return keys


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ImproperlyConfigured(f"{name} must be a {'/'.join(schemes)} URL, got {value!r}.")
    return value.rstrip("/")


def https_url(env: environ.Env, name: str, default: str | None = None) -> str:
    value: str = env.str(name, default="").strip() or (default or "")
    if not value:
        raise ImproperlyConfigured(f"{name} is required but not set.")
    return _url(name, value, ("https",))


def optional_url(env: environ.Env, name: str) -> str:
    value: str = env.str(name, default="").strip()
    return _url(name, value, ("http", "https")) if value else ""


def postgres_database(env: environ.Env, name: str) -> dict[str, Any]:
    value = _raw(env, name)
    try:
        config: dict[str, Any] = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for junk input
        raise ImproperlyConfigured(f"{name} is not a valid database URL.") from exc
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{name} must point to PostgreSQL (postgres://…).")
    config.setdefault("CONN_MAX_AGE", 60)
    config["CONN_HEALTH_CHECKS"] = True
    config.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=2)
    )
    return config


def redis_url(env: environ.Env, name: str) -> str:
    return _url(name, _raw(env, name), ("redis", "rediss"))


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def signing_keys(env: environ.Env, name: str) -> list[str]:
    """Comma-separated secret keys, newest first, each at least 32 characters."""
    keys = [k.strip() for k in _raw(env, name).split(",") if k.strip()]
    for position, key in enumerate(keys, start=1):
        if len(key) < 32 or len(set(key)) < 5:
            raise ImproperlyConfigured(
                f"{name}: key #{position} must be at least 32 random characters (make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
            )
    return keys


def networks(env: environ.Env, name: str, default: list[str]) -> list[str]:
    """Comma-separated IP networks in CIDR notation (a bare address is a /32 or /128)."""
    values = [v.strip() for v in env.list(name, default=default) if v.strip()]
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not an IP network (write e.g. 10.0.0.0/8)."
            ) from None
    return values


def celery_timing_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """System check ``celery.E001``: a task must finish before the broker's visibility timeout
    hands it to another worker, counting the countdown it may have waited (Redis starts the
    clock when a worker takes the message, which for a countdown is before the wait). So the
    longest countdown (``CELERY_COUNTDOWN_MAX_SECONDS``, the reconciliation period, any
    task's ``retry_backoff_max``) plus the longest hard time limit must stay below it."""
    from django.conf import settings
    from django.core.checks import Error

    from config.celery_app import app

    # Every app's AppConfig.ready has imported its tasks module by now (core.task_queue).
    visibility = float(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    limits = {"CELERY_TASK_TIME_LIMIT": float(settings.CELERY_TASK_TIME_LIMIT)}
    countdowns = {
        "CELERY_COUNTDOWN_MAX_SECONDS": float(settings.CELERY_COUNTDOWN_MAX_SECONDS),
        "PBX_RECONCILE_PERIOD_SECONDS": float(settings.PBX_RECONCILE_PERIOD_SECONDS),
    }
    for name, task in sorted(app.tasks.items()):
        if name.startswith("celery."):
            continue
        if task.time_limit:
            limits[f"{name} time_limit"] = float(task.time_limit)
        if getattr(task, "autoretry_for", ()) and getattr(task, "retry_backoff", False):
            countdowns[f"{name} retry_backoff_max"] = float(getattr(task, "retry_backoff_max", 600))
    errors = []
    countdown_name, countdown = max(countdowns.items(), key=lambda item: item[1])
    if countdown > float(settings.CELERY_COUNTDOWN_MAX_SECONDS):
        errors.append(
            Error(
                f"{countdown_name} ({countdown:g} s) is above CELERY_COUNTDOWN_MAX_SECONDS "
                f"({settings.CELERY_COUNTDOWN_MAX_SECONDS} s).",
                id="celery.E001",
            )
        )
    limit_name, limit = max(limits.items(), key=lambda item: item[1])
    if countdown + limit >= visibility:
        errors.append(
            Error(
                f"The broker's visibility timeout ({visibility:g} s) must exceed the longest "
                f"countdown ({countdown_name}: {countdown:g} s) plus the longest hard time "
                f"limit ({limit_name}: {limit:g} s), or a task still waiting or running is "
                "handed to a second worker.",
                hint="Raise CELERY_VISIBILITY_TIMEOUT_SECONDS or shorten the countdown/limit.",
                id="celery.E001",
            )
        )
    return errors
