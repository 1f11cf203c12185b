"""No secret leaves through the logs or Sentry: the Procfile's `web` (gunicorn) and `worker`
(Celery) run a whole journey — install, cabinet login, Beeline token, a call delivered to amoCRM,
its recording link, the widget — then gunicorn's access log, the worker's log and the Sentry
events captured meanwhile are searched for every secret the journey handled."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests
import sentry_sdk
from django.db import connection
from sentry_sdk.transport import Transport

from config.celery_app import app as celery_app
from config.sentry import sentry_init
from core.models import Organization
from core.tenancy import organization_scope, scopes_disabled
from crm.errors import AmoError
from crm.models import AmoCredentials
from crm.services import amo_tokens_refresh
from pbx.models import BeelineCredentials
from sandbox.amocrm.services import account_create, oauth_code_issue
from sandbox.amocrm.widget_host.views import disposable_token
from sandbox.beeline.services import call_simulate, pbx_create
from sandbox.beeline.testing import ABONENTS
from tests.processes import free_port, honcho, stop, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class CapturingTransport(Transport):
    """A Sentry transport that keeps the events instead of sending them."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            payload = item.payload.json
            if payload is not None:
                self.events.append(payload)


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10).text
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def _amo_tokens(organization: Organization) -> set[str]:
    with organization_scope(organization):
        creds = AmoCredentials.objects.filter(organization=organization).first()
    return {str(creds.access_token), str(creds.refresh_token)} if creds else set()


def test_a_whole_journey_leaves_no_secret_in_logs_or_sentry(tmp_path: Path, settings):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    probe_secret = secrets.token_urlsafe(24)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DJANGO_SETTINGS_MODULE": "tests.stack_settings",
        "STACK_DATABASE_NAME": connection.settings_dict["NAME"],
        "STACK_PUBLIC_URL": base,
        "STACK_PROBE_SECRET": probe_secret,
        "REDIS_URL": settings.REDIS_URL,
        "WEB_CONCURRENCY": "3",
        "WORKER_CONCURRENCY": "2",
    }
    settings.PUBLIC_URL = base  # the widget tokens minted here are for that server
    settings.AMOCRM_API_BASE_URL = f"{base}/sandbox/amocrm"
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    web = honcho("web", env, web_log, port=port)
    worker = honcho("worker", env, worker_log)
    transport = CapturingTransport()
    seen: set[str] = {probe_secret, settings.AMOCRM_CLIENT_SECRET}
    try:
        wait_for("gunicorn", lambda: _up(base), 60)
        account = account_create(
            subdomain="journeysecrets",
            name="Journey",
            users=[
                {"name": "Админ", "is_admin": True},
                {"name": "Анна", "phone": "9161110001"},
            ],
        )
        pbx = pbx_create(name="АТС", abonents=ABONENTS, numbers=[{"phone": "+74950000001"}])
        seen.add(pbx.token)

        # Install: amoCRM sends the admin to our callback, which shows the access key.
        installed = requests.get(
            f"{base}/amocrm/oauth/callback",
            params={"code": oauth_code_issue(account=account), "referer": account.host},
            timeout=30,
        )
        assert installed.status_code == 200, installed.text[:500]
        assert "no-store" in installed.headers["Cache-Control"]
        organization = Organization.objects.get(amo_account_id=account.pk)
        assert organization.access_key in installed.text
        seen.add(organization.access_key)
        seen |= _amo_tokens(organization)

        # Cabinet: log in with the key, save the Beeline token (verified, subscribed).
        browser = requests.Session()
        login = f"{base}/cabinet/login"
        browser.post(
            login,
            {"key": organization.access_key, "csrfmiddlewaretoken": _csrf(browser, login)},
            timeout=10,
        )
        keys = f"{base}/cabinet/{organization.pk}/keys"
        saved = browser.post(
            keys, {"token": pbx.token, "csrfmiddlewaretoken": _csrf(browser, keys)}, timeout=30
        )
        assert saved.status_code == 200 and "Сохранено" in saved.text, saved.text[:500]
        assert "no-store" in saved.headers["Cache-Control"]
        with organization_scope(organization):
            seen.add(BeelineCredentials.objects.get().webhook_secret)

        # A call: Beeline posts its events, the worker delivers it to amoCRM with a link.
        call_simulate(
            pbx=pbx,
            scenario="inbound_answered",
            abonent_phone="9161110001",
            external_phone="+79031112233",
        )
        wait_for("the call in amoCRM", lambda: account.calls.exists(), 90)
        link = account.calls.get().link
        assert link.startswith(f"{base}/recordings/")
        seen.add(link.rsplit("/", 1)[1])
        assert requests.get(link, timeout=10).status_code in (200, 404)  # 404: not ready yet
        journal = browser.get(f"{base}/cabinet/{organization.pk}/", timeout=10)
        assert "/recordings/" in journal.text

        # The widget: status with a disposable token, then the same token replayed.
        anna = account.users.get(name="Анна")
        token = disposable_token(
            account_id=account.pk, user_id=anna.pk, subdomain=account.subdomain
        )
        seen.add(token)
        status = requests.get(
            f"{base}/amocrm/widget/status", headers={"X-Auth-Token": token}, timeout=10
        )
        assert status.status_code == 200, status.text
        replay = requests.get(
            f"{base}/amocrm/widget/status", headers={"X-Auth-Token": token}, timeout=10
        )
        assert replay.status_code == 401

        # The worker logs a credential the careless way (probe task): its handler redacts.
        celery_app.send_task("tests.log_probe.secret_in_log", queue="default")
        wait_for("the probe in the worker log", lambda: "probe" in worker_log.read_text(), 30)

        # Sentry: an exception raised deep in the token refresh (whose frames hold the refresh
        # token and the client secret), an error log line and a message with the webhook URL.
        sentry_init(dsn="https://public@o0.ingest.sentry.invalid/1", transport=transport)
        settings.AMOCRM_API_BASE_URL = "http://127.0.0.1:9"  # amoCRM unreachable
        with pytest.raises(AmoError) as failed:
            amo_tokens_refresh(organization=organization, force=True)
        sentry_sdk.capture_exception(failed.value)
        refresh_token = next(iter(_amo_tokens(organization)))
        logging.getLogger("crm.services").error("refresh failed: refresh_token=%s", refresh_token)
        with scopes_disabled():
            webhook = BeelineCredentials.objects.get(organization=organization).webhook_secret
        sentry_sdk.capture_message(f"events arrive at {base}/beeline/events/{webhook}")
        sentry_sdk.flush()
        seen |= _amo_tokens(organization)
    finally:
        sentry_sdk.init()  # back to a client that sends nothing
        stop(web)
        stop(worker)

    access_log, work_log = web_log.read_text(), worker_log.read_text()
    events = json.dumps(transport.events, ensure_ascii=False)
    # The logs and events are really there (a test that greps nothing proves nothing).
    assert "/beeline/events/[redacted]" in access_log and "/recordings/[redacted]" in access_log
    assert "pbx.tasks.pbx_event_process" in work_log and "[redacted]" in work_log
    assert len(transport.events) >= 3 and "AmoTransientError" in events
    for secret in sorted(seen):
        assert len(secret) >= 8
        assert secret not in access_log, f"secret {secret[:4]}… in gunicorn's access log"
        assert secret not in work_log, f"secret {secret[:4]}… in the worker's log"
        assert secret not in events, f"secret {secret[:4]}… in a Sentry event"


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
