"""The Beeline client against the emulator: error mapping, and retries for safe reads only."""

from __future__ import annotations

import pytest

from pbx.client import BeelineClient
from pbx.errors import BeelineError, BeelineTokenRejected, BeelineUnavailable
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
