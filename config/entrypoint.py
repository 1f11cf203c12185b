"""Which settings a process runs with: production unless the environment says otherwise.

Every entry point (manage.py, WSGI, ASGI, the Celery app) calls ``settings_module_choose``
before Django loads settings. A development machine opts in to ``config.settings.local`` through
``DJANGO_SETTINGS_MODULE`` in the environment or in ``.env`` (see ``.env.example``; the Makefile's
development targets set it too). Forgetting the variable in production therefore starts the
strict production settings, which refuse to start without their required variables, instead of
debug pages and the emulators.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

PRODUCTION = "config.settings.production"
BASE_DIR = Path(__file__).resolve().parent.parent


def settings_module_choose() -> str:
    env_file = BASE_DIR / ".env"
    if env_file.is_file():
        # Values already in the environment win (read_env never overwrites them).
        environ.Env.read_env(str(env_file))
    return os.environ.setdefault("DJANGO_SETTINGS_MODULE", PRODUCTION)
