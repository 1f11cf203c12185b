"""Production settings refuse to start without their required variables, naming the variable,
and pass Django's deployment checklist when everything is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

GOOD_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "x" * 20 + "Q9w8E7r6T5y4U3i2O1p0A9s8D7f6G5h4J3k2L1",
    "FIELD_ENCRYPTION_KEYS": f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
    "RECORDING_SIGNING_KEYS": "recording-link-key-for-tests-0123456789abcdefgh",
    "PUBLIC_URL": "https://beetel.example.com",
    "AMOCRM_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "AMOCRM_CLIENT_SECRET": "client-secret",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
}


def _env(env_overrides: dict[str, str | None]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GOOD_ENV}
    env.update(GOOD_ENV)
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(env_overrides: dict[str, str | None], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(env_overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_settings():
    result = _manage({}, "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_is_clean_with_the_production_default():
    """No DJANGO_SETTINGS_MODULE at all: manage.py picks production, and it passes --deploy."""
    result = _manage({"DJANGO_SETTINGS_MODULE": None}, "check", "--deploy", "--fail-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


ENTRY_POINTS = {
    "wsgi": "import config.wsgi",
    "asgi": "import config.asgi",
    "celery": "from config.celery_app import app; app.loader.import_default_modules()",
    "manage.py": "import sys; sys.argv = ['manage.py', 'check']; import manage; manage.main()",
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_defaults_to_production(entry):
    """Forgetting DJANGO_SETTINGS_MODULE starts the strict production settings (which refuse to
    start without their variables), never the development ones with debug pages and emulators."""
    env = _env({"DJANGO_SETTINGS_MODULE": None, "SECRET_KEY": None})
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS[entry]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is required" in result.stderr

    with_variables = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS[entry] + "\nfrom django.conf import settings\n"
         "print('settings', settings.SETTINGS_MODULE, settings.DEBUG, settings.SANDBOX_ENABLED)"],
        cwd=ROOT, env=_env({"DJANGO_SETTINGS_MODULE": None}), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert with_variables.returncode == 0, with_variables.stderr
    assert "settings config.settings.production False False" in with_variables.stdout


def test_development_opts_in_through_dot_env_example():
    example = (ROOT / ".env.example").read_text()
    assert "DJANGO_SETTINGS_MODULE=config.settings.local" in example
    makefile = (ROOT / "Makefile").read_text()
    assert "DEV_SETTINGS ?= config.settings.local" in makefile
    for target in ("demo", "messages"):
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert "$(DEV)" in recipe, target


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRET_KEY", None),
        ("SECRET_KEY", "short"),
        ("FIELD_ENCRYPTION_KEYS", None),
        ("FIELD_ENCRYPTION_KEYS", "not-a-fernet-key"),
        ("RECORDING_SIGNING_KEYS", None),
        ("RECORDING_SIGNING_KEYS", "short"),
        ("PUBLIC_URL", None),
        ("PUBLIC_URL", "http://insecure.example.com"),
        ("AMOCRM_CLIENT_ID", None),
        ("AMOCRM_CLIENT_SECRET", ""),
        ("DATABASE_URL", None),
        ("DATABASE_URL", "sqlite:///db.sqlite3"),
        ("REDIS_URL", None),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("AMOCRM_API_BASE_URL", "ftp://x"),
    ],
)
def test_production_refuses_to_start_naming_the_variable(variable, value):
    result = _manage({variable: value}, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_production_never_mounts_the_sandbox_even_when_asked():
    probe = (
        "from django.apps import apps; from django.urls import resolve, Resolver404\n"
        "print('apps', [a.name for a in apps.get_app_configs() if a.name.startswith('sandbox')])\n"
        "try:\n    resolve('/sandbox/'); print('mounted')\n"
        "except Resolver404:\n    print('not mounted')\n"
    )
    result = _manage({"SANDBOX_ENABLED": "true"}, "shell", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert "apps []" in result.stdout
    assert "not mounted" in result.stdout


@pytest.mark.parametrize(
    ("worker", "redis_url", "expected"),
    [
        (None, "redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/4"),
        ("gw0", "redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/4"),
        ("gw1", "redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/5"),
        ("gw1", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/1"),
    ],
)
def test_each_suite_process_gets_its_own_redis_database(worker, redis_url, expected):
    """Under pytest-xdist two processes flushing one Redis database would wipe each other's
    locks and limiter state mid-test; a worker or web process the test starts (it inherits
    the variables) uses the test's database, not one further along."""
    code = "from django.conf import settings; print(settings.REDIS_URL, settings.CELERY_BROKER_URL)"
    result = _manage(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "REDIS_URL": redis_url,
            "PYTEST_XDIST_WORKER": worker,
            "TEST_REDIS_SHIFTED_FOR": None,  # as pytest-xdist starts its own processes
        },
        "shell",
        "--no-imports",
        "-c",
        code,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected, expected]
    if worker:
        child = {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "REDIS_URL": expected,
            "PYTEST_XDIST_WORKER": worker,
            "TEST_REDIS_SHIFTED_FOR": worker,
        }
        result = _manage(child, "shell", "--no-imports", "-c", code)
        assert result.stdout.split() == [expected, expected], result.stderr
