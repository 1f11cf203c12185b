"""``/metrics``: who may read it, that Prometheus can parse it, that the counters follow what
happened (a chaos-like sequence through the real webhook and the amoCRM emulator), that the
state gauges survive a Redis outage, and that no series grows with the number of customers."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client, TestCase
from prometheus_client.parser import text_string_to_metric_families

from config import metrics as metrics_view
from integration.models import CallDelivery
from integration.testing import world_make
from pbx.credentials import webhook_url
from pbx.selectors import credentials_for
from sandbox.amocrm.services import account_ban, faults_set
from sandbox.beeline.services import pbx_create
from sandbox.beeline.testing import ABONENTS

CLIENT_PHONE = "+79031112233"
TOKEN = "s3cr3t-metrics-token-of-the-test"

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Client | None = None, **extra: Any) -> Series:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    series: Series = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Series, after: Series, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def world(beeline_pbx: Any, outsider: Any, settings: Any, monkeypatch: Any) -> Any:
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    monkeypatch.setattr("crm.client.backoff_seconds", lambda *args, **kwargs: 0.0)
    return world_make(pbx=beeline_pbx)


# --- access ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loopback_reads_metrics_by_default() -> None:
    series = scrape()  # the test client comes from 127.0.0.1
    assert value(series, "beetel_database_up") == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
    ids=["no-token", "wrong-token", "not-bearer", "longer-token", "empty-token"],
)
def test_outside_address_without_the_token_gets_nothing(settings, authorization) -> None:
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.7", **headers)
    assert response.status_code == 404
    assert b"beetel_" not in response.content


@pytest.mark.django_db
def test_no_token_configured_means_an_empty_bearer_opens_nothing(settings) -> None:
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_token_opens_metrics_from_anywhere(settings) -> None:
    settings.METRICS_TOKEN = TOKEN
    series = scrape(REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ("beetel_database_up", ()) in series


@pytest.mark.django_db
def test_allowed_networks_replace_loopback(settings) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "2001:db8::/32"]
    assert scrape(REMOTE_ADDR="10.20.3.4")
    assert scrape(REMOTE_ADDR="2001:db8::5")
    assert Client().get("/metrics", REMOTE_ADDR="10.21.0.1").status_code == 404
    assert Client().get("/metrics").status_code == 404  # loopback is no longer listed


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_counts_not_the_proxy(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy itself is on loopback; the client it forwards is outside.
    response = Client().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert response.status_code == 404
    assert scrape(HTTP_X_FORWARDED_FOR="127.0.0.1")


def test_a_malformed_network_fails_at_start() -> None:
    import environ
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import checks

    env = environ.Env()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METRICS_ALLOWED_NETWORKS", "10.0.0.0/8,localhost")
        with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOWED_NETWORKS"):
            checks.networks(env, "METRICS_ALLOWED_NETWORKS", default=[])


@pytest.mark.django_db
def test_post_is_refused() -> None:
    assert Client().post("/metrics").status_code == 405


# --- the state gauges --------------------------------------------------------------------------


@pytest.mark.django_db
def test_state_gauges_are_present_and_parse() -> None:
    series = scrape()
    for queue in ("events", "crm", "default"):
        assert ("beetel_queue_length", (("queue", queue),)) in series
    assert value(series, "beetel_redis_up") == 1
    assert ("beetel_events_unprocessed", ()) in series
    assert ("beetel_events_unprocessed_oldest_seconds", ()) in series
    for status in ("pending", "in_progress", "failed", "paused"):
        assert ("beetel_deliveries", (("status", status),)) in series
    for reason in ("unpaid", "banned", "revoked"):
        assert ("beetel_organizations_paused", (("reason", reason),)) in series
    for state in ("expired", "expiring"):
        assert ("beetel_subscriptions", (("state", state),)) in series


@pytest.mark.django_db
def test_queue_lengths_are_read_from_the_broker() -> None:
    from core.redis import redis_client

    redis_client(django_settings.CELERY_BROKER_URL).rpush("crm", "a", "b", "c")
    series = scrape()
    assert value(series, "beetel_queue_length", queue="crm") == 3
    assert value(series, "beetel_queue_length", queue="events") == 0


@pytest.mark.django_db
def test_redis_down_gives_redis_up_0_and_no_queue_gauges(settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    series = scrape()
    assert value(series, "beetel_redis_up") == 0
    assert not [key for key in series if key[0] == "beetel_queue_length"]
    assert value(series, "beetel_database_up") == 1  # the rest is still there


@pytest.mark.django_db
def test_database_trouble_gives_database_up_0(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(metrics_view, "_capped_count", broken)
    series = scrape()
    assert value(series, "beetel_database_up") == 0
    assert not [key for key in series if key[0] == "beetel_deliveries"]
    assert value(series, "beetel_redis_up") == 1


@pytest.mark.django_db
def test_counts_are_capped(monkeypatch, world) -> None:
    from core.tenancy import scopes_disabled
    from pbx.models import PbxEvent

    world.simulate(scenario="inbound_missed", external_phone=CLIENT_PHONE, finalize=False)
    with scopes_disabled():  # the call's events, as if none had been processed yet
        assert PbxEvent.objects.count() >= 2
        PbxEvent.objects.update(processed_at=None)
    assert value(scrape(), "beetel_events_unprocessed") >= 2
    monkeypatch.setattr(metrics_view, "COUNT_CAP", 1)
    series = scrape()
    assert value(series, "beetel_events_unprocessed") == 1
    assert value(series, "beetel_events_unprocessed_oldest_seconds") >= 0


# --- the counters after a chaos-like sequence ----------------------------------------------------


def post_raw(world: Any, body: bytes, *, secret_path: str | None = None) -> int:
    credentials = credentials_for(organization=world.organization)
    path = secret_path or webhook_url(credentials=credentials).removeprefix(
        django_settings.PUBLIC_URL
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = Client().generic("POST", path, data=body, content_type="application/xml")
    return response.status_code


@pytest.mark.django_db
def test_counters_follow_a_chaos_like_sequence(world) -> None:
    before = scrape()

    # 1. A call whose every event Beeline sends twice: stored once, the resends duplicates.
    first = world.simulate(scenario="inbound_answered", external_phone=CLIENT_PHONE, duplicate=True)
    mid = scrape()
    stored_first = delta(before, mid, "beetel_events_stored_total")
    ignored_first = delta(before, mid, "beetel_events_ignored_total")
    assert stored_first >= 2  # at least the ringing and the released event
    assert delta(before, mid, "beetel_events_duplicate_total") == stored_first
    assert stored_first + ignored_first / 2 == len(first.documents)  # types we do not use
    # 2. A malformed body (400) and a post to an unknown address (404).
    assert post_raw(world, b"<not-xml") == 400
    assert post_raw(world, b"<x/>", secret_path="/beeline/events/no-such-secret") == 404
    # 3. amoCRM answers 429 twice: the client waits and tries again; the call is delivered.
    faults_set(account=world.account, fail_next=2, fail_status=429)
    second = world.simulate(scenario="inbound_missed", external_phone="+79031112244")
    # 4. amoCRM bans the account (403): the next call's delivery is paused.
    faults_set(account=world.account)
    account_ban(account=world.account)
    third = world.simulate(scenario="inbound_missed", external_phone="+79031112255")

    assert world.delivery(first.ext_tracking_id).status == CallDelivery.Status.DONE
    assert world.delivery(second.ext_tracking_id).status == CallDelivery.Status.DONE
    assert world.delivery(third.ext_tracking_id).status == CallDelivery.Status.PAUSED
    posted = 2 * len(first.documents) + len(second.documents) + len(third.documents)

    after = scrape()
    received = delta(before, after, "beetel_events_received_total")
    stored = delta(before, after, "beetel_events_stored_total")
    duplicate = delta(before, after, "beetel_events_duplicate_total")
    ignored = delta(before, after, "beetel_events_ignored_total")
    assert received == posted + 2
    assert duplicate == stored_first  # only the first call's events were sent twice
    assert stored + duplicate + ignored == posted
    assert stored >= 3 * 2
    assert delta(before, after, "beetel_events_rejected_total", code="400") == 1
    assert delta(before, after, "beetel_events_rejected_total", code="404") == 1

    assert delta(before, after, "beetel_amocrm_responses_total", code="429") == 2
    assert delta(before, after, "beetel_amocrm_responses_total", code="403") >= 1
    assert delta(before, after, "beetel_amocrm_responses_total", code="2xx") > 0

    assert delta(before, after, "beetel_deliveries_finished_total", status="done") == 2
    assert delta(before, after, "beetel_deliveries_finished_total", status="paused") == 1
    assert delta(before, after, "beetel_deliveries_finished_total", status="failed") == 0
    # Both delivered calls logged in amoCRM, measured from their end.
    assert delta(before, after, "beetel_released_to_amocrm_seconds_count") == 2
    # The pop-up went out for the first call at least (the banned account's did not).
    assert delta(before, after, "beetel_ring_popup_seconds_count") >= 1
    assert value(after, "beetel_ring_popup_seconds_bucket", le="+Inf") >= 1

    # The state gauges see the paused delivery and the banned account.
    assert value(after, "beetel_deliveries", status="paused") == 1
    assert value(after, "beetel_organizations_paused", reason="banned") == 1
    assert value(after, "beetel_events_unprocessed") == 0  # eager Celery processed them all
    assert value(after, "beetel_events_unprocessed_oldest_seconds") == 0
    for queue in ("events", "crm", "default"):
        assert ("beetel_queue_length", (("queue", queue),)) in after


@pytest.mark.django_db
def test_beeline_api_errors_are_counted(world, monkeypatch) -> None:
    from pbx.client import BeelineClient
    from pbx.errors import BeelineError

    before = scrape()
    client = BeelineClient("not-the-token")
    with pytest.raises(BeelineError):
        client.abonents_list()
    after = scrape()
    # The emulator answers a wrong token 401; a token error is permanent: asked once.
    assert delta(before, after, "beetel_beeline_api_errors_total", code="401") == 1


# --- bounded labels ----------------------------------------------------------------------------


def label_sets(series: Series) -> set[tuple[str, tuple[str, ...]]]:
    """Every series' name with its label names and values, minus the histogram buckets' ``le``
    (fixed by the code)."""
    return {(name, tuple(f"{k}={v}" for k, v in labels)) for (name, labels) in series}


@pytest.mark.django_db
def test_series_do_not_grow_with_organizations(world, sandbox_http) -> None:
    world.simulate(scenario="inbound_answered", external_phone=CLIENT_PHONE)
    one = scrape()

    other_pbx = pbx_create(
        name="Вторая АТС",
        abonents=ABONENTS,
        numbers=[{"phone": "+74950000009", "name": "Основной"}],
    )
    other = world_make(name="Вторая организация", pbx=other_pbx)
    other.simulate(scenario="inbound_answered", external_phone=CLIENT_PHONE)
    two = scrape()

    assert label_sets(two) == label_sets(one)
    for _name, labels in two:
        for _key, label_value in labels:
            for organization in (world.organization, other.organization):
                assert label_value not in (str(organization.pk), organization.name)
            assert "9031112233" not in label_value


# --- several processes (gunicorn workers, Celery workers) ----------------------------------------

_CHILD = """
from core import metrics
metrics.amocrm_response_observe(429)
metrics.intake_observe(status=200, message="ok")
"""
_DEAD_CHILD = """
import os
from config.gunicorn_conf import child_exit
from core import metrics
metrics.amocrm_response_observe(429)
child_exit(None, type("Worker", (), {"pid": os.getpid()})())
"""
_SCRAPER = """
import django
django.setup()
from config.metrics import metrics_text
print(metrics_text().decode())
"""


def test_multiprocess_mode_sums_every_process_of_the_host(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }

    def run(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(_CHILD)
    run(_CHILD)
    run(_DEAD_CHILD)  # a gunicorn worker that exited: its counts stay
    text = run(_SCRAPER)
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert value(series, "beetel_amocrm_responses_total", code="429") == 3
    assert value(series, "beetel_events_stored_total") == 2
    assert ("beetel_redis_up", ()) in series  # the state gauges are served alongside
