"""The Beeline client: error mapping to the shared flags (status by status), and retries for
safe reads only, against the emulator."""

from __future__ import annotations

import pytest
import requests
import responses

from core.transport import TransportError
from pbx.client import BeelineClient
from pbx.errors import BeelineError, BeelineNotFound, BeelineTokenRejected, BeelineUnavailable
from sandbox.beeline.models import Subscription as SandboxSubscription
from sandbox.beeline.services import faults_set


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)


def test_a_read_is_retried_through_a_passing_failure(beeline_pbx):
    faults_set(pbx=beeline_pbx, fail_next=2, fail_status=503)
    abonents = BeelineClient(beeline_pbx.token).abonents_list()
    assert len(abonents) == 3
    beeline_pbx.refresh_from_db()
    assert beeline_pbx.fail_next == 0  # both failures were consumed by retries


def test_a_write_is_never_retried(beeline_pbx):
    faults_set(pbx=beeline_pbx, fail_next=1, fail_status=500)
    client = BeelineClient(beeline_pbx.token)
    with pytest.raises(BeelineUnavailable):
        client.subscription_create(url="https://beetel.test/beeline/events/x", expires=3600)
    assert not SandboxSubscription.objects.exists()
    # The fault was one request long: the caller's own retry later goes through.
    granted = client.subscription_create(url="https://beetel.test/beeline/events/x", expires=3600)
    assert granted.subscription_id
    assert SandboxSubscription.objects.count() == 1


def test_a_bad_token_carries_beelines_description(beeline_pbx):
    with pytest.raises(BeelineTokenRejected) as caught:
        BeelineClient("not-a-token").abonents_list()
    assert caught.value.status == 401 and caught.value.permanent
    assert caught.value.message == "Неверный или отсутствующий токен API"


def test_a_client_error_is_permanent_with_the_code(beeline_pbx):
    faults_set(pbx=beeline_pbx, fail_next=1, fail_status=400)
    with pytest.raises(BeelineError) as caught:
        BeelineClient(beeline_pbx.token).numbers_list()
    assert caught.value.permanent and caught.value.code == "SandboxFault"
    assert caught.value.message == "Ошибка, заданная в песочнице"


BASE = "https://beeline.test/apis/portal"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "permanent", "rate_limited", "auth", "retry_after"),
    [
        (400, {}, BeelineError, True, False, False, None),
        (401, {}, BeelineTokenRejected, True, False, True, None),
        (403, {}, BeelineTokenRejected, True, False, True, None),
        (404, {}, BeelineNotFound, True, False, False, None),
        (429, {"Retry-After": "7"}, BeelineError, False, True, False, 7.0),
        (429, {}, BeelineError, False, True, False, None),
        (500, {}, BeelineUnavailable, False, False, False, None),
        (503, {}, BeelineUnavailable, False, False, False, None),
    ],
)
def test_each_status_maps_to_the_shared_flags(
    status, headers, kind, permanent, rate_limited, auth, retry_after
):
    with responses.RequestsMock() as http:
        http.get(
            f"{BASE}/numbers",
            status=status,
            headers=headers,
            json={"errorCode": "Code", "description": "Описание Beeline"},
        )
        with pytest.raises(kind) as caught:
            BeelineClient("token", base_url=BASE).numbers_list()
    error = caught.value
    assert isinstance(error, TransportError) and error.status == status
    assert (error.permanent, error.transient) == (permanent, not permanent)
    assert (error.rate_limited, error.auth, error.retry_after) == (rate_limited, auth, retry_after)
    assert error.message == "Описание Beeline" and error.code == "Code"


def test_no_answer_is_transient():
    with responses.RequestsMock() as http:
        http.get(f"{BASE}/numbers", body=requests.ConnectionError("refused"))
        with pytest.raises(BeelineUnavailable) as caught:
            BeelineClient("token", base_url=BASE).numbers_list()
    assert caught.value.transient and caught.value.status is None
    assert not (caught.value.rate_limited or caught.value.auth)
