"""Recording links: opaque, keyed on their own with rotation, revocable per organization and dead
once it is disconnected or deleted. Webhook secrets: rotated with a Beeline re-subscription and a
grace period for the old URL. Stored event bodies: no callback URL secret."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client, TestCase
from django.utils import timezone

from core.models import Organization
from core.services import organization_delete, organization_set_status
from core.tenancy import organization_scope, scopes_disabled
from pbx import events, subscriptions
from pbx.connection import beeline_token_save
from pbx.models import BeelineCredentials, PbxCall, PbxEvent, Subscription
from pbx.recording_links import recording_links_revoke, recording_ref_from_token
from pbx.selectors import call_recording_url
from sandbox.beeline.services import call_simulate


@pytest.fixture
def connected(org, beeline_pbx, settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    beeline_token_save(organization=org, token=beeline_pbx.token)
    return org


def _answered_call(org, pbx) -> PbxCall:
    with TestCase.captureOnCommitCallbacks(execute=True):
        sim = call_simulate(
            pbx=pbx,
            scenario="inbound_answered",
            abonent_phone="9161110001",
            external_phone="+79031112233",
        )
    with organization_scope(org):
        return PbxCall.objects.get(ext_tracking_id=sim.ext_tracking_id)


def _token(url: str) -> str:
    return url.rsplit("/recordings/", 1)[1]


# --- recording links -------------------------------------------------------------------------


def test_a_recording_link_reveals_nothing_readable(connected, beeline_pbx):
    call = _answered_call(connected, beeline_pbx)
    token = _token(call_recording_url(call=call))

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # (Short values such as the organization id can occur in random bytes by chance: what is
    # checked is that no piece of the payload is there in the clear.)
    for readable in (
        f"[{connected.pk},".encode(),
        call.ext_tracking_id.encode(),
        call.recording_user_id.encode(),
        b"9161110001",
    ):
        assert readable not in raw and readable.decode() not in token
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt="pbx.recording")  # not Django's signed (readable) JSON
    assert recording_ref_from_token(token=token).ext_tracking_id == call.ext_tracking_id


def test_links_keep_working_across_a_key_rotation_and_die_with_their_key(
    connected, beeline_pbx, settings
):
    call = _answered_call(connected, beeline_pbx)
    old_key = settings.RECORDING_SIGNING_KEYS[0]
    old_link = _token(call_recording_url(call=call))

    settings.RECORDING_SIGNING_KEYS = ["a-brand-new-recording-link-key-0987654321zyx", old_key]
    new_link = _token(call_recording_url(call=call))
    assert recording_ref_from_token(token=old_link) is not None
    assert recording_ref_from_token(token=new_link) is not None

    settings.RECORDING_SIGNING_KEYS = ["a-brand-new-recording-link-key-0987654321zyx"]
    assert recording_ref_from_token(token=old_link) is None  # the retired key's links are dead
    assert recording_ref_from_token(token=new_link) is not None


def test_links_do_not_depend_on_secret_key(connected, beeline_pbx, settings):
    call = _answered_call(connected, beeline_pbx)
    link = _token(call_recording_url(call=call))
    settings.SECRET_KEY = "a-rotated-django-secret-key-" + "x" * 40
    assert recording_ref_from_token(token=link) is not None


def test_revoking_stops_the_organizations_links_only(
    connected, outsider, beeline_pbx, client: Client
):
    call = _answered_call(connected, beeline_pbx)
    link = call_recording_url(call=call).split("beetel.test", 1)[1]
    with organization_scope(outsider):
        outsider_call = PbxCall.objects.create(
            organization=outsider,
            ext_tracking_id="outsider-1",
            direction="in",
            answered_at=timezone.now(),
            recording_user_id="x@ip.beeline.ru",
        )
    outsider_link = _token(call_recording_url(call=outsider_call))

    recording_links_revoke(organization=connected)

    assert client.get(link).status_code == 404
    assert recording_ref_from_token(token=outsider_link) is not None
    fresh = _token(call_recording_url(call=call))  # links made after the revocation work
    assert recording_ref_from_token(token=fresh) is not None


def test_links_stop_when_the_organization_is_disconnected_or_deleted(connected, beeline_pbx):
    call = _answered_call(connected, beeline_pbx)
    link = _token(call_recording_url(call=call))

    organization_set_status(organization=connected, status=Organization.Status.DISCONNECTED)
    assert recording_ref_from_token(token=link) is None

    organization_set_status(organization=connected, status=Organization.Status.ACTIVE)
    assert recording_ref_from_token(token=link) is not None  # reinstalled: history plays again

    organization_delete(organization=connected)
    assert recording_ref_from_token(token=link) is None


def test_links_made_before_opaque_links_still_open_until_revoked(connected, beeline_pbx):
    call = _answered_call(connected, beeline_pbx)
    legacy = signing.dumps(
        {"o": connected.pk, "t": call.ext_tracking_id, "u": call.recording_user_id},
        salt="pbx.recording",
        compress=True,
    )
    assert recording_ref_from_token(token=legacy) is not None

    recording_links_revoke(organization=connected)

    assert recording_ref_from_token(token=legacy) is None


# --- webhook secrets -------------------------------------------------------------------------


def _credentials(org) -> BeelineCredentials:
    with organization_scope(org):
        return BeelineCredentials.objects.get()


def test_rotation_resubscribes_at_beeline_and_keeps_the_old_url_for_a_grace_period(
    connected, outsider, beeline_pbx, settings
):
    from pbx.tests.xsi_fixtures import fixture_body

    old_secret = _credentials(connected).webhook_secret
    old_remote = set(beeline_pbx.subscriptions.values_list("subscription_id", flat=True))

    subscription = subscriptions.webhook_secret_rotate(organization=connected)

    new_secret = _credentials(connected).webhook_secret
    assert new_secret != old_secret
    remote = beeline_pbx.subscriptions.get(subscription_id=subscription.subscription_id)
    assert remote.url.endswith(f"/beeline/events/{new_secret}")
    assert subscription.subscription_id not in old_remote

    def post(secret: str, event_id: str) -> int:
        body = fixture_body("inbound_missed/01_received").replace(
            "<xsi:eventID>", f"<xsi:eventID>{event_id}"
        )
        return (
            Client()
            .generic("POST", f"/beeline/events/{secret}", data=body, content_type="application/xml")
            .status_code
        )

    assert post(new_secret, "n1") == 200
    assert post(old_secret, "o1") == 200  # in-flight events on the old URL still land

    # After the grace period the old URL is refused (and forgotten by the beat).
    later = timezone.now() + timedelta(seconds=settings.PBX_WEBHOOK_SECRET_GRACE_SECONDS + 1)
    events._SECRET_CACHE.clear()
    assert events.webhook_organization_id(secret=old_secret, now=later) is None
    assert subscriptions.webhook_secrets_expire(now=later) == 1
    assert _credentials(connected).previous_webhook_secret_hash == ""
    assert post(old_secret, "o2") == 404
    assert post(new_secret, "n2") == 200


def test_the_old_url_stays_valid_while_beeline_could_not_be_resubscribed(
    connected, beeline_pbx, settings
):
    from pbx.errors import BeelineError
    from sandbox.beeline.services import faults_set

    old_secret = _credentials(connected).webhook_secret
    faults_set(pbx=beeline_pbx, down=True)
    with pytest.raises(BeelineError):
        subscriptions.webhook_secret_rotate(organization=connected)

    later = timezone.now() + timedelta(seconds=settings.PBX_WEBHOOK_SECRET_GRACE_SECONDS + 1)
    assert (
        subscriptions.webhook_secrets_expire(now=later) == 0
    )  # Beeline still posts to the old URL
    events._SECRET_CACHE.clear()
    assert events.webhook_organization_id(secret=old_secret, now=later) == connected.pk


def test_stored_event_bodies_carry_no_callback_secret(connected, beeline_pbx):
    call = _answered_call(connected, beeline_pbx)
    secret = _credentials(connected).webhook_secret
    with organization_scope(connected):
        bodies = list(
            PbxEvent.objects.filter(ext_tracking_id=call.ext_tracking_id).values_list(
                "body", flat=True
            )
        )
    assert bodies
    for body in bodies:
        assert secret not in body
        assert "/beeline/events/" not in body
        assert "httpContact" in body  # the element is kept, its URL is not
    assert call.outcome == "answered"  # the scrubbed bodies still fold into the call


def test_admin_event_page_never_shows_a_callback_secret(admin_client, connected, beeline_pbx):
    secret = _credentials(connected).webhook_secret
    with organization_scope(connected):
        event = PbxEvent.objects.create(
            organization=connected,
            event_id="legacy-1",
            event_type="CallReceivedEvent",
            body=f"<xsi:httpContact><xsi:uri>https://x/beeline/events/{secret}</xsi:uri>"
            "</xsi:httpContact>",
            received_at=timezone.now(),
        )
    page = admin_client.get(f"/admin/pbx/pbxevent/{event.pk}/change/").content.decode()
    assert secret not in page


def test_subscriptions_of_other_organizations_are_untouched(connected, outsider, beeline_pbx):
    with scopes_disabled():
        before = set(
            Subscription.objects.exclude(organization=connected).values_list("pk", "status")
        )
    subscriptions.webhook_secret_rotate(organization=connected)
    with scopes_disabled():
        after = set(
            Subscription.objects.exclude(organization=connected).values_list("pk", "status")
        )
    assert before == after
