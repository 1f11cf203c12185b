"""The amoCRM client maps each answer to a ``crm.errors`` class carrying the shared flags of
``core.transport.TransportError``, the flags Beeline's client sets too (pbx/tests/test_client.py).
"""

from __future__ import annotations

import pytest
import requests
import responses

from core.transport import TransportError
from crm.client import AmoClient, StaticToken
from crm.errors import (
    AmoAuthError,
    AmoBanned,
    AmoPermanentError,
    AmoRateLimited,
    AmoTransientError,
    AmoUnpaid,
)

BASE = "https://acme.amocrm.test"


def client() -> AmoClient:
    return AmoClient(
        base_url=BASE, account_key="flags", tokens=StaticToken("token"), sleep=lambda _: None
    )


@pytest.mark.parametrize(
    ("status", "headers", "kind", "permanent", "rate_limited", "auth", "retry_after"),
    [
        (400, {}, AmoPermanentError, True, False, False, None),
        (401, {}, AmoAuthError, True, False, True, None),
        (402, {}, AmoUnpaid, True, False, False, None),
        (403, {}, AmoBanned, True, False, False, None),
        (404, {}, AmoPermanentError, True, False, False, None),
        (429, {"Retry-After": "3"}, AmoRateLimited, False, True, False, 3.0),
        (429, {}, AmoRateLimited, False, True, False, 1.0),  # amoCRM's is a GUESS: 1 s
        (500, {}, AmoTransientError, False, False, False, None),
        (504, {}, AmoTransientError, False, False, False, None),
    ],
)
def test_each_status_maps_to_the_shared_flags(
    db, status, headers, kind, permanent, rate_limited, auth, retry_after
):
    with responses.RequestsMock() as http:
        http.get(f"{BASE}/api/v4/account", status=status, headers=headers, json={"title": "x"})
        with pytest.raises(kind) as caught:
            client().account()
    error = caught.value
    assert isinstance(error, TransportError) and error.status == status
    assert (error.permanent, error.transient) == (permanent, not permanent)
    assert (error.rate_limited, error.auth, error.retry_after) == (rate_limited, auth, retry_after)


def test_no_answer_is_transient(db):
    with responses.RequestsMock() as http:
        http.get(f"{BASE}/api/v4/account", body=requests.ConnectTimeout("slow"))
        with pytest.raises(AmoTransientError) as caught:
            client().account()
    assert caught.value.transient and caught.value.status is None
    assert not (caught.value.rate_limited or caught.value.auth)
