"""The web process's worker start-up (config/gunicorn_conf.py): what the first request of a
fresh worker would otherwise wait for is done before the worker takes requests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
from django.core.wsgi import get_wsgi_application
get_wsgi_application()  # what gunicorn loads before post_worker_init
from django.urls import get_resolver
import config.gunicorn_conf as conf
before = "pbx.views" in sys.modules
conf.post_worker_init(None)
print(before, "pbx.views" in sys.modules, bool(get_resolver()._populated))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_the_url_configuration_is_loaded_before_the_first_request():
    result = _python(PROBE)
    assert result.stdout.split()[-3:] == ["False", "True", "True"]


def test_a_worker_of_a_bare_wsgi_app_starts_too():
    """bench/ingest.py serves its bare-insert baseline with this configuration."""
    result = _python(
        "import config.gunicorn_conf as conf; conf.post_worker_init(None); print('started')"
    )
    assert result.stdout.split()[-1] == "started"
