from __future__ import annotations

import pytest

from core.phones import phone_national, phone_parse


@pytest.mark.parametrize(
    "raw",
    [
        "9161234567",
        "89161234567",
        "79161234567",
        "+79161234567",
        "+7 (916) 123-45-67",
        "8 916 123 45 67",
        "tel:+79161234567",
        "sip:9161234567@ip.beeline.ru",
    ],
)
def test_every_spelling_of_one_number_normalizes_the_same(raw):
    phone = phone_parse(raw)
    assert phone is not None
    assert phone.e164 == "+79161234567"
    assert phone.national == "9161234567"


@pytest.mark.parametrize("raw", [None, "", "abc", "123", "+7", "SIP00SLQU00A0J@ip.beeline.ru"])
def test_garbage_is_not_a_phone(raw):
    assert phone_parse(raw) is None


def test_foreign_numbers_keep_their_country():
    phone = phone_parse("+44 20 7946 0958")
    assert phone is not None and phone.e164 == "+442079460958"
    assert phone_national("+7 495 123-45-67") == "4951234567"
